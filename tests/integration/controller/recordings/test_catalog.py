"""The recordings catalog against the real SeaweedFS and the real database (SQLite and PostgreSQL).

Objects are made by fleet_audio from WAVs with the chunks real recorders write (bext, GUANO, iXML, AudioMoth
names), stored in SeaweedFS as the agent stores them (same bytes, same user metadata), and reported by
``upload_completed`` events written through the controller's ingest path (``write_batch``).
"""

from __future__ import annotations

import io
import os
import uuid
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from minio.error import S3Error
from sqlalchemy import Engine
from sqlmodel import Session, select

from controller.central.probe import probe_client
from controller.recordings.catalog import Cataloger, CatalogSettings
from controller.service.app import Controller
from controller.store.agent_writes import IngestBatch, write_batch
from controller.store.database import as_utc, make_engine
from controller.store.models import Agent, Recording
from controller.store.schema import migrate
from edgefleet.localservices import SeaweedS3
from edgefleet.localservices.process import free_port
from fleet_audio.source import ObjectSource, object_key, open_source
from fleet_protocol.messages import Event
from fleet_protocol.vocabulary import EventKind
from tests.corpus import write_wav
from tests.unit.fleet_audio.recorders import audiomoth_info, bext, guano, ixml
from tests.waiting import wait_for

pytestmark = pytest.mark.integration

T0 = datetime(2026, 5, 28, 6, 15, tzinfo=UTC)
MTIME = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)


@dataclass(frozen=True)
class Stored:
    name: str
    key: str
    event: Event


def _object(source: ObjectSource) -> bytes:
    body = b"".join(source.body())
    return source.header() + body[source.header_size :] if source.kind == "flac" else body


def _store(s3: SeaweedS3, prefix: str, agent: str, path: Path, level: int = 5, *, data: bytes | None = None) -> Stored:
    """Put ``path`` into S3 as the agent would (the object's bytes and metadata), and its completion event."""
    os.utime(path, ns=(0, int(MTIME.timestamp()) * 10**9))
    source = open_source(path, level)
    try:
        key = object_key(prefix, agent, path, source)
        obj = _object(source) if data is None else data
        s3.client().put_object(s3.bucket, key, io.BytesIO(obj), len(obj), metadata=dict(source.metadata))
        event = Event(
            agent_id=agent,
            seq=0,
            kind=EventKind.UPLOAD_COMPLETED,
            file=path.name,
            key=key,
            original_bytes=source.original_size,
            stored_bytes=len(obj),
            original_sha256=source.original_sha256(),
            stored_as="raw" if source.kind == "zstd" else source.kind,  # zstd travels as raw + stored_codec
            stored_codec="zstd" if source.kind == "zstd" else "",
        )
    finally:
        source.close()
    return Stored(path.name, key, event)


def _report(engine: Engine, stored: list[Stored], sites: dict[str, str]) -> None:
    """The agents (with their provisioned sites) and the events, as the ingest thread stores them."""
    now = datetime.now(UTC)
    events = [(s.event.model_copy(update={"seq": i}), now) for i, s in enumerate(stored)]
    with Session(engine) as session:
        for agent_id, site in sites.items():
            session.merge(Agent(id=agent_id, site=site))
        session.commit()
        write_batch(session, IngestBatch(events=events), sites=sites)


def _rows(engine: Engine) -> dict[str, Recording]:
    with Session(engine) as session:
        return {r.file: r for r in session.exec(select(Recording)).all()}


