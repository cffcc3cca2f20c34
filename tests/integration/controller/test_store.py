"""The controller store on SQLite AND real PostgreSQL (``database_url`` is parametrised over both)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine, text
from sqlmodel import Session

from controller.policy import Decision, PolicyState
from controller.service.fleet_view import build_fleet_view
from controller.service.janitor import active_keys
from controller.service.ticker import TRANSCODER_ALIVE_S
from controller.store import repo
from controller.store.agent_writes import IngestBatch, write_batch, write_dead_letter
from controller.store.assignments import Proposal, VersionConflict, commit_decisions, load_fleet
from controller.store.database import create_all, make_engine
from controller.store.errors import is_outage
from controller.store.housekeeping import mark_stale_offline, prune_telemetry, sync_sites
from controller.transcoder.jobs import alive_workers, heartbeat
from fleet_protocol.assignment import AssignmentSettings
from fleet_protocol.messages import Birth, Event, State, Telemetry
from fleet_protocol.vocabulary import AgentStatus, EventKind

pytestmark = pytest.mark.integration

T0 = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    engine = repo.make_engine(database_url)
    repo.create_all(engine)
    repo.create_all(engine)  # idempotent
    yield engine
    engine.dispose()


def telemetry(agent_id: str, seq: int, at: datetime, **kw: object) -> Telemetry:
    return Telemetry(agent_id=agent_id, seq=seq, sent_at=at, **kw)  # type: ignore[arg-type]


def birth(agent_id: str, **kw: object) -> Birth:
    fields: dict[str, object] = {
        "model": "Pi 4",
        "cores": 4,
        "ram_bytes": 8 << 30,
        "software_version": "1.0",
        "flac_encode_bps": 3e7,
        "site": "garden",
    }
    fields.update(kw)
    return Birth(agent_id=agent_id, seq=0, sent_at=T0, **fields)  # type: ignore[arg-type]


def test_ingest_batch_round_trip(engine: Engine) -> None:
    batch = IngestBatch(
        births=[(birth("pi-1"), T0)],
        states=[(State(agent_id="pi-1", seq=1, sent_at=T0, state="online"), T0)],  # type: ignore[arg-type]
        telemetry=[
            (telemetry("pi-1", 2, T0, temperature_c=61.5, backlog_bytes=12 << 30, throttled=0x50005), T0),
            (telemetry("pi-1", 3, T0 + timedelta(seconds=5), temperature_c=62.0), T0 + timedelta(seconds=5)),
            (telemetry("pi-2", 1, T0, temperature_c=40.0), T0),  # telemetry before birth
        ],
        events=[
            (
                Event(
                    agent_id="pi-1",
                    seq=4,
                    sent_at=T0,
                    kind=EventKind.UPLOAD_COMPLETED,
                    file="a.wav",
                    key="k/a.flac",
                    original_bytes=10,
                    stored_bytes=5,
                    original_sha256="a" * 64,
                    stored_as="flac",
                ),
                T0,
            )
        ],
    )
    batch.reject("telemetry:PayloadError", "not JSON", "edgefleet/v1/agents/x/telemetry", T0)
    with Session(engine) as session:
        write_batch(session, batch, {"pi-1": 4}, sites={"pi-1": "north", "pi-2": "south"})
        write_batch(session, IngestBatch(rejects=batch.rejects))
        one = repo.get_agent(session, "pi-1")
        assert one is not None
        assert (one.site, one.reported_site, one.cores, one.ram_bytes) == ("north", "garden", 4, 8 << 30)
        assert one.temperature_c == 62.0
        assert one.online
        assert repo.as_utc(one.online_since) == T0
        assert one.capabilities["flac_encode_bps"] == 3e7
        two = repo.get_agent(session, "pi-2")
        assert two is not None
        assert two.online
        assert two.cores == 1
        assert two.site == "south"  # provisioned before its birth came
        history = repo.telemetry_history(session, "pi-1")
        assert [h.temperature_c for h in history] == [61.5, 62.0]
        assert history[0].backlog_bytes == 12 << 30
        assert history[0].concurrency == 4
        assert history[0].throttled == 0x50005
        events = repo.recent_events(session, agent_id="pi-1")
        assert [(e.kind, e.key, e.sha256) for e in events] == [("upload_completed", "k/a.flac", "a" * 64)]
        assert repo.reject_counts(session) == {"telemetry:PayloadError": 2}


def test_older_telemetry_never_overwrites_newer(engine: Engine) -> None:
    with Session(engine) as session:
        newer, late = T0 + timedelta(seconds=10), T0 + timedelta(seconds=11)
        write_batch(session, IngestBatch(telemetry=[(telemetry("pi-1", 9, newer, temperature_c=70.0), newer)]))
        # sent before it, received after it (two controllers of a shared subscription, a slow path)
        write_batch(session, IngestBatch(telemetry=[(telemetry("pi-1", 8, T0, temperature_c=50.0), late)]))
        row = repo.get_agent(session, "pi-1")
        assert row is not None
        assert row.temperature_c == 70.0
        assert len(repo.telemetry_history(session, "pi-1")) == 2


def test_state_changes_keep_their_since_times(engine: Engine) -> None:
    def state(value: str, at: datetime) -> IngestBatch:
        return IngestBatch(states=[(State(agent_id="pi-1", seq=1, sent_at=T0, state=value), at)])  # type: ignore[arg-type]

    with Session(engine) as session:
        write_batch(session, state("online", T0))
        write_batch(session, state("online", T0 + timedelta(seconds=30)))  # a repeat keeps online_since
        row = repo.get_agent(session, "pi-1")
        assert row is not None
        assert repo.as_utc(row.online_since) == T0
        write_batch(session, state("offline", T0 + timedelta(seconds=60)))
        write_batch(session, state("offline", T0 + timedelta(seconds=90)))
        session.expire_all()
        row = repo.get_agent(session, "pi-1")
        assert row is not None
        assert not row.online
        assert repo.as_utc(row.offline_since) == T0 + timedelta(seconds=60)


def test_stale_agents_go_offline_and_old_history_is_pruned(engine: Engine) -> None:
    with Session(engine) as session:
        write_batch(
            session,
            IngestBatch(
                telemetry=[
                    (telemetry("old", 1, T0), T0),
                    (telemetry("new", 1, T0 + timedelta(days=40)), T0 + timedelta(days=40)),
                ]
            ),
        )
        assert mark_stale_offline(session, cutoff=T0 + timedelta(days=1), now=T0 + timedelta(days=40)) == ["old"]
        assert prune_telemetry(session, before=T0 + timedelta(days=10)) == 1
        assert repo.telemetry_history(session, "old") == []
        assert len(repo.telemetry_history(session, "new")) == 1


def decision(concurrency: int, level: int = 0) -> Decision:
    return Decision(
        AssignmentSettings(concurrency=concurrency, part_size=8 << 20, windows=("22:00-06:00",)),
        f"c={concurrency}",
        PolicyState(thermal_level=level, cool_since=T0 if level else None),
    )


def test_versions_grow_only_on_change_and_start_above_the_agents_version(engine: Engine) -> None:
    def propose(d: Decision, based_on: int | None, floor: int = 0) -> list[int]:
        with Session(engine, expire_on_commit=False) as session:
            rows = commit_decisions(session, [Proposal("pi-1", d, floor, based_on)], controller_id="c", now=T0)
            return [r.version for r in rows]

    assert propose(decision(4), None, floor=41) == [42]
    assert propose(decision(4), 42) == []
    assert propose(decision(4, level=1), 42) == []  # only the policy state changed: stored, not published
    with Session(engine) as session:
        assert load_fleet(session).current["pi-1"].thermal_level == 1
    assert propose(decision(3), None) == []  # stale: decided before version 42 existed
    assert propose(decision(3), 41) == []  # stale
    assert propose(decision(2), 42) == [43]
    with Session(engine) as session:
        assert [h.version for h in repo.assignment_history(session, "pi-1")] == [43, 42]
        assert repo.current_assignments(session)["pi-1"].concurrency == 2


def test_racing_writers_never_reuse_a_version(engine: Engine) -> None:
    """Many writers decide for the same agents at once; the database guard serialises or rejects them."""
    barrier = threading.Barrier(6)
    outcomes: list[str] = []

    def writer(index: int) -> None:
        barrier.wait()
        for round_ in range(5):
            with Session(engine, expire_on_commit=False) as session:
                current = load_fleet(session).current
                proposals = [
                    Proposal(
                        f"pi-{n}",
                        decision(1 + (index + round_ + n) % 4),
                        0,
                        current[f"pi-{n}"].version if f"pi-{n}" in current else None,
                    )
                    for n in range(3)
                ]
                try:
                    published = commit_decisions(session, proposals, controller_id=f"w{index}", now=T0)
                    outcomes.append(f"ok {len(published)}")
                except VersionConflict:
                    outcomes.append("conflict")

    threads = [threading.Thread(target=writer, args=(i,)) for i in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert len(outcomes) == 30
    with Session(engine) as session:
        for n in range(3):
            versions = sorted(h.version for h in repo.assignment_history(session, f"pi-{n}", limit=1000))
            assert versions == list(range(1, len(versions) + 1))
            assert len(versions) > 1
            assert load_fleet(session).current[f"pi-{n}"].version == versions[-1]


def test_overrides_and_audit(engine: Engine) -> None:
    with Session(engine) as session:
        repo.set_override(session, who="alice", agent_id="pi-1", paused=True, windows=["22:00-06:00"], now=T0)
        row = repo.set_override(session, who="bob", agent_id="pi-1", concurrency_cap=2, now=T0 + timedelta(1))
        assert (row.paused, row.windows, row.concurrency_cap, row.created_by, row.updated_by) == (
            True,
            ["22:00-06:00"],
            2,
            "alice",
            "bob",
        )
        repo.set_override(session, who="bob", agent_id="pi-1", paused=None)
        repo.set_override(session, who="carol", site="garden", upload_now=True)
        overrides = {(o.scope, o.target): o for o in repo.list_overrides(session)}
        assert overrides["agent", "pi-1"].paused is None
        assert overrides["site", "garden"].upload_now
        with pytest.raises(ValueError, match="window"):
            repo.set_override(session, who="x", agent_id="pi-1", windows=["25:00-01:00"])
        with pytest.raises(ValueError, match="exactly one"):
            repo.set_override(session, who="x", agent_id="pi-1", site="garden", paused=True)
        with pytest.raises(ValueError, match="≥ 0"):
            repo.set_override(session, who="x", agent_id="pi-1", concurrency_cap=-1)
        assert repo.clear_override(session, who="dave", agent_id="pi-1")
        assert not repo.clear_override(session, who="dave", agent_id="pi-1")
        audit = repo.list_audit(session, target="agent:pi-1")
        assert [(a.who, a.action) for a in audit][-2:] == [("bob", "override.set"), ("alice", "override.set")]
        assert [(a.who, a.action, a.detail) for a in audit][:2] == [
            ("dave", "override.clear", {"existed": False}),
            ("dave", "override.clear", {"existed": True}),
        ]
        assert audit[-1].detail == {"paused": True, "windows": ["22:00-06:00"]}
        assert [a.who for a in repo.list_audit(session, who="carol")] == ["carol"]


def test_active_keys_for_the_janitor(engine: Engine) -> None:
    def event(agent: str, kind: str, key: str, seconds: int) -> tuple[Event, datetime]:
        at = T0 + timedelta(seconds=seconds)
        return Event(agent_id=agent, seq=seconds, sent_at=at, kind=kind, file="f.wav", key=key), at

    batch = IngestBatch(
        states=[(State(agent_id="on", seq=0, state="online"), T0)],  # type: ignore[arg-type]
        events=[
            event("on", "upload_started", "k/active", 1),
            event("on", "upload_started", "k/done", 1),
            event("on", "upload_completed", "k/done", 2),
            event("on", "upload_failed", "k/retried", 1),
            event("on", "upload_resumed", "k/retried", 2),
            event("off", "upload_started", "k/offline-agent", 1),
        ],
    )
    with Session(engine) as session:
        write_batch(session, batch)
        assert active_keys(session) == {"k/active", "k/retried"}


def test_the_site_is_provisioned_never_taken_from_the_birth(engine: Engine) -> None:
    sites = {"pi-1": "north"}
    with Session(engine) as session:
        write_batch(session, IngestBatch(births=[(birth("pi-1", site="north"), T0)]), sites=sites)
        write_batch(session, IngestBatch(births=[(birth("pi-1", site="south"), T0)]), sites=sites)  # a new claim
        write_batch(session, IngestBatch(births=[(birth("pi-9", site="north"), T0)]), sites=sites)  # not listed
        rows = {a.id: (a.site, a.reported_site) for a in repo.list_agents(session)}
        assert rows == {"pi-1": ("north", "south"), "pi-9": ("", "north")}
        assert [a.id for a in repo.list_agents(session, site="north")] == ["pi-1"]
        assert [a.id for a in load_fleet(session, {"north"}).agents] == ["pi-1"]


def test_sync_sites_moves_stored_agents_to_their_provisioned_site(engine: Engine) -> None:
    with Session(engine) as session:
        batch = IngestBatch(births=[(birth(i), T0) for i in ("pi-1", "pi-2", "pi-3")])
        write_batch(session, batch, sites={"pi-1": "north", "pi-2": "north", "pi-3": "south"})
        moved = {"pi-1": "north", "pi-2": "south"}  # pi-2 moved, pi-3 no longer listed
        assert sync_sites(session, moved) == 2
        assert sync_sites(session, moved) == 0
        session.expire_all()
        assert {a.id: a.site for a in repo.list_agents(session)} == {"pi-1": "north", "pi-2": "south", "pi-3": ""}


def test_telemetry_dated_in_the_future_does_not_freeze_the_latest_values(engine: Engine) -> None:
    """A Pi whose clock is a year ahead (or that lies) sends one reading; later honest readings still count."""
    far = datetime(2099, 12, 31, 23, 59, tzinfo=UTC)
    with Session(engine) as session:
        write_batch(session, IngestBatch(telemetry=[(telemetry("pi-1", 1, far, temperature_c=79.0), T0)]))
        row = repo.get_agent(session, "pi-1")
        assert row is not None
        assert repo.as_utc(row.telemetry_at) == T0  # as if sent on arrival
        later = T0 + timedelta(seconds=1)
        write_batch(session, IngestBatch(telemetry=[(telemetry("pi-1", 2, later, temperature_c=50.0), later)]))
        session.expire_all()
        row = repo.get_agent(session, "pi-1")
        assert row is not None
        assert (row.temperature_c, repo.as_utc(row.telemetry_at)) == (50.0, later)
        history = repo.telemetry_history(session, "pi-1")
        assert [repo.as_utc(h.at) for h in history] == [T0, later]
        # the policy's liveness reads telemetry_at: a far-future reading does not keep an agent alive
        assert mark_stale_offline(session, cutoff=later + timedelta(seconds=60), now=later) == ["pi-1"]


def test_a_value_the_database_cannot_hold_is_a_data_error_not_an_outage(engine: Engine) -> None:
    """``backlog_bytes`` above 2**63 (built unvalidated: the protocol may bound it): SQLite raises OverflowError,
    PostgreSQL a DataError; the batch writer must isolate the message, not wait for the database to come back."""
    huge = Telemetry.model_construct(agent_id="pi-1", seq=1, sent_at=T0, backlog_bytes=2**64)
    with Session(engine) as session, pytest.raises(Exception) as failure:
        write_batch(session, IngestBatch(telemetry=[(huge, T0)]))
    assert not is_outage(failure.value), repr(failure.value)
    with Session(engine) as session:  # the database is fine afterwards
        write_batch(session, IngestBatch(telemetry=[(telemetry("pi-1", 2, T0), T0)]))
        assert repo.get_agent(session, "pi-1") is not None


def test_an_unreachable_database_is_an_outage(database_url: str, tmp_path: Path) -> None:
    if database_url.startswith("sqlite"):
        url = f"sqlite:///{tmp_path}"  # a directory: "unable to open database file"
    else:
        url = "postgresql+psycopg://nobody:nothing@127.0.0.1:1/none"
    engine = make_engine(url)
    with pytest.raises(Exception) as failure:
        create_all(engine)
    assert is_outage(failure.value), repr(failure.value)
    engine.dispose()


def test_dead_letters_keep_any_bytes_count_their_reason_and_are_capped(engine: Engine) -> None:
    with Session(engine) as session:
        for n in range(5):
            write_dead_letter(
                session,
                topic=f"edgefleet/v1/agents/pi-1/telemetry\x00\udcff{n}",
                payload=b"\x00\xff" * 40_000,
                received=T0,
                reason="telemetry:Unstorable",
                error="OverflowError: Python int too large \x00",
                controller_id="ctl-1",
                keep=3,
            )
        dead = repo.dead_letters(session)
        assert len(dead) == 3
        assert dead[0].topic.endswith("\\x00\\udcff4")  # escaped, newest first
        assert len(dead[0].payload) == 64 * 1024
        assert repo.reject_counts(session) == {"telemetry:Unstorable": 5}


def test_memory_limit_baseline_and_drain_time_reach_the_policy_and_the_agent_row(engine: Engine) -> None:
    """The new optional fields: stored from birth and telemetry, handed to the policy; an older agent's are 0/None."""
    batch = IngestBatch(
        births=[
            (birth("pi-new", memory_limit_bytes=256 << 20, baseline_rss_bytes=70 << 20), T0),
            (birth("pi-old"), T0),
        ],
        telemetry=[
            (telemetry("pi-new", 1, T0, backlog_bytes=1 << 30, backlog_eta_s=812.5), T0),
            (telemetry("pi-old", 1, T0, backlog_bytes=1 << 30), T0),
        ],
    )
    with Session(engine) as session:
        write_batch(session, batch)
        new, old = repo.get_agent(session, "pi-new"), repo.get_agent(session, "pi-old")
        assert new is not None
        assert old is not None
        assert (new.backlog_eta_s, old.backlog_eta_s) == (812.5, None)
        views = {v.agent_id: v for v in build_fleet_view(load_fleet(session)).agents}
    assert (views["pi-new"].memory_limit_bytes, views["pi-new"].baseline_rss_bytes) == (256 << 20, 70 << 20)
    assert (views["pi-old"].memory_limit_bytes, views["pi-old"].baseline_rss_bytes) == (0, 0)


