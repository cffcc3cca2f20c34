"""Delivering the outbox: each due notification POSTed to its webhook (Alertmanager's JSON), in its own thread.

A receiver that answers 2xx has it; anything else (refused, timeout, 5xx, 4xx) is tried again after a delay
doubling from ``retry_first_s`` to ``retry_max_s``, until ``give_up_after_h`` after it was queued. A
notification for a webhook no longer configured is given up at once. Slow receivers delay only this thread:
the tick, ingest and evaluation never wait for a webhook.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Collection, Mapping
from datetime import datetime

from sqlalchemy import Engine
from sqlmodel import Session

from controller.alerting import store
from controller.alerting.state import RetryPolicy
from controller.config import AlertsSection, WebhookSection
from controller.store.models import AlertNotification
from controller.webhooks import Deliveries, Due, post


def post_json(webhook: WebhookSection, body: Mapping[str, object]) -> None:
    """POST ``body`` to the webhook (with its header, if it has one); raises on anything but a 2xx answer."""
    headers = {webhook.header: webhook.secret} if webhook.header else {}
    post(webhook.url, json.dumps(body).encode(), headers, webhook.timeout_s)


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
        retry = RetryPolicy(config.retry_first_s, config.retry_max_s, config.give_up_after_h * 3600)
        self.deliveries = Deliveries("alert notification", retry, self._record)
        self.scopes = scopes
        self.post = post

    @property
    def delivered(self) -> int:
        return self.deliveries.delivered

    @property
    def failed_attempts(self) -> int:
        return self.deliveries.failed_attempts

    @property
    def given_up(self) -> int:
        return self.deliveries.given_up

    def deliver_due(self, now: Callable[[], datetime]) -> int:
        """Try every due notification once; returns how many were delivered."""
        with Session(self.engine) as session:
            pending = store.due(session, self.scopes(), now())
            session.expunge_all()
        return sum(self._attempt(item, now) for item in pending)

    def _attempt(self, item: AlertNotification, now: Callable[[], datetime]) -> int:
        assert item.id is not None
        webhook = self.webhooks.get(item.webhook)
        send = None if webhook is None else (lambda: self.post(webhook, item.payload))
        due = Due(item.id, item.webhook, item.attempts, item.created_at)
        return int(self.deliveries.attempt(due, send, now))

    def _record(self, notification_id: int, values: Mapping[str, object]) -> None:
        with Session(self.engine) as session:
            store.record_attempt(session, notification_id, values)
