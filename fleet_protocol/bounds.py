"""Fitting a sender's own measurements into a message's bounds: clamp, never fail.

Receivers reject what is out of bounds (``decode``); a sender that reports what it measured (a sensor, a file's
age, a counter) passes the values through ``fit`` first, so a strange reading becomes the nearest value the
protocol allows instead of an exception in the sender's loop. The bounds are read from the model's fields, so
they have one home: ``fleet_protocol.messages``.
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta
from typing import Any

from annotated_types import Ge, Le, MaxLen
from pydantic import BaseModel
from pydantic.fields import FieldInfo

from fleet_protocol.messages import SENT_AT_MAX, SENT_AT_MIN


def _limits(info: FieldInfo) -> tuple[float | None, float | None, int | None]:
    low: float | None = None
    high: float | None = None
    max_len: int | None = None
    for item in info.metadata:
        if isinstance(item, Ge):  # the messages use inclusive bounds only
            low = item.ge  # type: ignore[assignment]  # kept exact: float(2**63 - 1) rounds up to 2**63
        elif isinstance(item, Le):
            high = item.le  # type: ignore[assignment]
        elif isinstance(item, MaxLen):
            max_len = item.max_length
    return low, high, max_len


def clean_text(text: str, max_chars: int | None = None) -> str:
    """Valid UTF-8 without NUL: undecodable bytes of a file name (``surrogateescape``) become ``\\xNN``."""
    try:
        raw = text.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        raw = text.encode("utf-8", "backslashreplace")
    cleaned = raw.decode("utf-8", "backslashreplace").replace("\x00", "\\x00")
    return cleaned if max_chars is None else cleaned[:max_chars]


def _fit_bytes(text: str, info: FieldInfo) -> str:
    extra = info.json_schema_extra
    max_bytes = extra.get("maxBytes") if isinstance(extra, dict) else None
    if not isinstance(max_bytes, int):
        return text
    return text.encode()[:max_bytes].decode("utf-8", "ignore")  # (a character cut in two is dropped)


def _fit_int(value: int, low: float | None, high: float | None) -> int:
    if low is not None and value < low:
        return math.ceil(low)
    if high is not None and value > high:
        return math.floor(high)
    return value


def _fit_float(value: float, low: float | None, high: float | None, nullable: bool) -> float | None:
    if math.isnan(value):
        return None if nullable else (low if low is not None else 0.0)
    if low is not None:
        value = max(low, value)
    if high is not None:
        value = min(high, value)
    if math.isinf(value):  # unbounded on that side: the largest finite float
        value = math.copysign(1.7976931348623157e308, value)
    return value


def _fit_time(value: datetime) -> datetime:
    if value.tzinfo is None:
        return value
    if value < SENT_AT_MIN:
        return SENT_AT_MIN
    if value >= SENT_AT_MAX:
        return SENT_AT_MAX - timedelta(microseconds=1)
    return value


def fit(model: type[BaseModel], /, **values: Any) -> dict[str, Any]:
    """``values`` with every number clamped into its field's bounds, NaN made ``None`` (or the lower bound),
    text cleaned and cut to its length and ``sent_at`` moved into its range: ``model(**fit(model, ...))``."""
    fields = model.model_fields
    fitted: dict[str, Any] = {}
    for name, value in values.items():
        info = fields.get(name)
        if info is None or value is None or isinstance(value, bool):
            fitted[name] = value
            continue
        low, high, max_len = _limits(info)
        if isinstance(value, int):
            fitted[name] = _fit_int(value, low, high)
        elif isinstance(value, float):
            fitted[name] = _fit_float(value, low, high, nullable=not info.is_required() and info.default is None)
        elif isinstance(value, str):
            fitted[name] = _fit_bytes(clean_text(value, max_len), info)
        elif isinstance(value, datetime):
            fitted[name] = _fit_time(value)
        else:
            fitted[name] = value
    return fitted
