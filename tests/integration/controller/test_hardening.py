"""No one message, no one agent stops the controller: poison messages are dead-lettered and acknowledged (and
never come back after a restart), dead threads are restarted and visible on /healthz and /metrics, future
timestamps do not freeze an agent, and an agent's site is what the configuration says.

Real Mosquitto, real SQLite and PostgreSQL (``database_url``)."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlmodel import Session

from controller.service.app import Controller
from controller.service.supervisor import Backoff
from controller.store import repo
from controller.store.agent_writes import IngestBatch
from controller.store.agent_writes import write_batch as real_write_batch
from edgefleet.localservices import Mosquitto
from fleet_protocol.codec import encode
from fleet_protocol.messages import Birth, Event, Telemetry
from fleet_protocol.topics import AgentChannel
from fleet_protocol.vocabulary import EventKind
from tests.integration.controller.fakes import FakeAgent
from tests.integration.controller.helpers import (
    MakeAgent,
    StartController,
    agent_row,
    files_stored,
    stored_agent,
    unique,
)
from tests.waiting import wait_for

pytestmark = pytest.mark.integration


def event(agent: FakeAgent, name: str) -> bytes:
    return encode(Event(agent_id=agent.agent_id, seq=agent._next(), kind=EventKind.UPLOAD_FAILED, file=name))


def publish(agent: FakeAgent, channel: AgentChannel, payload: bytes) -> None:
    agent.client.publish(agent.topic(channel), payload, qos=1).wait_for_publish(10)


def raw_telemetry(agent: FakeAgent, **fields: Any) -> bytes:
    """A telemetry payload with ``fields`` written in as JSON, unvalidated (values the schema may bound now)."""
    data = json.loads(encode(Telemetry(agent_id=agent.agent_id, seq=agent._next(), temperature_c=50.0)))
    data.update(fields)
    return json.dumps(data).encode()


def dead_letters(controller: Controller) -> list[Any]:
    with Session(controller.engine) as session:
        return repo.dead_letters(session, limit=1000)


@pytest.fixture
def poison_agent_writes(monkeypatch: pytest.MonkeyPatch) -> set[str]:
    """Every store write that holds a message of one of these agents raises (a bug their values trigger)."""
    poisoned: set[str] = set()

    def write_batch(session: Session, batch: IngestBatch, *args: Any, **kw: Any) -> None:
        agents = {m.agent_id for part in (batch.births, batch.telemetry, batch.events) for m, _at in part}
        if agents & poisoned:
            raise ValueError(f"cannot store a message of {sorted(agents & poisoned)}")
        real_write_batch(session, batch, *args, **kw)

    monkeypatch.setattr("controller.service.app.write_batch", write_batch)
    return poisoned


def test_a_poison_message_is_dead_lettered_acknowledged_and_never_comes_back_after_a_restart(
    database_url: str,
    start_controller: StartController,
    make_agent: MakeAgent,
    mqtt_broker_factory: Callable[[], Mosquitto],
    poison_agent_writes: set[str],
) -> None:
    broker = mqtt_broker_factory()  # restarts the controller with a persistent session: a broker of its own
    controller_id = unique("ctl")
    controller = start_controller(database_url, broker=broker, controller_id=controller_id)
    poison = make_agent(unique("pi-poison"), broker=broker).connect(subscribe=False, birth=False)
    good = make_agent(unique("pi-good"), broker=broker).connect()
    poison_agent_writes.add(poison.agent_id)
    publish(good, AgentChannel.EVENTS, event(good, "before.wav"))
    publish(poison, AgentChannel.EVENTS, event(poison, "poison.wav"))  # QoS 1: acknowledged only once settled
    publish(good, AgentChannel.EVENTS, event(good, "after.wav"))
    wait_for(lambda: files_stored(controller, good.agent_id) == ["after.wav", "before.wav"], 60, "good events")
    wait_for(lambda: len(dead_letters(controller)) == 1, 60, "the poison message dead-lettered")
    (dead,) = dead_letters(controller)
    assert (dead.topic, dead.reason) == (poison.topic(AgentChannel.EVENTS), "events:Unstorable")
    assert "ValueError: cannot store a message of" in dead.error
    assert controller.ingestor.stats.rejected_by == {"events:Unstorable": 1}
    good.telemetry(85.0)  # the controller still decides
    good.next_assignment(where=lambda a: a["paused"])

    controller.stop()  # and again: an unacknowledged message would be delivered again now, and fail again
    again = start_controller(database_url, broker=broker, controller_id=controller_id)
    assert again.link.sessions_resumed == 1
    publish(good, AgentChannel.EVENTS, event(good, "marker.wav"))  # queued behind anything redelivered
    wait_for(lambda: "marker.wav" in files_stored(again, good.agent_id), 60, "the marker after the restart")
    assert again.ingestor.stats.dead_lettered == 0
    assert len(dead_letters(again)) == 1
    assert files_stored(again, poison.agent_id) == []


def test_values_the_database_cannot_hold_are_isolated_and_the_agent_recovers(
    database_url: str, start_controller: StartController, make_agent: MakeAgent
) -> None:
    """``backlog_bytes`` > 2**63 (SQLite OverflowError, PostgreSQL DataError), a ``sent_at`` at the end of year
    9999 in a zone behind UTC, a throughput of 1e308: whether the protocol rejects them or the store cannot hold
    them, the controller goes on, and the same agent's next honest reading counts."""
    controller = start_controller(database_url)
    agent = make_agent(unique("pi-extreme")).connect()
    neighbour = make_agent(unique("pi-neighbour")).connect()
    received = controller.ingestor.stats.received
    for fields in (
        {"backlog_bytes": 2**64},
        {"sent_at": "9999-12-31T23:59:59-14:00", "temperature_c": 79.0},
        {"throughput_bps": 1e308, "backlog_bytes": 1},
    ):
        publish(agent, AgentChannel.TELEMETRY, raw_telemetry(agent, **fields))
        neighbour.telemetry(51.0)
    # a reading dated in the future counts as sent on arrival: the next one must be sent after that arrival
    wait_for(lambda: controller.ingestor.stats.received >= received + 6, 60, "the six readings received")
    agent.telemetry(62.5)
    wait_for(
        lambda: (row := agent_row(controller, agent.agent_id)) is not None and row.temperature_c == 62.5,
        20,
        lambda: f"the agent's honest reading stored: {agent_row(controller, agent.agent_id)}",
    )
    row = stored_agent(controller, agent.agent_id)
    assert row.backlog_bytes < 2**63
    telemetry_at = repo.as_utc(row.telemetry_at)
    assert telemetry_at is not None
    assert telemetry_at <= datetime.now(UTC) + timedelta(seconds=5)
    assert stored_agent(controller, neighbour.agent_id).temperature_c == 51.0
    stats = controller.ingestor.stats
    assert sum(stats.rejected_by.values()) >= 1  # the overflow: rejected by the protocol or dead-lettered
    assert all(status.alive for status in controller.supervisor.status().values())
    agent.telemetry(86.0)  # and the ticks still decide for it
    agent.next_assignment(where=lambda a: a["paused"])


