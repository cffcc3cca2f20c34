"""Operator overrides: validate a change, write it through the controller's store, which audits it.

The controller re-evaluates its policy every tick with the overrides it finds in the database, so
the assignment that follows says "operator" in its reason; the dashboard never publishes anything.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Annotated, Any

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictBool,
    ValidationError,
    WithJsonSchema,
    field_validator,
)
from sqlmodel import Session

from controller.store import repo
from dashboard.metrics import LabelledCounter
from fleet_protocol.assignment import CONCURRENCY
from fleet_protocol.windows import WINDOW_PATTERN, is_valid_window

# 1 TB/s: far above any link, far below what the store's 64-bit column and the policy's arithmetic hold.
MAX_BANDWIDTH_BPS = 10**12
# 1 PB: far above any metered link's month, far below the 64-bit column.
MAX_BUDGET_BYTES = 10**15
#: units the form takes for a data budget ("5 GB", "500MiB"); plain digits are bytes
BYTE_UNITS = {"": 1, "b": 1, "kb": 10**3, "mb": 10**6, "gb": 10**9, "tb": 10**12, "kib": 2**10, "mib": 2**20,
              "gib": 2**30, "tib": 2**40}  # fmt: skip


def _number_not_text_or_bool(value: object) -> object:
    if isinstance(value, bool | str):
        raise ValueError("expected a whole number")
    return value


# Whole numbers come as JSON numbers (3 or 3.0), never "3" or true: the body means what the schema says.
NOT_TEXT_OR_BOOL = BeforeValidator(_number_not_text_or_bool)


class OverrideError(ValueError):
    """The requested change is invalid (message is shown to the operator)."""


class OverrideChange(BaseModel):
    """A change to the override of one agent or site. Fields left out stay as they are; ``null`` clears one.

    ``windows``: ``[]`` means "always" (no window), ``null`` means "the policy decides".
    """

    model_config = ConfigDict(extra="forbid")

    paused: StrictBool | None = None
    windows: list[Annotated[str, WithJsonSchema({"type": "string", "pattern": WINDOW_PATTERN})]] | None = None
    max_concurrency: Annotated[int, Field(ge=CONCURRENCY.low, le=CONCURRENCY.high), NOT_TEXT_OR_BOOL] | None = None
    bandwidth_bps: Annotated[int, Field(ge=0, le=MAX_BANDWIDTH_BPS), NOT_TEXT_OR_BOOL] | None = None
    upload_now: StrictBool = False
    #: metered links: a daily cap in bytes (an agent's own, or each agent's of the site); 0 = none; beats the
    #: controller's ``[policy.sites]``; ``null`` clears
    daily_cap_bytes: Annotated[int, Field(ge=0, le=MAX_BUDGET_BYTES), NOT_TEXT_OR_BOOL] | None = None
    note: Annotated[str, Field(max_length=500, pattern=r"^[^\x00]*$")] = ""

    @field_validator("windows")
    @classmethod
    def _windows(cls, value: list[str] | None) -> list[str] | None:
        if value is None:
            return None
        bad = [w for w in value if not is_valid_window(w)]
        if bad:
            raise ValueError(f"invalid window(s) {', '.join(bad)}: use HH:MM-HH:MM")
        return value

    def store_fields(self) -> dict[str, Any]:
        """The explicitly given fields, under the store's names (the API's names are a contract of their own)."""
        names = {"max_concurrency": "concurrency_cap", "bandwidth_bps": "bandwidth_cap_bps"}
        return {names.get(k, k): getattr(self, k) for k in self.model_fields_set}


class SiteOverrideChange(OverrideChange):
    """A site's override: also its monthly data budget in bytes (0 = none; ``null``: as configured). An agent's
    override has none (a budget belongs to a site): its body refuses the field."""

    monthly_budget_bytes: Annotated[int, Field(ge=0, le=MAX_BUDGET_BYTES), NOT_TEXT_OR_BOOL] | None = None


def _parse_windows(text: str) -> list[str] | None:
    text = text.strip()
    if not text:
        return None
    if text.casefold() in {"always", "none", "-"}:
        return []
    return [w.strip() for w in text.replace(";", ",").split(",") if w.strip()]


def _parse_int(text: str, name: str) -> int | None:
    text = text.strip()
    if not text:
        return None
    try:
        return int(text)
    except ValueError:
        raise OverrideError(f"{name}: not a whole number: {text!r}") from None


def _parse_bytes(text: str, name: str) -> int | None:
    """A data budget as typed: ``5 GB``, ``1.5GiB``, ``0`` (none), digits = bytes; empty: not overridden."""
    text = text.strip().replace(" ", "").casefold()
    if not text:
        return None
    number = text.rstrip("kmgtibB")
    unit = BYTE_UNITS.get(text[len(number) :])
    try:
        if unit is None:
            raise ValueError(text)
        return round(float(number) * unit)
    except (ValueError, OverflowError):
        raise OverrideError(f"{name}: not a size like 5 GB or 500 MiB: {text!r}") from None


def change_from_form(form: Mapping[str, str]) -> SiteOverrideChange:
    """The form sets the whole override: an empty field means "not overridden"."""
    paused_text = form.get("paused", "").strip().lower()
    if paused_text not in {"", "true", "false"}:
        raise OverrideError(f"paused: expected true, false or empty, got {paused_text!r}")
    try:
        return SiteOverrideChange(
            paused=None if not paused_text else paused_text == "true",
            windows=_parse_windows(form.get("windows", "")),
            max_concurrency=_parse_int(form.get("max_concurrency", ""), "concurrency cap"),
            bandwidth_bps=_parse_int(form.get("bandwidth_bps", ""), "bandwidth cap"),
            upload_now=form.get("upload_now", "") == "true",
            monthly_budget_bytes=_parse_bytes(form.get("monthly_budget", ""), "monthly data budget"),
            daily_cap_bytes=_parse_bytes(form.get("daily_cap", ""), "daily cap"),
            note=form.get("note", ""),
        )
    except ValidationError as exc:
        raise OverrideError("; ".join(str(e["msg"]) for e in exc.errors())) from exc


def budget_from_form(form: Mapping[str, str]) -> SiteOverrideChange:
    """The budgets table's form: a site's monthly budget and each agent's daily cap, nothing else of the override
    changes. An empty field leaves that budget as it is, ``-`` sets it back to the configured one."""
    fields = {
        "monthly_budget_bytes": ("monthly_budget", "monthly data budget"),
        "daily_cap_bytes": ("daily_cap", "daily cap"),
    }
    given: dict[str, int | None] = {}
    for name, (key, words) in fields.items():
        text = form.get(key, "").strip()
        if text:
            given[name] = None if text == "-" else _parse_bytes(text, words)
    try:
        return SiteOverrideChange.model_validate(given)
    except ValidationError as exc:
        raise OverrideError("; ".join(str(e["msg"]) for e in exc.errors())) from exc


def apply_change(
    session: Session,
    counter: LabelledCounter,
    *,
    who: str,
    change: OverrideChange,
    agent_id: str | None = None,
    site: str | None = None,
    now: datetime | None = None,
) -> None:
    """Write ``change`` (audited by the store) and count it in ``counter`` (by action: ``set``)."""
    try:
        repo.set_override(session, who=who, agent_id=agent_id, site=site, now=now, **change.store_fields())
    except ValueError as exc:
        raise OverrideError(str(exc)) from exc
    counter.inc("set")


def clear(
    session: Session, counter: LabelledCounter, *, who: str, agent_id: str | None = None, site: str | None = None
) -> bool:
    """Clear the agent's or the site's override (audited by the store) and count it (``clear``)."""
    cleared = repo.clear_override(session, who=who, agent_id=agent_id, site=site)
    counter.inc("clear")
    return cleared
