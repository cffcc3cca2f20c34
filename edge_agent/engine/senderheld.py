"""How much the CPU held the senders back: of the time part requests were on the wire, the share their threads
spent running or waiting to run (clock-free; the durations are passed in).

A part's thread that sends at the link's pace sleeps in the kernel most of the time (the socket's buffer is full);
one that the CPU starves is runnable, waiting for its turn (another thread, a CFS quota), or running. So a share
near 1 says the measured link rate may be the CPU's limit, not the link's; a share near 0 says the link (or the
bandwidth cap's pacing, also a sleep) set it. Time waiting for Python's GIL is a sleep too and is not counted:
the encoder's C code releases the GIL, so what competes with a sender for the CPU shows as run-queue time.

Smoothed like the link rate (:mod:`.linkrate`): each part is folded in with the weight ``1 - exp(-wire_s /
tau)`` of its time on the wire, the first taken as it is. A part whose thread's times could not be read (no
``/proc/thread-self/schedstat``) is not counted: with none counted the share is unknown (None).
"""

from __future__ import annotations

import math

from edge_agent.engine.linkrate import TAU_S


class SenderHeld:
    def __init__(self, tau_s: float = TAU_S) -> None:
        if tau_s <= 0:
            raise ValueError(f"tau_s must be > 0, got {tau_s}")
        self._tau = tau_s
        self._share: float | None = None

    def add(self, held_s: float, wire_s: float) -> None:
        """One part request was on the wire for ``wire_s``; its thread ran or waited to run for ``held_s``."""
        if not (wire_s > 0 and held_s >= 0) or math.isinf(wire_s) or math.isinf(held_s):
            return  # nothing measured (or a clock that went wrong): the share stays as it was
        share = min(1.0, held_s / wire_s)
        if self._share is None:
            self._share = share
        else:
            self._share += (1.0 - math.exp(-wire_s / self._tau)) * (share - self._share)

    @property
    def share(self) -> float | None:
        """The smoothed share (0 .. 1), None until a part was measured."""
        return self._share
