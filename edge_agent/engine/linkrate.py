"""The link-rate estimator: how fast this agent's uplink really moves part bytes (clock passed in).

**What is measured.** The bytes of part requests that the server's TCP acknowledged (the executor asks the
socket how much it still holds unacknowledged after every write and while it waits for the answer; where it
cannot, a byte counts when the kernel took it), over *busy time*: time during which at least one part request
is on the wire (``begin`` .. ``end``). Idle time (nothing to send, a closed window, the back-off between
retries) is not counted, so an idle agent keeps its last estimate instead of decaying to zero; busy time in
which nothing moves (a stall) counts as zero bytes and pulls the estimate down. A bandwidth cap is part of the
link as the engine sees it: a capped engine measures the cap.

**How it is smoothed.** Bytes and busy time are gathered into samples of at least ``sample_s`` of busy time
(1 s). Each sample's rate ``r`` is folded into an exponentially weighted moving average whose weight grows
with the sample's length ``dt``: ``a = 1 - exp(-dt / tau)``, ``estimate += a * (r - estimate)``, with
``tau`` = 10 s. The first sample is taken as it is. So a step change of the link is followed to 63 % after
``tau`` of busy time and to 95 % after ``3 tau``; a long sample (a stall of a minute) weighs in almost alone.
Until the first sample is complete the rate is unknown (None).
"""

from __future__ import annotations

import math

TAU_S = 10.0
SAMPLE_S = 1.0


class LinkEstimator:
    def __init__(self, now: float, tau_s: float = TAU_S, sample_s: float = SAMPLE_S) -> None:
        if tau_s <= 0 or sample_s <= 0:
            raise ValueError(f"tau_s and sample_s must be > 0, got {tau_s}, {sample_s}")
        self._tau = tau_s
        self._sample = sample_s
        self._active = 0
        self._last = now
        self._bytes = 0  # in the sample being gathered
        self._busy = 0.0  # busy seconds in the sample being gathered
        self._rate: float | None = None

    @property
    def active(self) -> int:
        """Part requests on the wire now."""
        return self._active

    def begin(self, now: float) -> None:
        """A part request starts."""
        self._advance(now)
        self._active += 1

    def end(self, now: float) -> None:
        """A part request ended (however it ended)."""
        self._advance(now)
        self._active = max(0, self._active - 1)

    def add(self, nbytes: int, now: float) -> None:
        """``nbytes`` more were acknowledged."""
        if nbytes < 0:
            raise ValueError(f"cannot add {nbytes} bytes")
        self._advance(now)
        self._bytes += nbytes
        self._fold()

    def rate(self, now: float) -> float | None:
        """The smoothed rate in bytes/s; None until one sample is complete."""
        self._advance(now)
        self._fold()
        return self._rate

    def _advance(self, now: float) -> None:
        if self._active:
            self._busy += max(0.0, now - self._last)
        self._last = max(self._last, now)

    def _fold(self) -> None:
        if self._busy < self._sample:
            return
        sample = self._bytes / self._busy
        if self._rate is None:
            self._rate = sample
        else:
            weight = 1.0 - math.exp(-self._busy / self._tau)
            self._rate += weight * (sample - self._rate)
        self._bytes, self._busy = 0, 0.0
