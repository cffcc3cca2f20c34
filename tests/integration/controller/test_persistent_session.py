"""Nothing the agents publish is lost while the controller (or the broker) is away, and nothing counts twice.

The controller keeps a persistent MQTT v5 session (fixed client id, ``clean_start=False``, session expiry),
so the broker queues QoS 1 events for it, also across a broker restart (Mosquitto persistence), and it
acknowledges a message only once it is stored. The store skips what it already has (QoS 1 is at-least-once).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from functools import partial
from pathlib import Path

import pytest
from sqlalchemy.exc import DataError
from sqlmodel import Session

from controller.config import parse_config
from controller.service.app import Controller
from controller.service.writer import Retry
from controller.store import repo
from controller.store.agent_writes import IngestBatch, write_batch
from controller.store.database import create_all
from edgefleet.localservices import Mosquitto, Postgres
from fleet_protocol.codec import encode
from fleet_protocol.messages import Birth, Event
from fleet_protocol.topics import AgentChannel, agent_topic
from fleet_protocol.vocabulary import EventKind
from tests.integration.controller.fakes import FakeAgent
from tests.integration.controller.helpers import MakeAgent, StartController, files_stored
from tests.waiting import wait_for

pytestmark = pytest.mark.integration

SHA = "ab" * 32


def completed(agent: FakeAgent, name: str) -> Event:
    return Event(
        agent_id=agent.agent_id,
        seq=agent._next(),
        kind=EventKind.UPLOAD_COMPLETED,
        file=f"{name}.wav",
        key=f"field/{agent.agent_id}/{name}.flac",
        original_sha256=SHA,
        original_bytes=1000,
        stored_bytes=600,
        stored_as="flac",
    )


def send(agent: FakeAgent, events: list[Event]) -> None:
    for event in events:
        agent.client.publish(agent.topic(AgentChannel.EVENTS), encode(event), qos=1).wait_for_publish(10)


def wait_stored(controller: Controller, agent_id: str, expected: list[str]) -> None:
    want = sorted(expected)
    wait_for(lambda: files_stored(controller, agent_id) == want, 60, f"{len(want)} events stored")
    assert files_stored(controller, agent_id) == want  # exactly once each


def test_events_sent_while_the_controller_and_the_broker_restart_are_stored_exactly_once(
    database_url: str,
    start_controller: StartController,
    make_agent: MakeAgent,
    mqtt_broker_factory: Callable[[], Mosquitto],
) -> None:
    restart_scenario(database_url, start_controller, make_agent, mqtt_broker_factory(), shared_group="")


def test_a_shared_subscription_session_is_kept_too(
    tmp_path: Path,
    start_controller: StartController,
    make_agent: MakeAgent,
    mqtt_broker_factory: Callable[[], Mosquitto],
) -> None:
    """Mosquitto queues a ``$share`` group's messages for a member that is away (round robin over its sessions)."""
    url = f"sqlite:///{tmp_path / 'shared.db'}"
    restart_scenario(url, start_controller, make_agent, mqtt_broker_factory(), shared_group="controllers")


def restart_scenario(
    database_url: str, start_controller: StartController, make_agent: MakeAgent, broker: Mosquitto, shared_group: str
) -> None:
    controller_id = f"ctl-{uuid.uuid4().hex[:6]}"
    controller = start_controller(database_url, broker=broker, controller_id=controller_id, shared_group=shared_group)
    agent = make_agent(f"pi-{uuid.uuid4().hex[:6]}", broker=broker).connect(subscribe=False)
    before = [completed(agent, f"before-{i}") for i in range(3)]
    send(agent, before)
    wait_stored(controller, agent.agent_id, [e.file for e in before])

    controller.stop()  # e.g. an upgrade: the broker keeps queueing for its session
    away = [completed(agent, f"away-{i}") for i in range(5)]
    send(agent, away)
    agent.close()
    broker.restart(downtime=0.5)  # the queue survives the broker's restart too
    agent = make_agent(agent.agent_id, broker=broker).connect(subscribe=False, birth=False)
    after_restart = [completed(agent, f"broker-back-{i}") for i in range(5)]
    send(agent, after_restart)

    again = start_controller(database_url, broker=broker, controller_id=controller_id, shared_group=shared_group)
    wait_stored(again, agent.agent_id, [e.file for e in before + away + after_restart])
    assert again.link.sessions_resumed == 1


def test_a_message_delivered_twice_or_a_completion_reported_again_is_stored_once(
    database_url: str,
    start_controller: StartController,
    make_agent: MakeAgent,
    mqtt_broker_factory: Callable[[], Mosquitto],
) -> None:
    broker = mqtt_broker_factory()  # its own broker: no retained births left for other tests' controllers
    controller = start_controller(database_url, broker=broker)
    agent = make_agent(f"pi-{uuid.uuid4().hex[:6]}", broker=broker).connect(subscribe=False)
    first = completed(agent, "twice")
    failed = Event(agent_id=agent.agent_id, seq=agent._next(), kind=EventKind.UPLOAD_FAILED, file="f.wav")
    # the same message again (a QoS 1 redelivery), and the same completion after an agent restart (new seq and
    # sent_at: a restarted agent finds the object stored and reports it once more)
    reported_again = first.model_copy(update={"seq": 0, "sent_at": first.sent_at.replace(year=first.sent_at.year + 1)})
    send(agent, [first, failed, first, failed, reported_again])
    marker = completed(agent, "marker")
    send(agent, [marker])
    wait_stored(controller, agent.agent_id, ["f.wav", "marker.wav", "twice.wav"])
    assert controller.ingestor.stats.received >= 6


