"""Supervision: a controller thread that dies anyway is started again, with backoff, and it shows.

Every worker loop catches what one input can raise and goes on (log, count, next). What still ends a
thread (a bug in the loop itself, a ``BaseException``) is logged with its traceback; the supervisor starts
the thread again after a delay that doubles with each death in a row (``Backoff``: 1 s, 2 s, 4 s … 60 s)
and starts over once the thread had run for ``reset_after_s``. ``status()`` tells the health endpoint and
the metrics which threads are alive and how often each was restarted.

The supervisor's own loop only looks at threads and starts them; ``check()`` is one round of it, so tests
drive it with a fake clock and no sleeping.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

log = logging.getLogger(__name__)

SUPERVISOR = "supervisor"


@dataclass(frozen=True)
class Backoff:
    first_s: float = 1.0
    max_s: float = 60.0
    #: a thread that ran this long before dying starts its backoff over
    reset_after_s: float = 60.0

    def delay(self, deaths_in_a_row: int) -> float:
        return min(self.max_s, self.first_s * 2.0 ** min(max(0, deaths_in_a_row - 1), 32))  # no overflow


@dataclass(frozen=True)
class WorkerStatus:
    alive: bool
    restarts: int = 0
    last_error: str = ""


class _Worker:
    def __init__(self, name: str, target: Callable[[], None]) -> None:
        self.name, self.target = name, target
        self.thread: threading.Thread | None = None
        self.started_at = 0.0
        self.ended_at: float | None = None
        self.restarts = 0
        self.deaths_in_a_row = 0
        self.last_error = ""


class Supervisor:
    def __init__(
        self,
        stop: threading.Event,
        *,
        backoff: Backoff = Backoff(),
        clock: Callable[[], float] = time.monotonic,
        interval_s: float = 0.2,
        name_prefix: str = "controller-",
    ) -> None:
        self._stop = stop
        self.backoff, self.clock, self.interval_s, self.name_prefix = backoff, clock, interval_s, name_prefix
        self._workers: dict[str, _Worker] = {}
        self._thread: threading.Thread | None = None

    def spawn(self, name: str, target: Callable[[], None]) -> None:
        """Run ``target`` (a loop that returns once the stop event is set) in a supervised thread."""
        worker = _Worker(name, target)
        self._workers[name] = worker
        self._start(worker)

    def start(self) -> Supervisor:
        self._thread = threading.Thread(target=self.run, name=f"{self.name_prefix}{SUPERVISOR}", daemon=True)
        self._thread.start()
        return self

    def run(self) -> None:
        while not self._stop.wait(self.interval_s):
            try:
                self.check()
            except Exception:  # looking at threads should never fail; if it does, look again next round
                log.exception("supervisor round failed")

    def check(self) -> list[str]:
        """One round: start again every dead worker whose backoff has passed; returns their names."""
        restarted = []
        for worker in list(self._workers.values()):
            if self._stop.is_set():
                break
            if worker.thread is None or worker.thread.is_alive() or worker.ended_at is None:
                continue
            if self.clock() - worker.ended_at < self.backoff.delay(worker.deaths_in_a_row):
                continue
            worker.restarts += 1
            log.warning(
                "restarting thread %s (restart %d, last error: %s)", worker.name, worker.restarts, worker.last_error
            )
            self._start(worker)
            restarted.append(worker.name)
        return restarted

    def status(self) -> dict[str, WorkerStatus]:
        threads = {
            name: WorkerStatus(w.thread is not None and w.thread.is_alive(), w.restarts, w.last_error)
            for name, w in self._workers.items()
        }
        if self._thread is not None:
            threads[SUPERVISOR] = WorkerStatus(self._thread.is_alive())
        return threads

    def join(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        threads = [w.thread for w in self._workers.values()] + [self._thread]
        for thread in threads:
            if thread is not None and thread is not threading.current_thread():
                thread.join(max(0.0, deadline - time.monotonic()))

    def _start(self, worker: _Worker) -> None:
        worker.started_at, worker.ended_at = self.clock(), None
        worker.thread = threading.Thread(
            target=self._run, args=(worker,), name=f"{self.name_prefix}{worker.name}", daemon=True
        )
        worker.thread.start()

    def _run(self, worker: _Worker) -> None:
        try:
            worker.target()
            if not self._stop.is_set():
                worker.last_error = "returned before the stop"
                log.error("thread %s returned before the stop", worker.name)
        except BaseException as exc:  # anything: this thread is about to end, the supervisor starts it again
            worker.last_error = f"{type(exc).__name__}: {str(exc)[:500]}"
            log.critical("thread %s died: %s", worker.name, worker.last_error, exc_info=True)
        finally:
            ended = self.clock()
            long_run = ended - worker.started_at >= self.backoff.reset_after_s
            worker.deaths_in_a_row = 1 if long_run else worker.deaths_in_a_row + 1
            worker.ended_at = ended