@pytest.fixture(scope="module")
def recordings(s3_server: SeaweedS3, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Stored]:
    """One object per case, stored once for the module."""
    d = tmp_path_factory.mktemp("recorders")
    prefix = f"cat-{uuid.uuid4().hex[:8]}"

    def wav(name: str, *chunks: tuple[bytes, bytes, str], **kw: object) -> Path:
        return write_wav(d / name, 0.25, 16000, extra_chunks=chunks, **kw)  # type: ignore[arg-type]

    cases = [
        _store(s3_server, prefix, "pi-1", wav("mixpre.wav", (b"bext", bext(), "before"), (b"iXML", ixml(), "after"))),
        _store(s3_server, prefix, "pi-1", wav("bat.wav", (b"guan", guano(), "before"), channels=2, bits=24)),
        _store(s3_server, prefix, "pi-2", wav("field.wav", (b"iXML", ixml("2026-05-27"), "before"))),
        _store(s3_server, prefix, "pi-2", wav("20260528_061500.WAV", (b"LIST", audiomoth_info(), "before"))),
        _store(s3_server, prefix, "pi-2", wav("float.wav", (b"bext", bext("2026-05-26"), "before"), float32=True)),
        _store(s3_server, prefix, "pi-3", wav("plain.wav")),
    ]
    (d / "notes.txt").write_bytes(b"not audio " * 100)
    cases.append(_store(s3_server, prefix, "pi-3", d / "notes.txt"))
    # a stored object whose header was damaged after the upload (its edgf block is cut off)
    damaged = wav("damaged.wav", (b"bext", bext(), "before"))
    good = _store(s3_server, prefix, "pi-3", damaged)
    head = s3_server.client().get_object(s3_server.bucket, good.key).read()
    cut = head[:60]
    s3_server.client().put_object(s3_server.bucket, good.key, io.BytesIO(cut), len(cut))
    cases.append(Stored(good.name, good.key, good.event.model_copy(update={"stored_bytes": len(cut)})))
    # an event for an object that is not there, and one whose sha256 is not the object's
    gone = _store(s3_server, prefix, "pi-3", wav("gone.wav"))
    s3_server.client().remove_object(s3_server.bucket, gone.key)
    cases.append(gone)
    other = _store(s3_server, prefix, "pi-3", wav("other.wav"))
    cases.append(Stored(other.name, other.key, other.event.model_copy(update={"original_sha256": "0" * 64})))
    return {c.name: c for c in cases}


def _cataloger(s3: SeaweedS3, controller_id: str = "ctl-1", **kw: object) -> Cataloger:
    settings = CatalogSettings(max_attempts=2, retry_first_s=0.0)
    return Cataloger(s3.client(), s3.bucket, controller_id=controller_id, settings=settings, **kw)  # type: ignore[arg-type]


def test_catalog_reads_every_kind_of_object(
    database_url: str, s3_server: SeaweedS3, recordings: dict[str, Stored]
) -> None:
    engine = make_engine(database_url)
    migrate(engine)
    _report(engine, list(recordings.values()), {"pi-1": "marsh", "pi-2": "wood", "pi-3": "wood"})
    skewed = {"pi-2": 95.0}
    cataloger = _cataloger(s3_server, clock_offset=skewed.get)
    now = datetime.now(UTC)
    with Session(engine) as session:
        first = cataloger.run_once(session, now)
        assert first.inserted == len(recordings)
        again = cataloger.run_once(session, now + timedelta(seconds=1))  # the second try of the failures
    assert again.inserted == 0
    assert (first.failed, first.retrying, again.failed) == (0, 3, 3)
    rows = _rows(engine)
    assert len(rows) == len(recordings)

    mixpre = rows["mixpre.wav"]
    assert (mixpre.status, mixpre.error, mixpre.site, mixpre.codec) == ("cataloged", "", "marsh", "flac")
    assert (as_utc(mixpre.recorded_at), mixpre.recorded_at_source) == (T0, "bext")
    assert (mixpre.sample_rate, mixpre.channels, mixpre.bits_per_sample, mixpre.duration_s) == (16000, 1, 16, 0.25)
    assert mixpre.recorder_metadata["bext"]["originator"] == "MixPre-6 II"
    assert mixpre.recorder_metadata["ixml"]["project"] == "Marsh survey"
    assert mixpre.original_bytes == recordings["mixpre.wav"].event.original_bytes
    assert mixpre.sha256 == recordings["mixpre.wav"].event.original_sha256
    assert "/2026/05/28/" in mixpre.key  # the agent's key took the same day
    assert not mixpre.clock_suspect

    bat = rows["bat.wav"]
    assert (as_utc(bat.recorded_at), bat.recorded_at_source) == (T0 + timedelta(hours=4), "guano")
    assert (bat.channels, bat.bits_per_sample) == (2, 24)
    assert bat.recorder_metadata["guano"]["Serial"] == "SMU07171"

    field = rows["field.wav"]
    assert (as_utc(field.recorded_at), field.recorded_at_source) == (T0 - timedelta(days=1), "ixml")
    assert field.clock_suspect  # pi-2's clock is off, but the time came from the recorder's metadata

    moth = rows["20260528_061500.WAV"]
    assert (as_utc(moth.recorded_at), moth.recorded_at_source) == (T0, "filename")
    assert moth.recorder_metadata["info"]["IART"] == "AudioMoth 24F319055F5BE2B8"

    floating = rows["float.wav"]  # float: zstd, its chunk table read from the start of the decompressed stream
    assert (floating.status, floating.codec, floating.recorded_at_source) == ("cataloged", "zstd", "bext")
    assert (floating.sample_rate, floating.channels, floating.bits_per_sample, floating.duration_s) == (
        16000, 1, 32, 0.25,
    )  # fmt: skip

    plain = rows["plain.wav"]
    assert (as_utc(plain.recorded_at), plain.recorded_at_source) == (MTIME, "mtime")
    assert not plain.clock_suspect

    notes = rows["notes.txt"]  # text compresses: zstd, no audio facts
    assert (notes.status, notes.codec, notes.sample_rate) == ("cataloged", "zstd", None)
    assert notes.recorded_at_source == "mtime"

    assert rows["damaged.wav"].status == "failed"
    assert rows["damaged.wav"].error.startswith("damaged: FLAC header")
    assert rows["gone.wav"].status == "failed"
    assert rows["gone.wav"].error.startswith("missing: no such object")
    assert rows["other.wav"].status == "failed"
    assert rows["other.wav"].error.startswith("mismatch: original sha256")


