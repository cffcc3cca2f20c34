"""Supervisor: dead threads come back after a growing backoff, and the status says what is down. The clock is
fake and ``check()`` is called by the test: threads are real, joined, never slept on."""

from __future__ import annotations

import threading

import pytest

from controller.service.supervisor import SUPERVISOR, Backoff, Supervisor


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class ThreadKill(BaseException):
    """What no loop catches (``except Exception``): the thread ends."""


class Flaky:
    """A worker target that dies while ``dying`` is set, else runs until ``release`` (or the stop)."""

    def __init__(self, stop: threading.Event, error: BaseException | None = None) -> None:
        self.stop, self.error = stop, error or ThreadKill("injected")
        self.dying = True
        self.runs = 0
        self.running = threading.Event()
        self.release = threading.Event()

    def __call__(self) -> None:
        self.runs += 1
        if self.dying:
            raise self.error
        self.running.set()
        while not self.stop.is_set() and not self.release.is_set():
            self.stop.wait(0.01)


@pytest.fixture
def stop() -> threading.Event:
    return threading.Event()


def make(stop: threading.Event, clock: Clock, **backoff: float) -> Supervisor:
    return Supervisor(stop, backoff=Backoff(**backoff), clock=clock)


def dead(supervisor: Supervisor, name: str) -> None:
    """Wait for the worker's thread to end (a join, not a sleep)."""
    thread = supervisor._workers[name].thread
    assert thread is not None
    thread.join(30)
    assert not thread.is_alive()


@pytest.mark.parametrize(
    ("deaths", "delay"), [(0, 1.0), (1, 1.0), (2, 2.0), (3, 4.0), (6, 32.0), (7, 60.0), (10**6, 60.0)]
)
def test_backoff_doubles_up_to_its_cap_and_never_overflows(deaths: int, delay: float) -> None:
    assert Backoff(first_s=1.0, max_s=60.0).delay(deaths) == delay


def test_a_dead_thread_is_restarted_after_its_backoff_and_the_backoff_grows(stop: threading.Event) -> None:
    clock = Clock()
    supervisor = make(stop, clock, first_s=1.0, max_s=60.0, reset_after_s=60.0)
    worker = Flaky(stop, ThreadKill("boom"))
    supervisor.spawn("ingest", worker)
    dead(supervisor, "ingest")
    status = supervisor.status()["ingest"]
    assert (status.alive, status.restarts, status.last_error) == (False, 0, "ThreadKill: boom")
    assert supervisor.check() == []  # 1 s has not passed
    clock.now += 1.0
    assert supervisor.check() == ["ingest"]
    dead(supervisor, "ingest")  # dies again at once: the next delay is 2 s
    clock.now += 1.5
    assert supervisor.check() == []
    clock.now += 0.5
    assert supervisor.check() == ["ingest"]
    dead(supervisor, "ingest")
    worker.dying = False
    clock.now += 4.0
    assert supervisor.check() == ["ingest"]
    assert worker.running.wait(30)
    assert supervisor.status()["ingest"].alive
    assert supervisor.status()["ingest"].restarts == 3
    assert worker.runs == 4
    stop.set()
    supervisor.join(30)


def test_a_thread_that_ran_long_enough_starts_its_backoff_over(stop: threading.Event) -> None:
    clock = Clock()
    supervisor = make(stop, clock, first_s=1.0, max_s=60.0, reset_after_s=60.0)
    worker = Flaky(stop)
    supervisor.spawn("tick", worker)
    for step in (1.0, 2.0, 4.0):  # three quick deaths in a row
        dead(supervisor, "tick")
        clock.now += step
        assert supervisor.check() == ["tick"]
    dead(supervisor, "tick")
    worker.dying = False
    clock.now += 8.0
    assert supervisor.check() == ["tick"]
    assert worker.running.wait(30)
    clock.now += 120.0  # a long healthy run, then it dies again
    worker.dying = True
    worker.running.clear()
    worker.release.set()
    dead(supervisor, "tick")
    worker.release.clear()
    clock.now += 1.0
    assert supervisor.check() == ["tick"]  # 1 s again, not 16 s


@pytest.mark.parametrize("error", [RuntimeError("bug"), SystemExit(3), KeyboardInterrupt()])
def test_any_exception_counts_as_a_death(stop: threading.Event, error: BaseException) -> None:
    clock = Clock()
    supervisor = make(stop, clock)
    supervisor.spawn("janitor", Flaky(stop, error))
    dead(supervisor, "janitor")
    assert supervisor.status()["janitor"].last_error.startswith(type(error).__name__)
    clock.now += 1.0
    assert supervisor.check() == ["janitor"]


def test_a_loop_that_returns_before_the_stop_is_restarted_too(stop: threading.Event) -> None:
    clock = Clock()
    supervisor = make(stop, clock)
    supervisor.spawn("ingest", lambda: None)
    dead(supervisor, "ingest")
    assert supervisor.status()["ingest"].last_error == "returned before the stop"
    clock.now += 1.0
    assert supervisor.check() == ["ingest"]


def test_nothing_is_restarted_once_stopping(stop: threading.Event) -> None:
    clock = Clock()
    supervisor = make(stop, clock)
    supervisor.spawn("ingest", Flaky(stop))
    dead(supervisor, "ingest")
    stop.set()
    clock.now += 100.0
    assert supervisor.check() == []


def test_status_lists_every_worker_and_the_supervisor_itself(stop: threading.Event) -> None:
    supervisor = make(stop, Clock())
    healthy = Flaky(stop)
    healthy.dying = False
    supervisor.spawn("ingest", healthy)
    supervisor.spawn("tick", Flaky(stop))
    assert healthy.running.wait(30)
    dead(supervisor, "tick")
    supervisor.start()
    status = supervisor.status()
    assert {name: s.alive for name, s in status.items()} == {"ingest": True, "tick": False, SUPERVISOR: True}
    stop.set()
    supervisor.join(30)
    assert not any(s.alive for s in supervisor.status().values())


def test_the_supervisor_loop_restarts_by_itself(stop: threading.Event) -> None:
    """The real loop (its own thread, real clock) with a zero backoff: the dead thread comes back."""
    supervisor = Supervisor(stop, backoff=Backoff(first_s=0.0), interval_s=0.01)
    worker = Flaky(stop)
    supervisor.spawn("ingest", worker)
    dead(supervisor, "ingest")
    worker.dying = False
    supervisor.start()
    assert worker.running.wait(30)
    assert supervisor.status()["ingest"].restarts == 1
    stop.set()
    supervisor.join(30)
