"""The engine against a real S3 server (SeaweedFS): round trips, resume decisions, dedup, bad input."""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from edge_agent.engine.limits import Limits, MiB
from edge_agent.engine.upload import multipart_etag
from edge_agent.transfer import Engine
from edge_agent.transfer.s3 import S3Store
from edgefleet.localservices import SeaweedS3
from fleet_audio import source as real_codec
from fleet_audio.restore import verify_object
from tests.faultproxy import FaultProxy
from tests.integration.edge_agent.transfer.helpers import PART, Recorder, settings_via

pytestmark = pytest.mark.integration
Make = Callable[..., tuple[Engine, Recorder]]


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_round_trip_several_files(s3_server: SeaweedS3, make_engine: Make, wavs: dict[str, Path]) -> None:
    engine, rec = make_engine(settings_via(s3_server), Limits(concurrency=3, part_size=PART))
    files = [wavs["mid"], wavs["small24"], wavs["float"]]
    for f in files:
        assert engine.enqueue(f)
    report = engine.run_until_idle()
    assert report.ok, report
    by_file = {r.file: r for r in report.results}
    client = s3_server.client()
    for f in files:
        r = by_file[str(f)]
        assert r.key.startswith(engine.config.prefix + "/pi-7/20")
        assert r.key
        assert r.key.endswith("/" + (f.name + ".zst" if f == wavs["float"] else f.stem + ".flac"))
        assert verify_object(client, s3_server.bucket, r.key, f).matches
        done = [e for e in rec.events if e.file == str(f) and e.kind.value == "upload_completed"]
        assert len(done) == 1
        assert done[0].original_sha256 == sha256(f)
        assert done[0].stored_bytes == client.stat_object(s3_server.bucket, r.key).size
    assert by_file[str(wavs["float"])].stored_as == "zstd"  # FLAC cannot hold float; zstd saves > 5 %
    assert by_file[str(wavs["mid"])].stored_as == "flac"
    # the 17 MB WAV went up in several parts: the stored ETag is the multipart one
    assert str(client.stat_object(s3_server.bucket, by_file[str(wavs["mid"])].key).etag).endswith("-3")
    assert engine.stats().backlog_files == 0
    assert not S3Store(settings_via(s3_server)).pending_uploads(engine.config.prefix)


def test_same_recording_twice_is_one_object(
    s3_server: SeaweedS3, proxy: FaultProxy, make_engine: Make, wavs: dict[str, Path]
) -> None:
    engine, _ = make_engine(settings_via(s3_server, proxy))
    engine.enqueue(wavs["small24"])
    first = engine.run_until_idle().results[0]
    uploaded = proxy.bytes_up
    assert first.ok
    # enqueue again: done in the journal with the same size/mtime -> nothing to do
    assert not engine.enqueue(wavs["small24"])
    # a fresh journal (another run, another state dir) finds the object and skips it
    other, rec = make_engine(settings_via(s3_server, proxy), state="other-state")
    other.enqueue(wavs["small24"])
    again = other.run_until_idle().results[0]
    assert again.ok
    assert again.key == first.key
    assert again.reason == "already stored"
    assert proxy.bytes_up - uploaded < 20_000  # a HEAD and a ranged GET, no upload
    assert rec.kinds() == ["upload_completed"]


class ChangingCodec:
    """The real codec, but from the 2nd open on, part 2 has one byte flipped (as if encoding were not
    deterministic)."""

    def __init__(self) -> None:
        self.opens = 0

    def check_finished(self, path: Path, *, settled: bool = False) -> None:
        real_codec.check_finished(path, settled=settled)

    def object_key(self, prefix: str, agent_id: str, path: Path, source: Any) -> str:
        return real_codec.object_key(prefix, agent_id, path, source.inner)

    def open_source(self, path: Path, level: int) -> Any:
        self.opens += 1
        return _Flipped(real_codec.open_source(path, level), flip=self.opens > 1)


class _Flipped:
    def __init__(self, inner: Any, flip: bool) -> None:
        self.inner, self._flip = inner, flip

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    @property
    def metadata(self) -> Any:
        return self.inner.metadata

    def body(self) -> Iterator[bytes]:
        pos, at = 0, 6 * MiB  # a byte of part 2 (part 1 is the first 5 MiB and goes last)
        for block in self.inner.body():
            if self._flip and pos <= at < pos + len(block):
                i = at - pos
                block = block[:i] + bytes([block[i] ^ 1]) + block[i + 1 :]
            pos += len(block)
            yield block


def stop_after_parts(engine: Engine, n: int) -> None:
    count = 0
    lock = threading.Lock()

    def on_bytes(path: str, nbytes: int) -> None:
        nonlocal count
        with lock:
            count += 1
            if count == n:
                threading.Thread(target=engine.stop, args=(30,)).start()

    engine.set_progress_callback(on_bytes)


