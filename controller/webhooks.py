"""Delivering an outbox to webhooks: the HTTP POST and the bookkeeping of one attempt, shared by the alert
notifications (``controller.alerting.notify``) and the recording events (``controller.recordings.events``).

An outbox is a table of rows, one per message × receiver, written in the same transaction as what they tell
(so a stop loses none), and delivered by a thread of its own: a row is due when not delivered, not given up and
its ``next_attempt_at`` has come. ``Deliveries.attempt`` sends one due row: a 2xx answer is delivery; anything
else (refused, timeout, an HTTP error, a redirect) is tried again after ``RetryPolicy.delay`` (doubling), until
``give_up_after_s`` after the row was created; a row whose receiver is no longer configured is given up at once.
Delivery is therefore at least once: a receiver that answered 2xx too late (after our timeout) gets it again.
"""

from __future__ import annotations

import logging
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from controller.alerting.state import RetryPolicy
from controller.store.database import to_db_time

log = logging.getLogger(__name__)

USER_AGENT = "edgefleet-controller"


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """A redirect is not followed (it would carry a secret header elsewhere): it fails like any non-2xx."""

    def redirect_request(self, *_args: Any, **_kwargs: Any) -> None:
        return None


_OPENER = urllib.request.build_opener(_NoRedirect)


def post(url: str, body: bytes, headers: Mapping[str, str], timeout_s: float) -> None:
    """POST ``body`` (JSON) to ``url``; raises on anything but a 2xx answer (a redirect too)."""
    sent = {"Content-Type": "application/json", "User-Agent": USER_AGENT, **headers}
    request = urllib.request.Request(url, data=body, headers=sent, method="POST")
    with _OPENER.open(request, timeout=timeout_s) as response:
        response.read(65536)


def describe(exc: BaseException) -> str:
    """What a failed attempt stores as its ``last_error`` (bounded)."""
    if isinstance(exc, urllib.error.HTTPError):
        return f"HTTP {exc.code}"
    return f"{type(exc).__name__}: {exc}"[:500]


@dataclass(frozen=True, slots=True)
class Due:
    """One due outbox row, as the delivery needs it."""

    id: int
    target: str  # the receiver as configured (a webhook URL)
    attempts: int
    created_at: datetime


class Deliveries:
    """The attempts of one outbox (``what`` names it in logs): each attempt's outcome written by ``record(row id,
    column values)``; counts what happened."""

    def __init__(self, what: str, retry: RetryPolicy, record: Callable[[int, Mapping[str, object]], None]) -> None:
        self.what = what
        self.retry = retry
        self.record = record
        self.delivered = 0
        self.failed_attempts = 0
        self.given_up = 0

    def attempt(self, item: Due, send: Callable[[], None] | None, now: Callable[[], datetime]) -> bool:
        """``send`` the item (``None``: its receiver is no longer configured); True if it was delivered."""
        if send is None:
            self.record(item.id, {"given_up": True, "last_error": "webhook no longer configured"})
            self.given_up += 1
            return False
        try:
            send()
        except Exception as exc:  # refused, timeout, an HTTP error status: try again later
            self._failed(item, now(), describe(exc))
            return False
        self.record(item.id, {"delivered_at": to_db_time(now()), "attempts": item.attempts + 1, "last_error": ""})
        self.delivered += 1
        log.info("%s %d delivered to %s", self.what, item.id, item.target)
        return True

    def _failed(self, item: Due, at: datetime, error: str) -> None:
        attempts = item.attempts + 1
        self.failed_attempts += 1
        age = (at - to_db_time(item.created_at)).total_seconds()
        if age >= self.retry.give_up_after_s:
            self.given_up += 1
            log.error("%s %d to %s given up after %d attempts: %s", self.what, item.id, item.target, attempts, error)
            self.record(item.id, {"attempts": attempts, "given_up": True, "last_error": error})
            return
        delay = self.retry.delay(attempts)
        log.warning("%s %d to %s failed (attempt %d, next in %.0f s): %s", self.what, item.id, item.target,
                    attempts, delay, error)  # fmt: skip
        next_at = to_db_time(at + timedelta(seconds=delay))
        self.record(item.id, {"attempts": attempts, "last_error": error, "next_attempt_at": next_at})
