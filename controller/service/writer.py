"""Storing a batch: every message ends stored, dead-lettered or left for redelivery, never in a loop.

    write(batch)
     ├── stored in one transaction ─────────────────────────────────▶ acknowledge all
     ├── database away (``is_outage``), after ``attempts`` tries ───▶ acknowledge none: the broker
     │                                                                 delivers them again (deferred) when
     │                                                                 the session reconnects, which the
     │                                                                 controller does once the database
     │                                                                 answers (``redelivery_owed``)
     └── data error (anything else) ─▶ isolate: bisect the batch, store each half on its own
          ├── a half stored ─────────────────────────────────────────▶ acknowledge its messages
          ├── the database goes away meanwhile ──────────────────────▶ the rest is deferred
          └── one message left that fails ─▶ dead letter stored ──────▶ acknowledge it (it would fail again)
                                            └ dead letter fails too ─▶ this one deferred (a database that
                                                                       refuses even that may be the problem);
                                                                       the rest too if it is an outage

So a QoS 1 message is acknowledged exactly when the database holds it: stored, counted as invalid, or kept
as a dead letter. A poison message costs about log2(batch size) extra transactions, once.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from controller.service.inbox import Ingestor, Received, channel_of
from controller.store.agent_writes import IngestBatch
from controller.store.errors import is_outage

log = logging.getLogger(__name__)

#: store one batch in one transaction (commits), raising whatever the database or the data raises
StoreBatch = Callable[[IngestBatch], None]
#: keep one message that cannot be stored: (item, reason, error text); raises if the database refuses that too
StoreDeadLetter = Callable[[Received, str, str], None]


@dataclass(frozen=True)
class Retry:
    attempts: int = 3
    #: seconds before the n-th retry: ``first_delay_s × n``
    first_delay_s: float = 0.5


class BatchWriter:
    def __init__(
        self,
        ingestor: Ingestor,
        store: StoreBatch,
        dead_letter: StoreDeadLetter,
        *,
        retry: Retry = Retry(),
        sleep: Callable[[float], object] = time.sleep,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.ingestor, self.store, self.dead_letter = ingestor, store, dead_letter
        self.retry, self.sleep, self.clock = retry, sleep, clock
        #: messages were left unacknowledged: the broker sends them again only when the session reconnects
        #: (``Controller._redeliver`` does once the database answers)
        self.redelivery_owed = False

    def write(self, batch: IngestBatch) -> None:
        error = self._store(batch)
        if error is None:
            return
        if is_outage(error):
            self._defer(batch.raw)
            return
        log.warning("a batch of %d messages failed for its data (%s): isolating it", len(batch.raw), _describe(error))
        self._isolate([Received(*item) for item in batch.raw], error)

    def _store(self, batch: IngestBatch) -> BaseException | None:
        """Store and acknowledge ``batch``; the error if it could not be stored (outages retried first)."""
        for attempt in range(self.retry.attempts):
            try:
                self.store(batch)
            except Exception as exc:
                if not is_outage(exc):
                    return exc
                log.error("storing %d messages failed (attempt %d): %s", len(batch.raw), attempt + 1, exc)
                if attempt + 1 < self.retry.attempts:
                    self.sleep(self.retry.first_delay_s * (attempt + 1))
                error: BaseException = exc
                continue
            self.ingestor.stored(batch, self.clock())
            _acknowledge(batch.acks)
            return None
        return error

    def _isolate(self, items: list[Received], error: BaseException) -> None:
        """``items`` failed together with ``error``, a data error: store what can be, bury what cannot."""
        work: list[tuple[list[Received], BaseException | None]] = [(items, error)]  # a stack; None: not tried
        while work:
            group, failure = work.pop()
            if failure is None:
                failure = self._store(self.ingestor.rebatch(group))
                if failure is None:
                    continue
            if len(group) > 1 and not is_outage(failure):
                middle = len(group) // 2
                work += [(group[middle:], None), (group[:middle], None)]  # the first half first
                continue
            if not is_outage(failure):
                failure = self._bury(group[0], failure)
                if failure is None:
                    continue
                if not is_outage(failure):  # the dead letter failed on its own: keep this one, go on
                    self._defer(group)
                    continue
            self._defer([*group, *(item for rest, _e in work for item in rest)])
            return

    def _bury(self, item: Received, error: BaseException) -> BaseException | None:
        """Dead-letter ``item`` and acknowledge it; the error if the database would not take the dead letter."""
        reason = f"{channel_of(item.topic)}:Unstorable"
        try:
            self.dead_letter(item, reason, _describe(error))
        except Exception as exc:
            log.error("could not keep a dead letter for %r (%s): leaving it for redelivery", item.topic[:200], exc)
            return exc
        self.ingestor.dead_lettered(reason)
        log.error(
            "dead-lettered a message on %r that cannot be stored (%s); acknowledged, it will not come back",
            item.topic[:200],
            _describe(error),
        )
        if item.ack is not None:
            _acknowledge([item.ack])
        return None

    def _defer(self, items: Sequence[tuple[object, ...]]) -> None:
        self.ingestor.stats.deferred += len(items)
        self.redelivery_owed = True
        log.error("database unavailable: %d messages not stored and not acknowledged (redelivered later)", len(items))


def _describe(error: BaseException) -> str:
    return f"{type(error).__name__}: {str(error)[:500]}"


def _acknowledge(acks: Sequence[Callable[[], None]]) -> None:
    for ack in acks:
        try:
            ack()
        except Exception as exc:  # a lost connection: the broker delivers it again, the store drops the copy
            log.warning("acknowledgement failed: %s", exc)