def test_a_skewed_agents_mtime_says_so(tmp_path: Path, s3_server: SeaweedS3) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'c.db'}")
    migrate(engine)
    stored = _store(s3_server, f"skew-{uuid.uuid4().hex[:6]}", "pi-9", write_wav(tmp_path / "a.wav", 0.1, 8000))
    _report(engine, [stored], {"pi-9": ""})
    with Session(engine) as session:
        _cataloger(s3_server, clock_offset=lambda _a: -3600.0).run_once(session, datetime.now(UTC))
    row = _rows(engine)["a.wav"]
    assert (row.status, row.recorded_at_source, row.clock_suspect) == ("cataloged", "mtime", True)
    assert row.recorder_metadata["clock"]["offset_s"] == -3600.0
    assert "mtime" in row.recorder_metadata["clock"]["note"]


def test_two_controllers_split_the_work_and_never_double_insert(
    database_url: str, s3_server: SeaweedS3, tmp_path: Path
) -> None:
    engine = make_engine(database_url)
    migrate(engine)
    prefix = f"two-{uuid.uuid4().hex[:6]}"
    sites = {f"pi-{i}": f"site-{i}" for i in range(6)}
    stored = [_store(s3_server, prefix, a, write_wav(tmp_path / f"{a}.wav", 0.05, 8000)) for a in sites]
    _report(engine, stored, sites)
    live: Callable[[Session, datetime], list[str]] = lambda _s, _now: ["ctl-a", "ctl-b"]  # noqa: E731
    a = _cataloger(s3_server, "ctl-a", live_controllers=live)
    b = _cataloger(s3_server, "ctl-b", live_controllers=live)
    now = datetime.now(UTC)
    with Session(engine) as sa, Session(engine) as sb:
        ra, rb = a.run_once(sa, now), b.run_once(sb, now)
    assert ra.inserted + rb.inserted == len(stored)  # the second one found them there
    assert min(ra.cataloged, rb.cataloged) >= 1  # each took its share of the sites
    assert ra.cataloged + rb.cataloged == len(stored)
    rows = _rows(engine)
    assert len(rows) == len(stored)
    assert {r.status for r in rows.values()} == {"cataloged"}


def test_a_key_uploaded_again_is_cataloged_again(tmp_path: Path, s3_server: SeaweedS3) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'c.db'}")
    migrate(engine)
    prefix = f"again-{uuid.uuid4().hex[:6]}"
    path = write_wav(tmp_path / "dawn.wav", 0.1, 8000, extra_chunks=[(b"bext", bext(), "before")])
    first = _store(s3_server, prefix, "pi-1", path)
    _report(engine, [first], {"pi-1": ""})
    cataloger = _cataloger(s3_server)
    with Session(engine) as session:
        cataloger.run_once(session, datetime.now(UTC))
    assert _rows(engine)["dawn.wav"].duration_s == 0.1
    path = write_wav(tmp_path / "dawn.wav", 0.2, 8000, extra_chunks=[(b"bext", bext(), "before")])
    second = _store(s3_server, prefix, "pi-1", path)
    assert second.key == first.key
    _report(engine, [second.__class__(second.name, second.key, second.event.model_copy(update={"seq": 7}))], {})
    with Session(engine) as session:
        done = cataloger.run_once(session, datetime.now(UTC))
    assert (done.inserted, done.cataloged) == (1, 1)
    row = _rows(engine)["dawn.wav"]
    assert (row.status, row.duration_s, row.sha256) == ("cataloged", 0.2, second.event.original_sha256)


