"""The recordings list: its filter, its order, its rows and its signed keyset cursor (pure).

Shared by the page (``/recordings``) and the JSON API (``/api/recordings``); ``dashboard.recordings_query``
runs it against the catalog table. A page ends where the next one starts: the cursor names the last row
shown (its sort value and id), never an offset, so a deep page costs what the first one does. The cursor is
signed (HMAC with a key derived from the dashboard's ``secret_key``) and bound to the sort and the filter it
was made for: a changed, truncated or foreign cursor is refused (``CursorError``) rather than guessed at.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import math
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any
from urllib.parse import urlencode

#: ``matching`` counts rows up to this many, then says "at least" (``matching_capped``)
COUNT_CAP = 10_000
DEFAULT_LIMIT = 50
MAX_LIMIT = 500


class RecordingSort(StrEnum):
    RECORDED_AT = "recorded_at"
    UPLOADED_AT = "uploaded_at"
    DURATION = "duration"
    SIZE = "size"  # of the original file
    AGENT = "agent"


class RecordingStatus(StrEnum):
    """The catalog's states (``Recording.status``): listed alike, marked as such on the page."""

    PENDING = "pending"  # from the upload event, the object not read yet
    CATALOGED = "cataloged"
    FAILED = "failed"  # the object could not be read (``error`` says why)


class SortOrder(StrEnum):
    ASC = "asc"
    DESC = "desc"


#: the order a sort starts in: newest, longest, largest first; agents A to Z
NATURAL_ORDER = {
    RecordingSort.RECORDED_AT: SortOrder.DESC,
    RecordingSort.UPLOADED_AT: SortOrder.DESC,
    RecordingSort.DURATION: SortOrder.DESC,
    RecordingSort.SIZE: SortOrder.DESC,
    RecordingSort.AGENT: SortOrder.ASC,
}
#: sorts whose column may be unknown (``None``): those rows come after every known one, in either order
NULLABLE_SORTS = frozenset({RecordingSort.RECORDED_AT, RecordingSort.DURATION})


class CursorError(ValueError):
    """A cursor this dashboard did not make for this sort and filter."""


@dataclass(frozen=True)
class RecordingFilter:
    """Every given condition holds (they combine with AND); ``None``/"" = any. Times are UTC; ``recorded_from``
    is inclusive, ``recorded_to`` exclusive; the duration bounds are inclusive (seconds). An inverted range
    matches nothing (``empty_because``)."""

    agent: str = ""
    site: str = ""
    codec: str = ""
    status: RecordingStatus | None = None
    recorded_from: datetime | None = None
    recorded_to: datetime | None = None
    min_duration_s: float | None = None
    max_duration_s: float | None = None

    @property
    def empty_because(self) -> str:
        """Why nothing can match (an empty or inverted range), or "". Such a filter is not an error: it matches
        no row (and the OpenAPI document cannot say that one parameter must be below another)."""
        if self.recorded_from and self.recorded_to and self.recorded_from >= self.recorded_to:
            return "`from` is not before `to`: no time is in that range"
        low, high = self.min_duration_s, self.max_duration_s
        if low is not None and high is not None and low > high:
            return "`min_duration_s` is above `max_duration_s`: no duration is in that range"
        return ""

    def params(self) -> dict[str, str]:
        """As query parameters (only those set), the API's names."""
        values = {
            "agent": self.agent,
            "site": self.site,
            "codec": self.codec,
            "status": self.status.value if self.status else "",
            "from": _iso(self.recorded_from),
            "to": _iso(self.recorded_to),
            "min_duration_s": "" if self.min_duration_s is None else repr(float(self.min_duration_s)),
            "max_duration_s": "" if self.max_duration_s is None else repr(float(self.max_duration_s)),
        }
        return {k: v for k, v in values.items() if v}

    def fingerprint(self) -> str:
        """Short and stable: a cursor carries it, so it only works with the filter it was made for."""
        canonical = json.dumps(sorted(self.params().items()), separators=(",", ":"))
        return hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:16]


def _iso(value: datetime | None) -> str:
    return "" if value is None else value.astimezone(UTC).isoformat()


SortValue = str | float | int | datetime | None


@dataclass(frozen=True)
class Position:
    """The last row of a page in its sort: its sort column's value (``None``: unknown) and its id."""

    value: SortValue
    id: int


@dataclass(frozen=True)
class RecordingView:
    """One request for a page: filter, sort, order, size, and where it starts (``None``: the first page)."""

    filter: RecordingFilter = field(default_factory=RecordingFilter)
    sort: RecordingSort = RecordingSort.RECORDED_AT
    order: SortOrder = SortOrder.DESC
    limit: int = DEFAULT_LIMIT
    after: Position | None = None

    @property
    def descending(self) -> bool:
        return self.order is SortOrder.DESC

    def params(self, **changes: str) -> str:
        """The query string of this view's first page (no cursor) with ``changes`` (another sort, a cursor)."""
        values = {**self.filter.params(), "sort": self.sort.value, "order": self.order.value}
        if self.limit != DEFAULT_LIMIT:
            values["limit"] = str(self.limit)
        values.update(changes)
        return urlencode(values)

    def sort_params(self, key: str) -> str:
        """The first page sorted by ``key``: the current sort again flips its order, another starts natural."""
        sort = RecordingSort(key)
        flipped = SortOrder.ASC if self.descending else SortOrder.DESC
        order = flipped if sort is self.sort else NATURAL_ORDER[sort]
        return self.params(sort=sort.value, order=order.value)


