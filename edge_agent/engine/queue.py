"""The order files are uploaded in: smaller first, with aging, failures moved back (docs/design.md, section 4).

``priority = size - aging_bps * waited + failures * failure_penalty`` (lower goes first):
- smaller files first, so many small recordings are not stuck behind one big one;
- every second a file waits counts as ``aging_bps`` bytes less, so a big file is never starved: after
  ``(size_big - size_small) / aging_bps`` seconds it goes before any newer smaller file;
- every failure counts as ``failure_penalty`` bytes more, and the file is not taken again before
  ``not_before`` (exponential, capped delay), so a file that keeps failing does not block the rest.
Ties go by enqueue time, then path, so the order is deterministic.

Operators steer it (queue control, docs/queue-control.md): a held file is never taken until released; a file
moved to the front (``first`` > 0, the latest move highest) goes before every other eligible file; "retry now"
clears a failed file's wait. :func:`apply_action` is that table, one command in, the new entry out.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass, replace

from edge_agent.engine.limits import MiB
from fleet_protocol.vocabulary import QueueAction, QueueState

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
    held: bool = False  # an operator holds it: never taken until released
    first: int = 0  # > 0: an operator moved it to the front; the highest goes first


def priority(entry: QueueEntry, now: float, aging_bps: float = AGING_BPS) -> float:
    waited = max(0.0, now - entry.enqueued_at)
    return entry.size - aging_bps * waited + entry.failures * FAILURE_PENALTY


def pick_next(
    entries: Iterable[QueueEntry], now: float, busy: Collection[str] = (), aging_bps: float = AGING_BPS
) -> QueueEntry | None:
    """The entry to start next, or None when none is eligible now."""
    eligible = [e for e in entries if not e.held and e.not_before <= now and e.path not in busy]
    if not eligible:
        return None
    return min(eligible, key=lambda e: _order(e, now, aging_bps))


def _order(entry: QueueEntry, now: float, aging_bps: float) -> tuple[int, float, float, str]:
    return (-entry.first, priority(entry, now, aging_bps), entry.enqueued_at, entry.path)


def retry_delay(failures: int) -> float:
    """How long a file waits after its ``failures``-th failure (1 = first)."""
    if failures < 1:
        return 0.0
    return min(RETRY_CAP_S, RETRY_BASE_S * 2.0 ** min(failures - 1, 32))


def after_failure(entry: QueueEntry, now: float) -> QueueEntry:
    failures = entry.failures + 1
    return replace(entry, failures=failures, not_before=now + retry_delay(failures))


def after_retry_now(entry: QueueEntry) -> QueueEntry:
    return replace(entry, not_before=0.0)


# -- queue control: an operator's command in, the new entry out ----------------------------------------------
@dataclass(frozen=True)
class QueueCommand:
    """An operator's action on one queued file (``path`` as the queue holds it)."""

    action: QueueAction
    path: str


@dataclass(frozen=True)
class CommandOutcome:
    entry: QueueEntry | None  # the entry after the command (None: refused, nothing changes)
    error: str = ""


def apply_action(entries: Collection[QueueEntry], command: QueueCommand) -> CommandOutcome:
    """The table of queue control. ``list`` changes nothing; the rest need the file to be queued.

    ======================  ==========================================================================
    action                  the entry after it
    ======================  ==========================================================================
    ``retry``               ``not_before`` 0: may be taken at once (failures, and so its place, stay)
    ``prioritize``          ``first`` above every other entry's, ``not_before`` 0: the next one taken
    ``hold``                ``held``: never taken until released (an attempt running now finishes)
    ``release``             not held; its place is where priority (and ``first``) put it
    ======================  ==========================================================================
    """
    if command.action is QueueAction.LIST:
        return CommandOutcome(None, "list changes nothing")
    entry = next((e for e in entries if e.path == command.path), None)
    if entry is None:
        return CommandOutcome(None, "no such file in the queue (uploaded, rejected or never queued)")
    if command.action is QueueAction.RETRY:
        return CommandOutcome(after_retry_now(entry))
    if command.action is QueueAction.PRIORITIZE:
        top = max((e.first for e in entries), default=0)
        first = entry.first if entry.first == top and top > 0 else top + 1
        return CommandOutcome(replace(entry, first=first, not_before=0.0))
    return CommandOutcome(replace(entry, held=command.action is QueueAction.HOLD))


@dataclass(frozen=True)
class QueueView:
    """One entry as queue control shows it."""

    entry: QueueEntry
    state: QueueState
    retry_in_s: float | None  # waiting: seconds until it may be taken again


def state_of(entry: QueueEntry, now: float, busy: Collection[str]) -> QueueState:
    if entry.path in busy:
        return QueueState.UPLOADING
    if entry.held:
        return QueueState.HELD
    return QueueState.WAITING if entry.not_before > now else QueueState.QUEUED


def queue_view(
    entries: Iterable[QueueEntry], now: float, busy: Collection[str] = (), aging_bps: float = AGING_BPS
) -> list[QueueView]:
    """Every entry in the order the queue takes them: uploading, then queued in ``pick_next``'s order, then
    waiting (soonest retry first), then held."""
    rank = {QueueState.UPLOADING: 0, QueueState.QUEUED: 1, QueueState.WAITING: 2, QueueState.HELD: 3}
    views = [QueueView(e, state_of(e, now, busy), None) for e in entries]
    views = [replace(v, retry_in_s=v.entry.not_before - now) if v.state is QueueState.WAITING else v for v in views]
    return sorted(
        views,
        key=lambda v: (
            rank[v.state],
            v.entry.not_before if v.state is QueueState.WAITING else 0.0,
            _order(v.entry, now, aging_bps),
        ),
    )