def test_resume_skips_stored_parts_and_restarts_cleanly_on_mismatch(
    s3_server: SeaweedS3, proxy: FaultProxy, make_engine: Make, wavs: dict[str, Path]
) -> None:
    codec = ChangingCodec()
    limits = Limits(concurrency=1, part_size=PART)
    engine, _ = make_engine(settings_via(s3_server, proxy), limits, codec=codec)
    engine.enqueue(wavs["big"])
    stop_after_parts(engine, 2)
    assert not engine.run_until_idle().ok  # stopped after two parts
    engine.close()
    store = S3Store(settings_via(s3_server))
    pending = store.pending_uploads(engine.config.prefix + "/")
    assert len(pending) == 1  # parts are left on the server for the resume

    # second run: the codec now produces different bytes -> the stored part does not match -> clean restart
    engine2, rec = make_engine(settings_via(s3_server, proxy), limits, codec=codec)
    engine2.enqueue(wavs["big"])
    report = engine2.run_until_idle()
    assert report.ok, report
    assert "upload_resumed" in rec.kinds()
    assert "upload_started" in rec.kinds()
    assert store.pending_uploads(engine.config.prefix + "/") == []  # the old upload was aborted
    head = store.head(report.results[0].key)
    assert head is not None
    assert head.size == report.results[0].stored_bytes


def test_resume_after_stop_sends_only_missing_parts(
    s3_server: SeaweedS3, proxy: FaultProxy, make_engine: Make, wavs: dict[str, Path]
) -> None:
    limits = Limits(concurrency=2, part_size=PART)
    engine, _ = make_engine(settings_via(s3_server, proxy), limits)
    engine.enqueue(wavs["big"])
    stop_after_parts(engine, 3)
    assert not engine.run_until_idle().ok
    engine.close()
    first_run = proxy.bytes_up
    engine2, rec = make_engine(settings_via(s3_server, proxy), limits)
    engine2.enqueue(wavs["big"])
    report = engine2.run_until_idle()
    assert report.ok, report
    assert rec.kinds()[0] == "upload_resumed"
    stored = report.results[0].stored_bytes
    resent = first_run + (proxy.bytes_up - first_run) - stored
    assert resent <= limits.concurrency * PART, f"re-sent {resent / MiB:.1f} MiB"
    assert verify_object(s3_server.client(), s3_server.bucket, report.results[0].key, wavs["big"]).matches


def test_bad_input_is_rejected_and_kept(s3_server: SeaweedS3, make_engine: Make, tmp_path: Path) -> None:
    empty = tmp_path / "empty.wav"
    empty.write_bytes(b"")
    truncated = tmp_path / "trunc.wav"
    truncated.write_bytes(b"RIFF\x24\x00\x10\x00WAVEfmt ")
    engine, rec = make_engine(settings_via(s3_server))
    for f in (empty, truncated):
        engine.enqueue(f)
    report = engine.run_until_idle()
    assert not report.ok
    assert all(not r.ok and r.reason for r in report.results)
    assert rec.kinds().count("file_rejected") == 2
    assert empty.exists()
    assert truncated.exists()
    assert engine.status(empty)[0] == "rejected"  # type: ignore[index]


def test_multipart_etag_matches_server(s3_server: SeaweedS3) -> None:
    """The verification rule relies on the server computing the standard multipart ETag."""
    store = S3Store(settings_via(s3_server))
    uid = store.create("it/etag-check", "application/octet-stream", {})
    parts = [bytearray(b"a" * PART), bytearray(b"b" * 1000)]
    md5s = [hashlib.md5(p).hexdigest() for p in parts]
    for n, (p, m) in enumerate(zip(parts, md5s, strict=True), start=1):
        assert store.upload_part("it/etag-check", uid, n, p, m) == m
    store.complete("it/etag-check", uid, [(1, md5s[0]), (2, md5s[1])])
    head = store.head("it/etag-check")
    assert head is not None
    assert head.etag == multipart_etag(md5s)
    assert head.size == PART + 1000


def test_stray_uploads_of_the_key_are_aborted(s3_server: SeaweedS3, make_engine: Make, wavs: dict[str, Path]) -> None:
    """A CreateMultipartUpload whose response was lost (the retry made a second upload), or a crash between
    create and the journal write, leaves an upload of the key nobody knows: the next fresh upload aborts it."""
    engine, _ = make_engine(settings_via(s3_server))
    src = real_codec.open_source(wavs["small24"], 5)
    try:
        key = real_codec.object_key(engine.config.prefix, "pi-7", wavs["small24"], src)
    finally:
        src.close()
    store = S3Store(settings_via(s3_server))
    stray = store.create(key, "audio/flac", {})
    assert [p.upload_id for p in store.pending_uploads(key)] == [stray]
    engine.enqueue(wavs["small24"])
    assert engine.run_until_idle().ok
    assert store.pending_uploads(key) == []