def test_the_controller_thread_catalogs_completed_uploads(
    start_controller: Callable[..., Controller], s3_server: SeaweedS3, tmp_path: Path
) -> None:
    settings = s3_server.settings()
    controller = start_controller(
        f"sqlite:///{tmp_path / 'c.db'}",
        s3={
            "endpoint": settings.endpoint,
            "access_key": settings.access_key,
            "secret_key": settings.secret_key,
            "bucket": settings.bucket,
        },
        catalog={"interval_s": 0.5},
    )
    path = write_wav(tmp_path / "20260528_061500.WAV", 0.1, 8000)
    stored = _store(s3_server, f"ctl-{uuid.uuid4().hex[:6]}", "pi-1", path)
    _report(controller.engine, [stored], {"pi-1": ""})

    def cataloged() -> Recording | None:
        row = _rows(controller.engine).get(stored.name)
        return row if row is not None and row.status == "cataloged" else None

    row = wait_for(cataloged, timeout=60, what="the catalog thread cataloged the upload")
    assert (as_utc(row.recorded_at), row.recorded_at_source) == (T0, "filename")
    assert controller.supervisor.status()["catalog"].alive
    assert controller.loop_errors["catalog"] == 0


def test_s3_refusing_or_away_costs_no_attempt(tmp_path: Path, s3_server: SeaweedS3) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'c.db'}")
    migrate(engine)
    stored = _store(s3_server, f"away-{uuid.uuid4().hex[:6]}", "pi-1", write_wav(tmp_path / "a.wav", 0.1, 8000))
    _report(engine, [stored], {"pi-1": ""})
    refused = replace(s3_server.settings(), access_key="nobody", secret_key="wrong-secret")
    dead = replace(s3_server.settings(), endpoint=f"http://127.0.0.1:{free_port()}")
    settings = CatalogSettings(max_attempts=1, retry_first_s=0.0)
    for s3 in (refused, dead):
        cataloger = Cataloger(probe_client(s3, 5.0), s3.bucket, controller_id="ctl-1", settings=settings)
        with Session(engine) as session:
            for _ in range(2):
                assert cataloger.run_once(session, datetime.now(UTC)).unreachable
        assert cataloger.blocked
        row = _rows(engine)["a.wav"]
        assert (row.status, row.error) == ("pending", "")  # max_attempts=1, and still no failure
    with Session(engine) as session:
        done = _cataloger(s3_server).run_once(session, datetime.now(UTC))
    assert done.cataloged == 1


def test_the_catalog_identity_reads_and_nothing_else(tmp_path: Path) -> None:
    """The least-privilege identity the demo gives the catalog (``catalog_policy``): it catalogs, and it can
    neither write, delete nor list."""
    engine = make_engine(f"sqlite:///{tmp_path / 'c.db'}")
    migrate(engine)
    server = SeaweedS3(directory=tmp_path / "s3")
    reader = server.add_catalog_identity()  # before the start: adding one restarts the server
    with server:
        stored = _store(server, "rec", "pi-1", write_wav(tmp_path / "20260528_061500.WAV", 0.1, 8000))
        _report(engine, [stored], {"pi-1": ""})
        client = server.client(reader.access_key, reader.secret_key)
        with Session(engine) as session:
            done = Cataloger(client, server.bucket, controller_id="ctl-1").run_once(session, datetime.now(UTC))
        assert done.cataloged == 1
        for attempt in (
            lambda: client.put_object(server.bucket, "rec/pi-1/x.flac", io.BytesIO(b"x"), 1),
            lambda: client.remove_object(server.bucket, stored.key),
            lambda: list(client.list_objects(server.bucket, prefix="rec/", recursive=True)),
        ):
            with pytest.raises(S3Error) as refused:
                attempt()
            assert refused.value.code == "AccessDenied"
        assert server.client().stat_object(server.bucket, stored.key).size == stored.event.stored_bytes
