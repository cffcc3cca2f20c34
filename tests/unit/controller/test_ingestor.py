"""Ingestor: decoding, grouping and counting rejects, without broker or database."""

from __future__ import annotations

from controller.service.inbox import OTHER_KINDS, UNKNOWN_KINDS_TRACKED, Ingestor, Received, percentile
from fleet_protocol.codec import encode
from fleet_protocol.messages import Birth, Event, State, Telemetry
from fleet_protocol.topics import AgentChannel, agent_topic
from fleet_protocol.vocabulary import EventKind


def topic(agent_id: str, channel: AgentChannel) -> str:
    return agent_topic(agent_id, channel)


def test_messages_are_grouped_and_bad_ones_counted_by_channel_and_error() -> None:
    ingestor = Ingestor()
    good = [
        (
            topic("pi-1", AgentChannel.BIRTH),
            Birth(agent_id="pi-1", seq=0, model="m", cores=4, ram_bytes=1, software_version="1", flac_encode_bps=1.0),
        ),
        (topic("pi-1", AgentChannel.STATE), State(agent_id="pi-1", seq=1, state="online")),  # type: ignore[arg-type]
        (topic("pi-1", AgentChannel.TELEMETRY), Telemetry(agent_id="pi-1", seq=2, temperature_c=50.0)),
        (topic("pi-1", AgentChannel.EVENTS), Event(agent_id="pi-1", seq=3, kind=EventKind.UPLOAD_STARTED, file="a")),
    ]
    for name, message in good:
        ingestor.offer(name, encode(message), 1_000.0)
    ingestor.offer(topic("pi-1", AgentChannel.TELEMETRY), b"{", 1_000.0)
    ingestor.offer(topic("pi-2", AgentChannel.TELEMETRY), encode(Telemetry(agent_id="pi-1", seq=1)), 1_000.0)
    ingestor.offer("edgefleet/v1/agents/bad+id/telemetry", b"{}", 1_000.0)
    ingestor.offer("somewhere/else", b"{}", 1_000.0)
    assignment = b'{"v": 1, "agent_id": "pi-1", "seq": 1, "version": 1, "concurrency": 1, "part_size": 5242880}'
    ingestor.offer(topic("pi-1", AgentChannel.ASSIGNMENT), assignment, 1_000.0)
    batch = ingestor.drain(timeout=0.1)
    assert (len(batch.births), len(batch.states), len(batch.telemetry), len(batch.events)) == (1, 1, 1, 1)
    assert {kind: r.count for kind, r in batch.rejects.items()} == {
        "telemetry:PayloadError": 2,
        "telemetry:TopicError": 1,
        "unknown:TopicError": 1,
        "assignment:UnexpectedChannel": 1,
    }
    assert ingestor.stats.received == 9
    assert ingestor.stats.rejected == 5
    assert ingestor.drain(timeout=0.01).rejects == {}


def test_an_event_of_an_unknown_kind_is_kept_and_counted_by_kind() -> None:
    ingestor = Ingestor()
    for seq, kind in enumerate(["battery_low", "upload_started", "battery_low", "lid_open"]):
        message = Event(agent_id="pi-1", seq=seq, kind=kind, file="")
        ingestor.offer(topic("pi-1", AgentChannel.EVENTS), encode(message), 1_000.0)
    batch = ingestor.drain(timeout=0.1)
    assert [str(e.kind) for e, _ in batch.events] == ["battery_low", "upload_started", "battery_low", "lid_open"]
    assert batch.rejects == {}
    assert ingestor.stats.unknown_event_kinds == {"battery_low": 2, "lid_open": 1}
    ingestor.rebatch(
        [Received(*item) for item in batch.raw]
    )  # decoding a batch again (after a failed write) counts nothing twice
    assert ingestor.stats.unknown_event_kinds == {"battery_low": 2, "lid_open": 1}


def test_unknown_kinds_are_counted_by_name_up_to_a_bound() -> None:
    ingestor = Ingestor()
    for n in range(UNKNOWN_KINDS_TRACKED + 5):
        ingestor.stats.unknown_kind(f"kind_{n}")
    ingestor.stats.unknown_kind("kind_0")
    counts = ingestor.stats.unknown_event_kinds
    assert len(counts) == UNKNOWN_KINDS_TRACKED + 1
    assert counts["kind_0"] == 2
    assert counts[OTHER_KINDS] == 5


