"""The order files are uploaded in: smaller first, with aging, failures moved back (docs/design.md, section 4).

``priority = size - aging_bps * waited + failures * failure_penalty`` (lower goes first):
- smaller files first, so many small recordings are not stuck behind one big one;
- every second a file waits counts as ``aging_bps`` bytes less, so a big file is never starved: after
  ``(size_big - size_small) / aging_bps`` seconds it goes before any newer smaller file;
- every failure counts as ``failure_penalty`` bytes more, and the file is not taken again before
  ``not_before`` (exponential, capped delay), so a file that keeps failing does not block the rest.
Ties go by enqueue time, then path, so the order is deterministic.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass

from edge_agent.engine.limits import MiB

AGING_BPS = MiB  # 1 MiB of "size" per second waited
FAILURE_PENALTY = 1024 * MiB
RETRY_BASE_S = 30.0
RETRY_CAP_S = 3600.0


@dataclass(frozen=True)
class QueueEntry:
    path: str
    size: int
    enqueued_at: float
    failures: int = 0
    not_before: float = 0.0


def priority(entry: QueueEntry, now: float, aging_bps: float = AGING_BPS) -> float:
    waited = max(0.0, now - entry.enqueued_at)
    return entry.size - aging_bps * waited + entry.failures * FAILURE_PENALTY


def pick_next(
    entries: Iterable[QueueEntry], now: float, busy: Collection[str] = (), aging_bps: float = AGING_BPS
) -> QueueEntry | None:
    """The entry to start next, or None when none is eligible now."""
    eligible = [e for e in entries if e.not_before <= now and e.path not in busy]
    if not eligible:
        return None
    return min(eligible, key=lambda e: (priority(e, now, aging_bps), e.enqueued_at, e.path))


def retry_delay(failures: int) -> float:
    """How long a file waits after its ``failures``-th failure (1 = first)."""
    if failures < 1:
        return 0.0
    return min(RETRY_CAP_S, RETRY_BASE_S * 2.0 ** min(failures - 1, 32))


def after_failure(entry: QueueEntry, now: float) -> QueueEntry:
    failures = entry.failures + 1
    return QueueEntry(entry.path, entry.size, entry.enqueued_at, failures, now + retry_delay(failures))
