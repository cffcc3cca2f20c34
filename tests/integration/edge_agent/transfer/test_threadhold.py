"""A thread's time held by the CPU, read from the real ``/proc/thread-self/schedstat``: a thread that waits in
the kernel (as a sender does on a full socket) is not held; one that computes (or waits for a core) is."""

from __future__ import annotations

import time

from edge_agent.transfer.threadhold import ThreadHold


def test_a_sleeping_thread_is_not_held_and_a_computing_one_is() -> None:
    mark = ThreadHold.mark()
    time.sleep(0.5)
    slept = mark.since()
    assert slept is not None, "no /proc/thread-self/schedstat on this Linux"
    wall, held = slept
    assert wall >= 0.5
    assert held < 0.25 * wall, slept  # one wake-up's latency, even on a busy machine

    mark = ThreadHold.mark()
    start = time.monotonic()
    while time.monotonic() - start < 0.5:  # running, or runnable waiting for a core: held either way
        pass
    spun = mark.since()
    assert spun is not None
    wall, held = spun
    assert held > 0.75 * wall, spun