def test_messages_are_acknowledged_only_once_stored(
    database_url: str,
    start_controller: StartController,
    make_agent: MakeAgent,
    mqtt_broker_factory: Callable[[], Mosquitto],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A controller that cannot store (database away) does not acknowledge: its next run gets them again."""
    broker = mqtt_broker_factory()
    controller_id = f"ctl-{uuid.uuid4().hex[:6]}"

    def failing(*_args: object, **_kw: object) -> None:
        from sqlalchemy.exc import OperationalError

        raise OperationalError("INSERT", {}, Exception("database away"))

    monkeypatch.setattr("controller.service.app.write_batch", failing)
    controller = start_controller(database_url, broker=broker, controller_id=controller_id)
    controller.writer.retry = Retry(attempts=1)
    agent = make_agent(f"pi-{uuid.uuid4().hex[:6]}", broker=broker).connect(subscribe=False, birth=False)
    events = [completed(agent, f"unstored-{i}") for i in range(4)]
    send(agent, events)
    wait_for(lambda: controller.ingestor.stats.deferred >= len(events), 60, "the batches given up")
    assert controller.ingestor.stats.dead_lettered == 0  # an outage is not the messages' fault
    controller.stop()
    monkeypatch.setattr("controller.service.app.write_batch", write_batch)

    again = start_controller(database_url, broker=broker, controller_id=controller_id)
    wait_stored(again, agent.agent_id, [e.file for e in events])


def test_messages_left_unacknowledged_in_an_outage_are_stored_once_the_database_is_back(
    database_url: str,
    start_controller: StartController,
    make_agent: MakeAgent,
    mqtt_broker_factory: Callable[[], Mosquitto],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The broker sends an unacknowledged message again only on a new connection of the session: a controller
    that deferred messages in an outage reconnects once the database answers again, without a restart."""
    broker = mqtt_broker_factory()
    outage = [True]

    def sometimes_failing(*args: object, **kw: object) -> None:
        if outage[0]:
            from sqlalchemy.exc import OperationalError

            raise OperationalError("INSERT", {}, Exception("database away"))
        write_batch(*args, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr("controller.service.app.write_batch", sometimes_failing)
    controller = start_controller(database_url, broker=broker, controller_id=f"ctl-{uuid.uuid4().hex[:6]}")
    controller.writer.retry = Retry(attempts=1)
    agent = make_agent(f"pi-{uuid.uuid4().hex[:6]}", broker=broker).connect(subscribe=False, birth=False)
    events = [completed(agent, f"deferred-{i}") for i in range(4)]
    send(agent, events)
    wait_for(lambda: controller.ingestor.stats.deferred >= len(events), 60, "the batches given up")
    sessions = controller.link.sessions
    outage[0] = False
    wait_stored(controller, agent.agent_id, [e.file for e in events])
    assert controller.link.sessions > sessions  # a reconnect fetched them, no restart
    assert controller.redeliveries >= 1


def test_a_message_that_cannot_be_stored_does_not_take_its_batch_down(
    postgres: Postgres, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A birth the database refuses for its data fails the batch; the others in it are stored, the bad one is kept
    as a dead letter, all are acknowledged. (The protocol's bounds keep every valid message storable, so the
    refusal is simulated: a 300-character model, which PostgreSQL refused, is now refused by ``decode``.)"""
    config = parse_config({"database_url": postgres.create_database(), "mqtt": {"url": "mqtt://c:p@127.0.0.1:1"}}, {})

    def refuses_births(session: Session, batch: IngestBatch, *args: object, **kwargs: object) -> None:
        if batch.births:
            raise DataError("INSERT", {}, Exception("value too long for type character varying(256)"))
        write_batch(session, batch, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr("controller.service.app.write_batch", refuses_births)
    controller = Controller(config)
    create_all(controller.engine)
    acked: list[str] = []
    agent_id = f"pi-{uuid.uuid4().hex[:6]}"
    birth = Birth(
        agent_id=agent_id, seq=1, model="x" * 256, cores=4, ram_bytes=1, software_version="t", flac_encode_bps=1.0
    )
    good = [Event(agent_id=agent_id, seq=i, kind=EventKind.UPLOAD_FAILED, file=f"f{i}.wav") for i in range(3)]
    for name, message in [("birth", birth), *((f"event {i}", e) for i, e in enumerate(good))]:
        topic = agent_topic(agent_id, message.channel)
        controller.ingestor.offer(topic, encode(message), None, partial(acked.append, name))
    controller.writer.write(controller.ingestor.drain(timeout=1))
    with Session(controller.engine) as session:
        stored = sorted(e.file for e in repo.recent_events(session, agent_id=agent_id))
        dead = repo.dead_letters(session)
        counts = repo.reject_counts(session)
    assert stored == ["f0.wav", "f1.wav", "f2.wav"]
    assert sorted(acked) == ["birth", "event 0", "event 1", "event 2"]
    assert controller.ingestor.stats.dead_lettered == 1
    assert [(d.topic, d.reason) for d in dead] == [(agent_topic(agent_id, birth.channel), "birth:Unstorable")]
    assert dead[0].payload == encode(birth)
    assert "StringDataRightTruncation" in dead[0].error or "too long" in dead[0].error
    assert counts == {"birth:Unstorable": 1}
    controller.engine.dispose()