def test_drain_caps_a_batch_and_lag_is_measured_from_sent_at() -> None:
    ingestor = Ingestor()
    for seq in range(10):
        message = Telemetry(agent_id="pi-1", seq=seq)
        ingestor.offer(topic("pi-1", AgentChannel.TELEMETRY), encode(message))
    first = ingestor.drain(timeout=0.1, max_items=4)
    assert len(first.telemetry) == 4
    assert ingestor.backlog() == 6
    sent = first.telemetry[0][0].sent_at.timestamp()
    ingestor.stored(first, sent + 0.25)
    summary = ingestor.stats.lag_summary()
    assert summary["count"] == 4
    assert 0.2 < summary["max_s"] <= 0.26
    assert ingestor.stats.stored == 4


def test_percentile() -> None:
    values = [float(v) for v in range(1, 101)]
    assert percentile(values, 0.5) == 50
    assert percentile(values, 0.99) == 99
    assert percentile([3.0], 0.99) == 3


def birth(agent_id: str, site: str) -> bytes:
    message = Birth(
        agent_id=agent_id, seq=0, model="m", cores=4, ram_bytes=1, software_version="1", flac_encode_bps=1.0, site=site
    )
    return encode(message)


def test_a_birth_naming_another_site_than_provisioned_is_counted_not_refused() -> None:
    ingestor = Ingestor(sites={"pi-1": "north", "pi-2": "south"})
    for agent_id, site in [("pi-1", "north"), ("pi-1", "south"), ("pi-2", ""), ("pi-3", "north"), ("pi-3", "")]:
        ingestor.offer(topic(agent_id, AgentChannel.BIRTH), birth(agent_id, site), 1_000.0)
    batch = ingestor.drain(timeout=0.1)
    assert len(batch.births) == 5  # stored: the store uses the provisioned site, keeps the reported one aside
    # pi-1 claiming south, pi-3 (not provisioned) claiming north; an empty site claims nothing
    assert ingestor.stats.site_mismatches == 2


def test_rebatch_decodes_again_without_counting_again() -> None:
    ingestor = Ingestor()
    ingestor.offer(topic("pi-1", AgentChannel.TELEMETRY), encode(Telemetry(agent_id="pi-1", seq=1)), 1_000.0)
    ingestor.offer(topic("pi-1", AgentChannel.TELEMETRY), b"{", 1_000.0)
    batch = ingestor.drain(timeout=0.1)
    again = ingestor.rebatch(batch.raw[1:])  # type: ignore[arg-type]
    assert {kind: r.count for kind, r in again.rejects.items()} == {"telemetry:PayloadError": 1}
    assert (ingestor.stats.received, ingestor.stats.rejected) == (2, 1)
    assert ingestor.stats.rejected_by == {"telemetry:PayloadError": 1}


def test_lag_of_a_message_dated_in_the_future_counts_from_its_arrival() -> None:
    from datetime import UTC, datetime, timedelta

    ingestor = Ingestor(skew=timedelta(seconds=5))
    future = Telemetry(agent_id="pi-1", seq=1, sent_at=datetime(2099, 12, 31, tzinfo=UTC))
    ingestor.offer(topic("pi-1", AgentChannel.TELEMETRY), encode(future), 1_000.0)
    batch = ingestor.drain(timeout=0.1)
    ingestor.stored(batch, 1_001.0)
    assert ingestor.stats.lag_summary()["max_s"] == 1.0


def test_the_watermark_holds_at_the_oldest_message_not_yet_settled() -> None:
    ingestor = Ingestor()
    assert ingestor.stored_through(now=500.0) == 500.0  # nothing pending: the store is not behind
    for seq, received in enumerate([100.0, 101.0, 102.0]):
        ingestor.offer(topic("pi-1", AgentChannel.TELEMETRY), encode(Telemetry(agent_id="pi-1", seq=seq)), received)
    batch = ingestor.drain(timeout=0.1, max_items=2)
    assert ingestor.stored_through(now=500.0) == 100.0  # drained but not yet stored still holds it
    ingestor.settled(len(batch.raw))
    assert ingestor.stored_through(now=500.0) == 102.0  # the one still queued
    ingestor.settled(len(ingestor.drain(timeout=0.1).raw))
    assert ingestor.stored_through(now=500.0) == 500.0
    ingestor.settled(5)  # more than pending (never happens) does not raise
    assert ingestor.stored_through(now=50.0) == 50.0
