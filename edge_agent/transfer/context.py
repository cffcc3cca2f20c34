"""What every file job shares: the adapters, the current limits (as assigned and as the thin-link guard applies
them), the link (pacing, the measured rate), counters, and retry-with-backoff."""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol, TypeVar

from edge_agent.engine.backoff import full_jitter
from edge_agent.engine.events import EngineEvent
from edge_agent.engine.limits import Limits, MiB
from edge_agent.engine.linkguard import guard
from edge_agent.transfer.config import EngineConfig
from edge_agent.transfer.encoding import Compression
from edge_agent.transfer.errors import RetryableError
from edge_agent.transfer.gate import SlotGate, Stopped
from edge_agent.transfer.link import Link
from edge_agent.transfer.ports import Journal, Store
from fleet_audio.source import ObjectSource as Source

log = logging.getLogger("edgefleet.upload")
T = TypeVar("T")
__all__ = ["ALSO_REPORTED", "Codec", "Context", "RetryNotice", "Source"]

#: ``extra`` of a log record whose news the engine also gives through a callback (``on_event``,
#: ``on_retry``): a front end that shows those (``edgefleet upload``) filters such records out
ALSO_REPORTED = {"also_reported": True}


@dataclass(frozen=True)
class RetryNotice:
    """A request to S3 failed and is tried again after ``delay_s``; or (``error`` empty) it went through after
    ``failures`` failures. ``give_up_in_s`` is None when it is retried for as long as it takes."""

    what: str
    error: str
    failures: int
    failing_s: float  # since the request was first tried
    delay_s: float = 0.0
    give_up_in_s: float | None = None

    @property
    def recovered(self) -> bool:
        return not self.error


class Codec(Protocol):
    """The codec functions the engine calls (``fleet_audio.source``); tests pass fakes."""

    def check_finished(self, path: Path, *, settled: bool = False) -> None: ...
    def open_source(self, path: Path, compression_level: int) -> Source: ...
    def object_key(self, prefix: str, agent_id: str, path: Path, source: Source) -> str: ...


@dataclass
class Counters:
    bytes_uploaded_total: int = 0
    retries_total: int = 0
    errors_total: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add_bytes(self, n: int) -> None:
        with self.lock:
            self.bytes_uploaded_total += n


class Context:
    def __init__(
        self,
        config: EngineConfig,
        limits: Limits,
        store: Store,
        journal: Journal,
        codec: Codec,
        emit: Callable[[EngineEvent], None],
        clock: Callable[[], float] = time.time,
        compression: Compression | None = None,
    ) -> None:
        self.config = config
        self.limits = limits
        self.store = store
        self.journal = journal
        self.codec = codec
        self.emit = emit
        self.clock = clock
        self.stop = threading.Event()
        self.effective = limits  # the limits the thin-link guard applies (edge_agent.engine.linkguard)
        self.gate = SlotGate(limits, clock)
        self.link = Link(limits.bandwidth_bps, config.stall_timeout_s, self.sleep)
        self._guard_lock = threading.Lock()
        self.counters = Counters()
        self.compression = compression or Compression()  # each new file's level (edge_agent.transfer.encoding)
        self.rng = random.Random()
        self.on_progress: Callable[[str, int], None] = lambda path, nbytes: None
        self.on_retry: Callable[[RetryNotice], None] = lambda notice: None

    def set_limits(self, limits: Limits) -> None:
        self.limits = limits
        self.link.set_cap(limits.bandwidth_bps)
        self.apply_guard(force=True)

    def apply_guard(self, force: bool = False) -> None:
        """The thin-link guard on the link rate measured now; the gate follows at once (new parts only)."""
        with self._guard_lock:
            rate = self.link.rate()
            effective = guard(self.limits, rate)
            if effective == self.effective and not force:
                return
            was, self.effective = self.effective, effective
            self.gate.set_limits(effective)
        if (was.concurrency, was.part_size) != (effective.concurrency, effective.part_size) and rate is not None:
            log.info(
                "link %.0f KiB/s: %d parts in flight of %d MiB (assigned %d of %d MiB)",
                rate / 1024,
                effective.concurrency,
                effective.part_size // MiB,
                self.limits.concurrency,
                self.limits.part_size // MiB,
            )

    def sleep(self, seconds: float, cancelled: Callable[[], bool]) -> None:
        """Sleep, waking early (Stopped) when the engine stops or the job is cancelled."""
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            if cancelled():
                raise Stopped
            self.stop.wait(min(left, 0.2))
        if cancelled():
            raise Stopped

    def retrying(self, what: str, fn: Callable[[], T], cancelled: Callable[[], bool]) -> tuple[T, int]:
        """Run ``fn`` until it does not raise RetryableError; returns (result, retries).

        With ``give_up_after_s``, the last try is at that many seconds after the first one, and its failure
        is raised (saying so)."""
        attempt = 0
        started = time.monotonic()
        give_up = self.config.give_up_after_s
        while True:
            try:
                result = fn()
            except RetryableError as exc:
                failing = time.monotonic() - started
                if give_up and failing >= give_up:
                    raise RetryableError(f"gave up after {failing:.0f} s of failures: {exc}") from exc
                delay = full_jitter(attempt, self.rng.random(), self.config.retry_base_s, self.config.retry_cap_s)
                if give_up:
                    delay = min(delay, give_up - failing)  # one last try at the deadline
                with self.counters.lock:
                    self.counters.retries_total += 1
                level = logging.WARNING if attempt < 3 or attempt % 10 == 0 else logging.DEBUG
                log.log(level, "%s failed: %s; retry %d in %.1f s", what, exc, attempt + 1, delay, extra=ALSO_REPORTED)
                attempt += 1
                left = give_up - failing if give_up else None
                self._notify_retry(RetryNotice(what, str(exc), attempt, failing, delay, left))
                self.sleep(delay, cancelled)
            else:
                if attempt:
                    self._notify_retry(RetryNotice(what, "", attempt, time.monotonic() - started))
                return result, attempt

    def _notify_retry(self, notice: RetryNotice) -> None:
        try:
            self.on_retry(notice)
        except Exception:  # a display problem never stops an upload
            log.exception("on_retry handler failed")
