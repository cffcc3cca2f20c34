"""Recording events end to end: two controllers, a webhook receiver written for the test that is down first, then
up; recordings made 'cataloged' directly in the real database (the catalog worker is not under test). Each
recording's event arrives once, signed, after retries; a 'pending' recording sends none."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from sqlmodel import Session, select

from controller.recordings.events import (
    EVENT_ID_HEADER,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    TOPIC,
    event_id,
    verify,
)
from controller.service.app import Controller
from controller.store.models import Recording, RecordingDelivery
from edgefleet.localservices import Mosquitto
from fleet_base.mqtt_url import MqttUrl
from tests.integration.controller.fakes import add_user_and_wait, connect_retrying
from tests.integration.controller.webhook import Receiver
from tests.waiting import wait_for

pytestmark = pytest.mark.integration

SECRET = "pipeline-secret-0123456789"


def _recording(tag: str, n: int, status: str) -> Recording:
    key = f"field/pi-{tag}/rec-{n}.flac"
    now = datetime.now(UTC)
    return Recording(
        key=key, agent_id=f"pi-{tag}", site="garden", file=f"rec-{n}.wav", uploaded_at=now, sha256=f"{n:064x}",
        original_bytes=1000 + n, stored_bytes=700 + n, codec="flac", status=status,
        cataloged_at=now if status == "cataloged" else None,
    )  # fmt: skip


def _deliveries(controller: Controller, ids: set[int]) -> list[RecordingDelivery]:
    with Session(controller.engine) as session:
        rows = session.exec(select(RecordingDelivery)).all()
        return [d for d in rows if d.recording_id in ids]


@pytest.mark.timeout(240)
def test_each_cataloged_recording_is_delivered_once_signed_after_the_receiver_was_down(
    database_url: str, start_controller: Callable[..., Controller], receiver: Receiver
) -> None:
    url = f"http://127.0.0.1:{receiver.port}/recordings"
    events = {"webhooks": [{"url": url, "secret": SECRET}], "interval_s": 0.2, "retry_first_s": 0.2, "retry_max_s": 0.5}
    first = start_controller(database_url, recordings_events=events, alerts={"enabled": False})
    second = start_controller(
        database_url, recordings_events=events, alerts={"enabled": False}, controller_id="ctl-ev2"
    )
    tag = uuid.uuid4().hex[:8]
    rows = [_recording(tag, n, "cataloged") for n in range(3)] + [_recording(tag, 9, "pending")]
    with Session(first.engine, expire_on_commit=False) as session:
        session.add_all(rows)
        session.commit()
    cataloged = {r.id for r in rows[:3] if r.id is not None}
    every = cataloged | {rows[3].id or 0}

    # the receiver is down: one row per cataloged recording (two controllers, created once), retried
    def retried() -> bool:
        found = _deliveries(first, every)
        return len(found) == len(cataloged) and all(d.attempts >= 2 for d in found)

    wait_for(retried, 90, "retries while the receiver is down")
    queued = _deliveries(first, every)
    assert sorted(d.recording_id for d in queued) == sorted(cataloged)
    assert all(d.delivered_at is None and d.last_error for d in queued), [
        (d.delivered_at, d.last_error, d.attempts) for d in queued
    ]

    receiver.start()
    wait_for(lambda: all(d.delivered_at for d in _deliveries(first, every)), 90, "delivery after the receiver is up")
    rounds = (first.recording_events.rounds, second.recording_events.rounds)
    wait_for(lambda: first.recording_events.rounds > rounds[0] + 3 and second.recording_events.rounds > rounds[1] + 3,
             60, "more delivery rounds")  # fmt: skip

    mine = [(h, b) for h, b in receiver.raw if json.loads(b)["recording"]["agent_id"] == f"pi-{tag}"]
    by_key = {r.key: r for r in rows}
    ids = sorted(h[EVENT_ID_HEADER] for h, _b in mine)
    assert ids == sorted(event_id(r.key, r.sha256) for r in rows[:3])  # each once; none for the pending one
    for headers, sent in mine:
        assert verify(SECRET, headers[TIMESTAMP_HEADER], headers[SIGNATURE_HEADER], sent, time.time())
        event = json.loads(sent)
        assert event["type"] == "recording.stored"
        assert event["id"] == headers[EVENT_ID_HEADER]
        assert event["recording"]["sha256"] == by_key[event["recording"]["key"]].sha256


@pytest.mark.timeout(180)
def test_with_mqtt_on_the_event_is_published_for_a_pipeline_user_who_can_only_read_it(
    database_url: str, start_controller: Callable[..., Controller], mqtt_broker: Mosquitto
) -> None:
    user = f"pipeline-{uuid.uuid4().hex[:6]}"
    add_user_and_wait(mqtt_broker, user, role="pipeline")
    got: list[bytes] = []
    url = MqttUrl.parse(mqtt_broker.url_for(user))
    pipeline = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=user, protocol=mqtt.MQTTv5)
    pipeline.username_pw_set(url.username, url.password)
    pipeline.on_message = lambda _c, _u, message: got.append(bytes(message.payload))
    subscribed: list[object] = []
    pipeline.on_subscribe = lambda *args: subscribed.append(args)
    connect_retrying(pipeline, url)
    pipeline.subscribe(TOPIC, qos=1)
    pipeline.loop_start()
    wait_for(lambda: subscribed, 60, "the pipeline's subscription")
    try:
        controller = start_controller(
            database_url, recordings_events={"mqtt": True, "interval_s": 0.2}, alerts={"enabled": False}
        )
        tag = uuid.uuid4().hex[:8]
        row = _recording(tag, 1, "cataloged")
        with Session(controller.engine, expire_on_commit=False) as session:
            session.add(row)
            session.commit()
        wanted = event_id(row.key, row.sha256)
        wait_for(lambda: any(json.loads(p)["id"] == wanted for p in got), 60, "the event on the topic")
        wait_for(lambda: all(d.delivered_at for d in _deliveries(controller, {row.id or 0})), 60, "recorded")
        (delivery,) = _deliveries(controller, {row.id or 0})
        assert (delivery.target, delivery.attempts) == (f"mqtt:{TOPIC}", 1)
        assert [json.loads(p)["id"] for p in got].count(wanted) == 1
    finally:
        pipeline.loop_stop()
        pipeline.disconnect()