def test_a_zstd_upload_is_stored_as_zstd_and_a_raw_one_as_raw(engine: Engine) -> None:
    def completed(seq: int, key: str, codec: str) -> tuple[Event, datetime]:
        event = Event(
            agent_id="pi-1",
            seq=seq,
            sent_at=T0,
            kind=EventKind.UPLOAD_COMPLETED,
            file=key,
            key=key,
            original_sha256=f"{seq}" * 64,
            stored_as="raw",
            stored_codec=codec,  # type: ignore[arg-type]
        )
        return event, T0

    with Session(engine) as session:
        write_batch(session, IngestBatch(events=[completed(1, "k/bat.wav.zst", "zstd"), completed(2, "k/x.bin", "")]))
        events = repo.recent_events(session, agent_id="pi-1")
    assert sorted((e.key, e.stored_as) for e in events) == [("k/bat.wav.zst", "zstd"), ("k/x.bin", "raw")]


def test_live_transcoder_workers_are_the_policys_transcoder_capacity(engine: Engine) -> None:
    """The tick counts the workers heard within ``TRANSCODER_ALIVE_S`` and hands that to every agent's view."""
    with Session(engine) as session:
        write_batch(session, IngestBatch(births=[(birth("pi-1", site="north"), T0)]))
        heartbeat(session, "tc-old", T0 - timedelta(seconds=TRANSCODER_ALIVE_S + 1), 0)
        heartbeat(session, "tc-1", T0, 3)
        heartbeat(session, "tc-2", T0 - timedelta(seconds=5), 0)
        workers = alive_workers(session, T0, TRANSCODER_ALIVE_S)
        (view,) = build_fleet_view(load_fleet(session), workers).agents
    assert (workers, view.transcoder_capacity) == (2, 2)


