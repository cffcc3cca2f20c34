"""Sorting and filtering of the fleet table, shared by the page and the JSON API (pure)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any
from urllib.parse import urlencode

from controller.policy import PolicyConfig
from dashboard.readmodel import AgentRow, is_hot
from fleet_protocol.versions import version_key


class SortKey(StrEnum):
    AGENT_ID = "agent_id"
    SITE = "site"
    MODEL = "model"
    STATUS = "status"
    TEMPERATURE = "temperature_c"
    BACKLOG_FILES = "backlog_files"
    BACKLOG_BYTES = "backlog_bytes"
    BACKLOG_AGE = "backlog_oldest_age_s"
    THROUGHPUT = "throughput_bps"
    BACKLOG_ETA = "backlog_eta_s"
    CONCURRENCY = "concurrency"
    VERSION = "software_version"


class StatusFilter(StrEnum):
    ALL = "all"
    ONLINE = "online"
    OFFLINE = "offline"
    HOT = "hot"
    PAUSED = "paused"


_KEYS: dict[SortKey, Callable[[AgentRow], Any]] = {
    SortKey.AGENT_ID: lambda r: r.agent_id,
    SortKey.SITE: lambda r: (r.site, r.agent_id),
    SortKey.MODEL: lambda r: (r.model, r.agent_id),
    SortKey.STATUS: lambda r: (r.online, r.agent_id),
    # Unknown temperatures sort below every known one.
    SortKey.TEMPERATURE: lambda r: (r.temperature_c is not None, r.temperature_c or 0.0),
    SortKey.BACKLOG_FILES: lambda r: r.backlog_files,
    SortKey.BACKLOG_BYTES: lambda r: r.backlog_bytes,
    SortKey.BACKLOG_AGE: lambda r: r.backlog_oldest_age_s,
    SortKey.THROUGHPUT: lambda r: r.throughput_bps,
    # Unknown drain times sort below every known one.
    SortKey.BACKLOG_ETA: lambda r: (r.backlog_eta_s is not None, r.backlog_eta_s or 0.0),
    SortKey.CONCURRENCY: lambda r: r.assignment.concurrency if r.assignment else -1,
    SortKey.VERSION: lambda r: version_key(r.software_version),
}


def _matches_status(row: AgentRow, status: StatusFilter, limits: PolicyConfig) -> bool:
    if status is StatusFilter.ONLINE:
        return row.online
    if status is StatusFilter.OFFLINE:
        return not row.online
    if status is StatusFilter.HOT:
        return is_hot(row, limits)
    if status is StatusFilter.PAUSED:
        return bool(row.assignment and row.assignment.paused)
    return True


def _matches_text(row: AgentRow, needle: str) -> bool:
    if not needle:
        return True
    haystack = " ".join((row.agent_id, row.site, row.model, row.assignment.reason if row.assignment else ""))
    return needle.casefold() in haystack.casefold()


def known_versions(rows: Sequence[AgentRow]) -> list[str]:
    """The software versions the agents report, newest first (the version filter's choices)."""
    return sorted({r.software_version for r in rows if r.software_version}, key=version_key, reverse=True)


def select_rows(
    rows: Sequence[AgentRow],
    *,
    query: str = "",
    status: StatusFilter = StatusFilter.ALL,
    sort: SortKey = SortKey.AGENT_ID,
    descending: bool = False,
    limits: PolicyConfig | None = None,
    version: str = "",
) -> list[AgentRow]:
    """Filter by free text (id, site, model, reason), status and software version ("" = any), then sort
    stably (ties by agent id)."""
    limits = limits or PolicyConfig()
    kept = [
        r
        for r in rows
        if _matches_status(r, status, limits)
        and _matches_text(r, query.strip())
        and (not version or r.software_version == version)
    ]
    kept.sort(key=lambda r: r.agent_id)
    kept.sort(key=_KEYS[sort], reverse=descending)
    return kept


@dataclass(frozen=True)
class FleetView:
    """What one fleet table shows: filter, order and page (from the page's query string)."""

    query: str = ""
    status: StatusFilter = StatusFilter.ALL
    sort: SortKey = SortKey.AGENT_ID
    descending: bool = False
    page: int = 1
    page_size: int = 200
    version: str = ""  # only agents reporting this software version; "" = any

    def params(self, **changes: Any) -> str:
        """The query string of this view with ``changes`` (e.g. another sort or page)."""
        values = {
            "q": self.query,
            "status": self.status.value,
            "sort": self.sort.value,
            "desc": "true" if self.descending else "false",
            "page": str(self.page),
            "version": self.version,
        }
        values.update({k: str(v) for k, v in changes.items()})
        return urlencode(values)


@dataclass(frozen=True)
class Page:
    rows: list[AgentRow]
    matching: int  # rows that pass the filter
    page: int  # 1-based, clamped to the last page
    pages: int


def view_page(rows: Sequence[AgentRow], view: FleetView, limits: PolicyConfig | None = None) -> Page:
    chosen = select_rows(
        rows,
        query=view.query,
        status=view.status,
        sort=view.sort,
        descending=view.descending,
        limits=limits,
        version=view.version,
    )
    pages = max(1, -(-len(chosen) // view.page_size))
    page = min(max(1, view.page), pages)
    start = (page - 1) * view.page_size
    return Page(rows=chosen[start : start + view.page_size], matching=len(chosen), page=page, pages=pages)