def test_telemetry_dated_in_the_future_does_not_freeze_an_agent(
    database_url: str, start_controller: StartController, make_agent: MakeAgent
) -> None:
    controller = start_controller(database_url)
    agent = make_agent(unique("pi-clock")).connect()
    tomorrow = datetime.now(UTC) + timedelta(days=1)
    publish(agent, AgentChannel.TELEMETRY, encode(Telemetry(agent_id=agent.agent_id, seq=1, sent_at=tomorrow)))
    row = wait_for(lambda: (r := agent_row(controller, agent.agent_id)) and r.telemetry_at and r, 60, "stored")
    telemetry_at = repo.as_utc(row.telemetry_at)
    assert telemetry_at is not None
    assert telemetry_at <= datetime.now(UTC)  # taken as sent on arrival
    agent.telemetry(85.0)  # an honest hot reading after it must still pause the agent
    agent.next_assignment(where=lambda a: a["paused"])
    assert stored_agent(controller, agent.agent_id).temperature_c == 85.0


def get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


class ThreadKill(BaseException):
    """Escapes every ``except Exception``: the thread it is raised in ends."""


def test_a_dead_thread_shows_on_healthz_and_metrics_and_comes_back(
    database_url: str, start_controller: StartController
) -> None:
    controller = start_controller(database_url, metrics={"listen": "127.0.0.1:0"})
    assert controller.health is not None
    base = f"http://127.0.0.1:{controller.health.port}"
    controller.supervisor.backoff = Backoff(first_s=0.5, max_s=2.0)
    wait_for(lambda: get(f"{base}/healthz")[0] == 200, 60, "healthy after the start")

    killing = True
    real_tick = controller.ticker.tick

    def tick(now: datetime, sites: set[str] | None = None) -> Any:
        if killing and sites is None:
            raise ThreadKill("injected")
        return real_tick(now, sites)

    controller.ticker.tick = tick  # type: ignore[method-assign]
    _code, body = wait_for(lambda: (r := get(f"{base}/healthz"))[0] == 503 and r, 60, "503 while the tick is dead")
    detail = json.loads(body)
    assert detail["problems"] == ["thread tick is not running"]
    assert detail["threads"]["tick"]["last_error"] == "ThreadKill: injected"
    assert detail["threads"]["ingest"]["alive"]

    killing = False
    wait_for(lambda: get(f"{base}/healthz")[0] == 200, 60, "200 once the supervisor restarted the tick thread")
    _code, metrics = get(f"{base}/metrics")
    text = metrics.decode()
    restarts = next(
        float(line.split()[-1])
        for line in text.splitlines()
        if line.startswith('edgefleet_controller_thread_restarts_total{thread="tick"}')
    )
    assert restarts >= 1
    assert 'edgefleet_controller_thread_alive{thread="tick"} 1.0' in text
    assert "edgefleet_controller_mqtt_connected 1.0" in text
    ticks = controller.ticks
    wait_for(lambda: controller.ticks > ticks, 60, "ticking again")


