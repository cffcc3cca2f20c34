"""The link-rate estimator: how fast this agent's uplink really delivers part bytes to the server (clock passed in).

**What is measured.** The bytes of *completed* parts, those the server answered with their ETag, over *busy
time*: time during which at least one part request is on the wire (``begin`` .. ``end``). Bytes the kernel
wrote, or that the next TCP hop acknowledged, do not count: a buffering middlebox (a satellite link's
performance-enhancing proxy, a proxy with megabytes of buffer) acknowledges a whole part in a second and then
needs minutes to pass it on, and only the server's answer says the bytes arrived. Idle time (nothing to send, a
closed window, the back-off between retries) is not counted, so an idle agent keeps its last estimate.

**Whose busy time.** Parts overlap, so each part is charged its *share* of the busy time: while ``k`` parts
are on the wire, each is charged ``1/k`` of every second (a virtual clock that runs at ``1/k``; a part's share
is how far it ran between the part's ``begin`` and ``end``). The shares of all parts add up to the busy time,
and ``c`` parts that start and finish together give ``c × size / T`` at their first completion, the whole
link, not ``1 / c`` of it. A part that failed (a stall, a missed deadline, an error answer) is charged its
share with zero bytes: busy time in which nothing arrived pulls the estimate down. A part cancelled by a stop
is left out (the stop is not the link's doing).

**How it is smoothed.** Ended parts are gathered into samples of at least ``sample_s`` (1 s) of share. Each
sample's rate ``r`` = its bytes ÷ its share is folded into an exponentially weighted moving average whose weight
grows with the sample's length ``dt``: ``a = 1 - exp(-dt / tau)``, ``estimate += a * (r - estimate)``, with
``tau`` = 10 s. The first sample is taken as it is. So a step change of the link is followed to 63 % after
``tau`` of busy time and to 95 % after ``3 tau``; a long sample (a part that took ten minutes) weighs in almost
alone. Until the first sample is complete the rate is unknown (None).

**Parts still on the wire.** A part of ``s`` bytes that has been charged a share ``σ`` without completing says
the link is slower than ``s / σ`` (else it would be done): the rate given is never above that, for any part on
the wire whose share is at least ``sample_s``. So a link that slows down (or a buffering middlebox that fills)
is seen while its slow parts are still moving, not only when they end.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

TAU_S = 10.0
SAMPLE_S = 1.0


@dataclass(frozen=True)
class _OnWire:
    nbytes: int
    start: float  # the virtual clock when the part began


class LinkEstimator:
    def __init__(self, now: float, tau_s: float = TAU_S, sample_s: float = SAMPLE_S) -> None:
        if tau_s <= 0 or sample_s <= 0:
            raise ValueError(f"tau_s and sample_s must be > 0, got {tau_s}, {sample_s}")
        self._tau = tau_s
        self._sample = sample_s
        self._last = now
        self._virtual = 0.0  # runs at 1/k while k parts are on the wire
        self._parts: dict[int, _OnWire] = {}
        self._next = 0
        self._bytes = 0  # in the sample being gathered
        self._share = 0.0  # busy seconds (shares) in the sample being gathered
        self._rate: float | None = None

    @property
    def active(self) -> int:
        """Part requests on the wire now."""
        return len(self._parts)

    def begin(self, nbytes: int, now: float) -> int:
        """A part request of ``nbytes`` starts; returns its handle for :meth:`end` / :meth:`cancel`."""
        if nbytes < 0:
            raise ValueError(f"a part cannot have {nbytes} bytes")
        self._advance(now)
        handle, self._next = self._next, self._next + 1
        self._parts[handle] = _OnWire(nbytes, self._virtual)
        return handle

    def end(self, handle: int, completed: bool, now: float) -> None:
        """A part request ended: ``completed`` when the server answered it with its ETag (its bytes count), else
        it failed (its share counts with no bytes). An unknown handle is ignored."""
        self._advance(now)
        part = self._parts.pop(handle, None)
        if part is None:
            return
        self._bytes += part.nbytes if completed else 0
        self._share += self._virtual - part.start
        self._fold()

    def cancel(self, handle: int, now: float) -> None:
        """A part request was stopped (not the link's doing): neither its bytes nor its time count."""
        self._advance(now)
        self._parts.pop(handle, None)

    def rate(self, now: float) -> float | None:
        """The smoothed rate in bytes/s, never above what a part still on the wire allows; None until one
        sample is complete."""
        self._advance(now)
        if self._rate is None:
            return None
        bound = [p.nbytes / share for p in self._parts.values() if (share := self._virtual - p.start) >= self._sample]
        return min([self._rate, *bound])

    def rate_so_far(self, now: float) -> float | None:
        """:meth:`rate`, or before the first sample is complete the bytes over the share of the parts ended so far
        (None if none carried bytes): a short measurement, for a fast link that carried a whole file in less
        than ``sample_s`` of busy time (the cost model's first look at such a link)."""
        rate = self.rate(now)
        if rate is not None or self._bytes <= 0 or self._share <= 0:
            return rate
        return self._bytes / self._share

    def _advance(self, now: float) -> None:
        if self._parts and now > self._last:
            self._virtual += (now - self._last) / len(self._parts)
        self._last = max(self._last, now)

    def _fold(self) -> None:
        if self._share < self._sample:
            return
        sample = self._bytes / self._share
        if self._rate is None:
            self._rate = sample
        else:
            weight = 1.0 - math.exp(-self._share / self._tau)
            self._rate += weight * (sample - self._rate)
        self._bytes, self._share = 0, 0.0
