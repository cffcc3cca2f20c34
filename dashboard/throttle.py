"""Login throttling: exponential backoff per key (a user name, a client address); pure, the time is passed in.

The rules, for one key:

- a key may fail ``free_failures`` times in a row without waiting;
- after the n-th failure (n ≥ ``free_failures``) the next attempt must wait
  ``base_s · 2^(n − free_failures)`` seconds after that failure, at most ``max_s``;
- an attempt counts as a failure when it *starts* (``LoginThrottle.begin``) and is taken back when it
  succeeds, so parallel attempts cannot all slip through before the first one fails;
- a success resets the user's key; an address only gets its one attempt back (a valid account must not
  wash away the failures of guesses at other accounts from the same address);
- a key quiet for ``max_s`` after its wait is forgotten; at most ``capacity`` keys are kept (the oldest
  failures are dropped first), so guessing random names cannot grow memory without bound.

IPv6 clients are grouped by their /64 (one host usually owns the whole prefix).
"""

from __future__ import annotations

import ipaddress
import math
from collections import OrderedDict
from dataclasses import dataclass

# 2^64 · base_s exceeds any max_s anyone configures; it keeps the power a float-sized number.
_MAX_DOUBLINGS = 64


@dataclass(frozen=True)
class BackoffPolicy:
    free_failures: int
    base_s: float
    max_s: float

    def delay(self, failures: int) -> float:
        """How long after its last failure a key with ``failures`` consecutive failures must wait."""
        if failures < self.free_failures:
            return 0.0
        doublings = min(failures - self.free_failures, _MAX_DOUBLINGS)
        return min(self.max_s, self.base_s * 2.0**doublings)


@dataclass(frozen=True)
class _Entry:
    failures: int
    last_failure: float


class Backoff:
    """Consecutive failures per key and the wait they impose."""

    def __init__(self, policy: BackoffPolicy, capacity: int = 100_000) -> None:
        self.policy = policy
        self.capacity = capacity
        self._entries: OrderedDict[str, _Entry] = OrderedDict()  # oldest last failure first

    def __len__(self) -> int:
        return len(self._entries)

    def failures(self, key: str) -> int:
        entry = self._entries.get(key)
        return entry.failures if entry else 0

    def retry_after(self, key: str, now: float) -> float:
        """Seconds until ``key`` may try again (0: now)."""
        entry = self._live(key, now)
        if entry is None:
            return 0.0
        delay = self.policy.delay(entry.failures)
        # clamped to the delay itself: (last + delay) - now can round above delay when now == last
        return min(delay, max(0.0, entry.last_failure + delay - now))

    def fail(self, key: str, now: float) -> None:
        entry = self._live(key, now)
        self._entries[key] = _Entry((entry.failures if entry else 0) + 1, now)
        self._entries.move_to_end(key)
        self._trim(now)

    def forgive(self, key: str) -> None:
        """Take one failure back (an attempt counted when it started turned out to succeed)."""
        entry = self._entries.get(key)
        if entry is None:
            return
        if entry.failures <= 1:
            del self._entries[key]
        else:
            self._entries[key] = _Entry(entry.failures - 1, entry.last_failure)

    def reset(self, key: str) -> None:
        self._entries.pop(key, None)

    def _forgotten(self, entry: _Entry, now: float) -> bool:
        return now >= entry.last_failure + self.policy.delay(entry.failures) + self.policy.max_s

    def _live(self, key: str, now: float) -> _Entry | None:
        entry = self._entries.get(key)
        if entry is not None and self._forgotten(entry, now):
            del self._entries[key]
            return None
        return entry

    def _trim(self, now: float) -> None:
        while self._entries:
            key, entry = next(iter(self._entries.items()))
            if not (self._forgotten(entry, now) or len(self._entries) > self.capacity):
                return
            del self._entries[key]


def address_key(host: str | None) -> str:
    """The key a client address is throttled under: IPv4 as is, IPv6 by its /64, anything else verbatim."""
    if not host:
        return "unknown"
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return host[:100]
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.IPv6Network((address, 64), strict=False))
    return str(address)


class LoginThrottle:
    """Backoff per user name and per client address, for one login attempt at a time (see the module text)."""

    def __init__(self, per_user: BackoffPolicy, per_address: BackoffPolicy, capacity: int = 100_000) -> None:
        self.users = Backoff(per_user, capacity)
        self.addresses = Backoff(per_address, capacity)

    def begin(self, user: str, address: str, now: float) -> float:
        """0: go ahead (the attempt is counted as a failure until ``succeeded``); else the seconds to wait."""
        wait = max(self.users.retry_after(user, now), self.addresses.retry_after(address, now))
        if wait > 0:
            return wait
        self.users.fail(user, now)
        self.addresses.fail(address, now)
        return 0.0

    def succeeded(self, user: str, address: str) -> None:
        self.users.reset(user)
        self.addresses.forgive(address)


def retry_after_header(seconds: float) -> str:
    """``Retry-After`` in whole seconds, never 0 for a real wait."""
    return str(max(1, math.ceil(seconds)))