def test_healthz_is_503_while_mqtt_is_down(
    tmp_path: Any, start_controller: StartController, mqtt_broker_factory: Callable[[], Mosquitto]
) -> None:
    broker = mqtt_broker_factory()
    controller = start_controller(f"sqlite:///{tmp_path / 'c.db'}", broker=broker, metrics={"listen": "127.0.0.1:0"})
    assert controller.health is not None
    url = f"http://127.0.0.1:{controller.health.port}/healthz"
    wait_for(lambda: get(url)[0] == 200, 60, "healthy")
    broker.stop()
    _code, body = wait_for(lambda: (r := get(url))[0] == 503 and r, 60, "503 without the broker")
    assert json.loads(body)["problems"] == ["MQTT is not connected"]
    broker.start()
    wait_for(lambda: get(url)[0] == 200, 60, "healthy again after the broker is back")


def test_a_pi_cannot_leave_a_site_wide_pause_by_claiming_another_site(
    database_url: str, start_controller: StartController, make_agent: MakeAgent
) -> None:
    pi, stranger = unique("pi-north"), unique("pi-stranger")
    controller = start_controller(database_url, agent_sites={pi: "north"})
    agent = make_agent(pi, site="north").connect()
    other = make_agent(stranger, site="north").connect()  # says north, is not provisioned: no site
    agent.telemetry(50.0)
    other.telemetry(50.0)
    first = agent.next_assignment(where=lambda a: not a["paused"])
    with Session(controller.engine) as session:
        repo.set_override(session, who="olga", site="north", paused=True)
    paused = agent.next_assignment(where=lambda a: a["paused"] and a["version"] > first["version"])
    assert "operator olga: paused" in paused["reason"]

    mismatches = controller.ingestor.stats.site_mismatches  # (retained births of other tests' agents count too)
    agent.site = "south"  # the Pi re-sends its birth with another site, to get out of the pause
    agent.birth()
    row = wait_for(lambda: (r := agent_row(controller, pi)) is not None and r.reported_site == "south" and r, 60)
    assert row.site == "north"
    assert controller.ingestor.stats.site_mismatches == mismatches + 1
    ticks = controller.ticks
    agent.telemetry(50.5)
    wait_for(lambda: controller.ticks >= ticks + 3, 60, "three full ticks after the new birth")
    assert all(a["paused"] for _t, a in agent.received if a["version"] >= paused["version"]), agent.received
    # the stranger claimed north in its birth, but the site-wide pause is not for it
    assert stored_agent(controller, stranger).site == ""
    assert not other.next_assignment()["paused"]
    assert not any(a["paused"] for _t, a in other.received)


