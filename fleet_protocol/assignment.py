"""The assignment's settings: one frozen value, pydantic-free, that every part composes (docs/protocol.md).

The controller's policy returns an ``AssignmentSettings``, the store keeps one per agent, the ``Assignment``
message carries one (its field names are the wire's), the agent's engine runs with one (``Limits``) and the
dashboard shows one. It is the home of every fact about those settings:

- S3's multipart rules: a part is 5 MiB .. 5 GiB (the last one may be smaller), at most 10,000 parts;
- the range of each number (``CONCURRENCY``, ``PART_SIZE``, ``BANDWIDTH``, ``COMPRESSION_LEVEL``), at most
  ``MAX_WINDOWS`` windows of the grammar in ``fleet_protocol.windows``;
- the defaults an agent runs with before its first assignment;
- the one validation (construction raises ``ValueError``) and the one clamp (``AssignmentSettings.fit``, for
  whoever must turn any numbers into valid settings: the policy, which is total, and rows stored before the
  protocol bounded its numbers).

Kept apart from ``messages`` so that importing it does not load pydantic: the agent's upload engine uses it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, fields
from typing import Any

from fleet_protocol.numbers import MAX_BYTES
from fleet_protocol.windows import is_valid_window, parse_window

MiB = 1024 * 1024

# -- S3's multipart rules ----------------------------------------------------------------------------------
#: every part but the last is at least this big
MIN_PART_SIZE = 5 * MiB
MAX_PART_SIZE = 5 * 1024 * MiB
MAX_PARTS = 10_000

# -- the settings' ranges and defaults ----------------------------------------------------------------------
MAX_CONCURRENCY = 64
MAX_WINDOWS = 48
#: ``compression_level`` that means "upload the WAV as it is"
RAW = -1
MAX_COMPRESSION_LEVEL = 8
DEFAULT_CONCURRENCY = 2
DEFAULT_PART_SIZE = 8 * MiB
DEFAULT_COMPRESSION_LEVEL = 5


@dataclass(frozen=True, slots=True)
class Range:
    """The inclusive range of a whole-number setting, named after its field."""

    name: str
    low: int
    high: int

    def check(self, value: int) -> int:
        """``value`` if it is a whole number inside the range, else ``ValueError`` naming the field."""
        if type(value) is not int and (isinstance(value, bool) or not isinstance(value, int)):
            value = None  # type: ignore[assignment]  # (reported below)
        if value is None or not self.low <= value <= self.high:
            raise ValueError(f"{self.name} must be a whole number in {self.low}..{self.high}, got {value!r}")
        return value

    def fit(self, value: int) -> int:
        """The nearest value inside the range."""
        return max(self.low, min(self.high, int(value)))


CONCURRENCY = Range("concurrency", 0, MAX_CONCURRENCY)  # 0 = no new parts (like paused)
PART_SIZE = Range("part_size", MIN_PART_SIZE, MAX_PART_SIZE)
BANDWIDTH = Range("bandwidth_bps", 0, MAX_BYTES)  # bytes per second, 0 = no cap
COMPRESSION_LEVEL = Range("compression_level", RAW, MAX_COMPRESSION_LEVEL)


def check_windows(windows: Iterable[str]) -> tuple[str, ...]:
    """``windows`` as a tuple if each is valid and there are at most ``MAX_WINDOWS``, else ``ValueError``."""
    windows = windows if type(windows) is tuple else tuple(windows)
    if len(windows) > MAX_WINDOWS:
        raise ValueError(f"at most {MAX_WINDOWS} windows, got {len(windows)}")
    for window in windows:
        if not is_valid_window(window):
            parse_window(window)  # raises, saying what a window looks like
    return windows


def fit_windows(windows: Iterable[object]) -> tuple[str, ...]:
    """The valid windows of ``windows``, each once, at most ``MAX_WINDOWS`` (the first ones)."""
    kept = dict.fromkeys(w for w in windows if isinstance(w, str) and is_valid_window(w))
    return tuple(kept)[:MAX_WINDOWS]


def _flag(name: str, value: object) -> bool:
    if type(value) is not bool:
        raise ValueError(f"{name} must be true or false, got {value!r}")
    return value


@dataclass(frozen=True, slots=True)
class AssignmentSettings:
    """What an assignment sets: a change in any field is a new assignment version. Valid by construction."""

    concurrency: int = DEFAULT_CONCURRENCY  # parts in flight (being filled or sent) across all files
    part_size: int = DEFAULT_PART_SIZE  # bytes, requested: the uploader grows it to fit 10,000 parts
    windows: tuple[str, ...] = ()  # "HH:MM-HH:MM" local time; empty = always
    bandwidth_bps: int = 0  # one cap for the whole agent
    compression_level: int = DEFAULT_COMPRESSION_LEVEL  # FLAC 0-8, RAW = upload the WAV as it is
    paused: bool = False
    upload_now: bool = False  # the operator's "ignore windows until the backlog is empty"

    def __post_init__(self) -> None:
        CONCURRENCY.check(self.concurrency)
        PART_SIZE.check(self.part_size)
        BANDWIDTH.check(self.bandwidth_bps)
        COMPRESSION_LEVEL.check(self.compression_level)
        _flag("paused", self.paused)
        _flag("upload_now", self.upload_now)
        windows = check_windows(self.windows)
        if windows is not self.windows:  # a list given becomes a tuple
            object.__setattr__(self, "windows", windows)

    @classmethod
    def fit(
        cls,
        concurrency: int = DEFAULT_CONCURRENCY,
        part_size: int = DEFAULT_PART_SIZE,
        windows: Iterable[object] = (),
        bandwidth_bps: int = 0,
        compression_level: int = DEFAULT_COMPRESSION_LEVEL,
        paused: bool = False,
        upload_now: bool = False,
    ) -> AssignmentSettings:
        """Valid settings from any numbers: each clamped into its range, windows as ``fit_windows``. Total."""
        return cls(
            concurrency=CONCURRENCY.fit(concurrency),
            part_size=PART_SIZE.fit(part_size),
            windows=fit_windows(windows),
            bandwidth_bps=BANDWIDTH.fit(bandwidth_bps),
            compression_level=COMPRESSION_LEVEL.fit(compression_level),
            paused=bool(paused),
            upload_now=bool(upload_now),
        )

    @property
    def stopped(self) -> bool:
        """No new part may start (parts in flight still finish)."""
        return self.paused or self.concurrency == 0

    def as_dict(self) -> dict[str, Any]:
        """The fields by name, windows as a list: what the wire and the store hold."""
        values = {name: getattr(self, name) for name in SETTINGS_FIELDS}
        values["windows"] = list(self.windows)
        return values


#: the field names, in order: the ``Assignment`` message's and the store's names for them
SETTINGS_FIELDS: tuple[str, ...] = tuple(f.name for f in fields(AssignmentSettings))