@dataclass(frozen=True, slots=True)
class RecordingRow:
    """One catalog row as the list shows it. Audio facts are ``None`` until the catalog read the object
    (``status`` 'cataloged'); 'pending' and 'failed' rows are listed too (``error`` says why it failed)."""

    id: int
    key: str
    agent_id: str
    site: str
    file: str
    uploaded_at: datetime
    recorded_at: datetime | None
    recorded_at_source: str
    clock_suspect: bool
    duration_s: float | None
    sample_rate: int | None
    channels: int | None
    bits_per_sample: int | None
    original_bytes: int
    stored_bytes: int
    sha256: str
    codec: str
    status: str
    error: str
    cataloged_at: datetime | None


@dataclass(frozen=True, slots=True)
class RecordingDetail:
    """One catalog row with everything it holds: the row, the recorder's own metadata (bext, GUANO, iXML
    fields as the catalog kept them) and the ``upload_completed`` event it came from."""

    recording: RecordingRow
    recorder_metadata: dict[str, Any]
    upload_event_id: int | None


@dataclass(frozen=True, slots=True)
class RecordingPage:
    """One page: ``next_cursor`` fetches the next (``None``: this is the last). ``matching`` counts the rows
    that pass the filter, exactly up to ``COUNT_CAP``; beyond it ``matching`` is the cap and
    ``matching_capped`` is true ("10,000 or more")."""

    items: list[RecordingRow]
    next_cursor: str | None
    matching: int
    matching_capped: bool
    sort: RecordingSort
    order: SortOrder
    limit: int


# --- the cursor ---------------------------------------------------------------------------------------------

_CURSOR_VERSION = 1
_SIGNATURE_BYTES = 16


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _encode_value(value: SortValue) -> str | float | int | None:
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat()
    return value


def _decode_value(sort: RecordingSort, raw: object) -> SortValue:
    """The sort value as its column's type; anything else is not a cursor of ours."""
    if raw is None:
        if sort in NULLABLE_SORTS:
            return None
    elif sort in (RecordingSort.RECORDED_AT, RecordingSort.UPLOADED_AT) and isinstance(raw, str):
        try:
            return datetime.fromisoformat(raw).astimezone(UTC)
        except (ValueError, OverflowError):
            pass
    elif sort is RecordingSort.DURATION and isinstance(raw, int | float) and not isinstance(raw, bool):
        if math.isfinite(raw):
            return float(raw)
    elif (sort is RecordingSort.SIZE and isinstance(raw, int) and not isinstance(raw, bool)) or (
        sort is RecordingSort.AGENT and isinstance(raw, str)
    ):
        return raw
    raise CursorError("the cursor's position does not fit its sort")


class CursorCodec:
    """Makes and reads the signed cursors of one dashboard (its ``secret_key``)."""

    def __init__(self, secret_key: str) -> None:
        self._key = hashlib.sha256(b"edgefleet-recordings-cursor:" + secret_key.encode("utf-8")).digest()

    def _sign(self, payload: bytes) -> bytes:
        return hmac.new(self._key, payload, hashlib.sha256).digest()[:_SIGNATURE_BYTES]

    def encode(self, view: RecordingView, last: Position) -> str:
        body = [
            _CURSOR_VERSION,
            view.sort.value,
            view.order.value,
            view.filter.fingerprint(),
            _encode_value(last.value),
            last.id,
        ]
        payload = json.dumps(body, separators=(",", ":")).encode("utf-8")
        return f"{_b64(payload)}.{_b64(self._sign(payload))}"

    def decode(self, cursor: str, view: RecordingView) -> Position:
        """The position ``cursor`` names, if this dashboard made it for ``view``'s sort, order and filter."""
        try:
            payload_part, signature_part = cursor.split(".")
            payload, signature = _unb64(payload_part), _unb64(signature_part)
        except (ValueError, binascii.Error) as exc:
            raise CursorError("not a cursor of this dashboard (malformed)") from exc
        if not hmac.compare_digest(signature, self._sign(payload)):
            raise CursorError("not a cursor of this dashboard (signature does not match)")
        body = json.loads(payload)  # we signed it: it is our JSON
        if not isinstance(body, list) or len(body) != 6 or body[0] != _CURSOR_VERSION:
            raise CursorError("a cursor of another release; start from the first page")
        _, sort, order, fingerprint, value, last_id = body
        if (sort, order) != (view.sort.value, view.order.value):
            raise CursorError("the cursor belongs to another sort or order; start from the first page")
        if fingerprint != view.filter.fingerprint():
            raise CursorError("the cursor belongs to another filter; start from the first page")
        if not isinstance(last_id, int) or isinstance(last_id, bool):
            raise CursorError("the cursor's position does not fit its sort")
        return Position(_decode_value(view.sort, value), last_id)
