"""Delivering the outbox: each due notification POSTed to its webhook (Alertmanager's JSON), in its own thread.

A receiver that answers 2xx has it; anything else (refused, timeout, 5xx, 4xx) is tried again after a delay
doubling from ``retry_first_s`` to ``retry_max_s``, until ``give_up_after_h`` after it was queued. A
notification for a webhook no longer configured is given up at once. Slow receivers delay only this thread:
the tick, ingest and evaluation never wait for a webhook.
"""

from __future__ import annotations

import json
import logging
import urllib.error
import urllib.request
from collections.abc import Callable, Collection, Mapping
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Engine
from sqlmodel import Session

from controller.alerting import store
from controller.alerting.state import RetryPolicy
from controller.config import AlertsSection, WebhookSection
from controller.store.database import to_db_time
from controller.store.models import AlertNotification

log = logging.getLogger(__name__)


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """A redirect is not followed (it would carry the secret header elsewhere): it fails like any non-2xx."""

    def redirect_request(self, *_args: Any, **_kwargs: Any) -> None:
        return None


_OPENER = urllib.request.build_opener(_NoRedirect)


def post_json(webhook: WebhookSection, body: Mapping[str, object]) -> None:
    """POST ``body`` to the webhook; raises on anything but a 2xx answer (a redirect too)."""
    headers = {"Content-Type": "application/json", "User-Agent": "edgefleet-controller"}
    if webhook.header:
        headers[webhook.header] = webhook.secret
    request = urllib.request.Request(webhook.url, data=json.dumps(body).encode(), headers=headers, method="POST")
    with _OPENER.open(request, timeout=webhook.timeout_s) as response:
        response.read(65536)


class Notifier:
    def __init__(
        self,
        engine: Engine,
        config: AlertsSection,
        *,
        scopes: Callable[[], Collection[str]],
        post: Callable[[WebhookSection, Mapping[str, object]], None] = post_json,
    ) -> None:
        self.engine = engine
        self.webhooks = {w.url: w for w in config.webhooks}
        self.retry = RetryPolicy(config.retry_first_s, config.retry_max_s, config.give_up_after_h * 3600)
        self.scopes = scopes
        self.post = post
        self.delivered = 0
        self.failed_attempts = 0
        self.given_up = 0

    def deliver_due(self, now: Callable[[], datetime]) -> int:
        """Try every due notification once; returns how many were delivered."""
        with Session(self.engine) as session:
            pending = store.due(session, self.scopes(), now())
            session.expunge_all()
        delivered = 0
        for item in pending:
            delivered += self._attempt(item, now)
        return delivered

    def _attempt(self, item: AlertNotification, now: Callable[[], datetime]) -> int:
        assert item.id is not None
        webhook = self.webhooks.get(item.webhook)
        if webhook is None:
            self._record(item.id, {"given_up": True, "last_error": "webhook no longer configured"})
            self.given_up += 1
            return 0
        try:
            self.post(webhook, item.payload)
        except Exception as exc:  # refused, timeout, an HTTP error status: try again later
            self._failed(item, now(), _describe(exc))
            return 0
        self._record(item.id, {"delivered_at": to_db_time(now()), "attempts": item.attempts + 1, "last_error": ""})
        self.delivered += 1
        log.info("alert notification %d (%s) delivered to %s", item.id, item.status, item.webhook)
        return 1

    def _failed(self, item: AlertNotification, at: datetime, error: str) -> None:
        assert item.id is not None
        attempts = item.attempts + 1
        self.failed_attempts += 1
        age = (at - to_db_time(item.created_at)).total_seconds()
        if age >= self.retry.give_up_after_s:
            self.given_up += 1
            log.error("alert notification %d to %s given up after %d attempts: %s", item.id, item.webhook,
                      attempts, error)  # fmt: skip
            self._record(item.id, {"attempts": attempts, "given_up": True, "last_error": error})
            return
        delay = self.retry.delay(attempts)
        log.warning("alert notification %d to %s failed (attempt %d, next in %.0f s): %s", item.id, item.webhook,
                    attempts, delay, error)  # fmt: skip
        values = {
            "attempts": attempts,
            "last_error": error,
            "next_attempt_at": to_db_time(at + timedelta(seconds=delay)),
        }
        self._record(item.id, values)

    def _record(self, notification_id: int, values: Mapping[str, object]) -> None:
        with Session(self.engine) as session:
            store.record_attempt(session, notification_id, values)


def _describe(exc: BaseException) -> str:
    if isinstance(exc, urllib.error.HTTPError):
        return f"HTTP {exc.code}"
    return f"{type(exc).__name__}: {exc}"[:500]