def test_sites_follow_the_configuration_across_a_restart(
    database_url: str, start_controller: StartController, make_agent: MakeAgent
) -> None:
    pi = unique("pi-moved")
    controller = start_controller(database_url, controller_id=unique("ctl"), agent_sites={pi: "north"})
    make_agent(pi, site="north").connect().telemetry(50.0)
    wait_for(lambda: (r := agent_row(controller, pi)) is not None and r.site == "north", 60, "north")
    controller.stop()
    again = start_controller(database_url, controller_id=unique("ctl"), agent_sites={pi: "south"})
    assert again.sites_synced
    assert stored_agent(again, pi).site == "south"


def test_the_controller_logs_in_as_its_own_users(
    database_url: str, start_controller: StartController, mqtt_broker_factory: Callable[[], Mosquitto]
) -> None:
    """Client id = user name on both connections (the broker ties them together: nobody else can take them)."""
    broker = mqtt_broker_factory()
    controller = start_controller(database_url, broker=broker, controller_id="ctl-x", shared_group="g")
    assert controller.link.client_id == controller.link.url.username == "controller-ctl-x"
    assert controller.link.telemetry_url is not None
    assert controller.link.telemetry_url.username == "controller-ctl-x-telemetry"
    assert controller.link.telemetry_client_id == "controller-ctl-x-telemetry"


def test_births_are_stored_with_the_provisioned_site_from_the_agent_birth_message(
    database_url: str, start_controller: StartController, make_agent: MakeAgent
) -> None:
    """The birth's own site is kept for display as ``reported_site`` (and in the capabilities)."""
    pi = unique("pi-birth")
    controller = start_controller(database_url, agent_sites={pi: "north"})
    agent = make_agent(pi, site="garden")
    agent.connect()
    row = wait_for(lambda: (r := agent_row(controller, pi)) is not None and r.birth_at is not None and r, 60)
    assert (row.site, row.reported_site, row.capabilities["site"]) == ("north", "garden", "garden")
    assert isinstance(Birth.model_validate(row.capabilities), Birth)


def test_a_round_that_raises_is_skipped_and_the_thread_lives_on(
    database_url: str, start_controller: StartController, make_agent: MakeAgent
) -> None:
    """An exception in the ingest round (here the hot path's site lookup) and in the tick is logged and counted;
    the same threads go on (no restart needed)."""
    controller = start_controller(database_url)
    agent = make_agent(unique("pi-round")).connect()
    agent.telemetry(50.0)
    agent.next_assignment()
    real_hot_sites, real_tick = controller.ticker.hot_sites, controller.ticker.tick
    failing = {"hot": True, "tick": True}

    def hot_sites(telemetry: Any) -> Any:
        if failing.pop("hot", False):
            raise RuntimeError("one bad round in ingest")
        return real_hot_sites(telemetry)

    def tick(now: datetime, sites: set[str] | None = None) -> Any:
        if sites is None and failing.pop("tick", False):
            raise RuntimeError("one bad tick")
        return real_tick(now, sites)

    controller.ticker.hot_sites = hot_sites  # type: ignore[method-assign]
    controller.ticker.tick = tick  # type: ignore[method-assign]
    agent.telemetry(85.0)  # hotter: the hot path runs, and raises
    wait_for(lambda: controller.loop_errors["ingest"] == 1 and controller.tick_errors == 1, 60, "both rounds failed")
    agent.telemetry(86.0)
    agent.next_assignment(where=lambda a: a["paused"])
    assert {name: s.restarts for name, s in controller.supervisor.status().items()} == {
        "ingest": 0,
        "tick": 0,
        "alerts": 0,
        "notify": 0,
        "central": 0,
        "supervisor": 0,
    }