def test_two_controllers_writing_the_same_agents_in_opposite_orders_do_not_deadlock(engine: Engine) -> None:
    """Both controllers store every state message: two batches touching the same rows in opposite orders (one
    statement per state) took row locks crosswise and PostgreSQL aborted one as a deadlock; the agent-writes lock
    makes them take turns (``lock_agent_writes``). On SQLite one writer at a time anyway."""
    agents = [f"pi-{i:03d}" for i in range(60)]
    with Session(engine) as session:
        write_batch(session, IngestBatch(births=[(birth(a), T0) for a in agents]))
    errors: list[BaseException] = []
    start = threading.Barrier(2)

    def controller(order: list[str], rounds: int) -> None:
        start.wait(timeout=60)
        try:
            for n in range(rounds):
                at = T0 + timedelta(seconds=n + 1)
                states = [(State(agent_id=a, seq=n + 1, state=AgentStatus.ONLINE), at) for a in order]
                with Session(engine) as session:
                    write_batch(session, IngestBatch(states=states))
        except BaseException as exc:
            errors.append(exc)

    threads = [
        threading.Thread(target=controller, args=(agents, 15)),
        threading.Thread(target=controller, args=(agents[::-1], 15)),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert errors == []
    with Session(engine) as session:
        assert all(row.online for row in (repo.get_agent(session, a) for a in agents) if row is not None)


def test_marking_stale_agents_offline_skips_a_row_being_written(engine: Engine, database_url: str) -> None:
    """A row another transaction holds (an ingest batch writing that agent: it was just heard from) is left for the
    next call instead of waited for: the offline marking cannot take part in a deadlock (PostgreSQL row locks)."""
    if not database_url.startswith("postgresql"):
        pytest.skip("row locks: PostgreSQL")
    with Session(engine) as session:
        write_batch(session, IngestBatch(telemetry=[(telemetry(a, 1, T0), T0) for a in ("busy", "idle")]))
    later = T0 + timedelta(hours=1)
    with engine.connect() as holder, Session(engine) as session:
        holder.exec_driver_sql("BEGIN")
        holder.exec_driver_sql("SELECT id FROM agent WHERE id = 'busy' FOR UPDATE")
        session.execute(text("SET lock_timeout = '10s'"))  # waiting for 'busy' would fail the test, not hang it
        assert mark_stale_offline(session, cutoff=later, now=later) == ["idle"]
        holder.exec_driver_sql("ROLLBACK")
        assert mark_stale_offline(session, cutoff=later, now=later) == ["busy"]
