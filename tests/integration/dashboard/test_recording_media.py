"""A recording's page, audio, spectrogram and original against a real S3 server (SeaweedFS), with objects made
by the codec as the agent uploads them."""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from controller.store.database import create_all, make_engine
from dashboard.app import create_app
from dashboard.config import parse_config
from edgefleet.localservices import SeaweedS3
from edgefleet.localservices.process import free_port
from fleet_audio import packed
from fleet_audio.source import META_FORMAT, META_SHA256, META_SIZE, RAW_FORMAT
from tests.corpus import bext_payload, list_info_payload, write_wav
from tests.integration.dashboard.conftest import login, page_csrf
from tests.integration.dashboard.recordings import catalog, encode, put_object, s3_section, store
from tests.integration.dashboard.seed import PASSWORDS, config_data
from tests.unit.dashboard.test_spectrogram import read_png

pytestmark = pytest.mark.integration

CHUNKS = [(b"bext", bext_payload(), "before"), (b"LIST", list_info_payload(INAM="owl"), "after")]


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    eng = make_engine(f"sqlite:///{tmp_path / 'controller.db'}")
    create_all(eng)
    yield eng
    eng.dispose()


def make_app(engine: Engine, s3: SeaweedS3, cache: Path, **s3_extra: Any) -> FastAPI:
    url = str(engine.url)
    return create_app(parse_config(config_data(url, s3=s3_section(s3, cache, **s3_extra))), engine=engine)


@pytest.fixture
def client(engine: Engine, s3_server: SeaweedS3, tmp_path: Path) -> Iterator[TestClient]:
    with TestClient(make_app(engine, s3_server, tmp_path / "cache")) as c:
        login(c, "vic")  # a viewer may listen and download
        yield c


def test_the_page_shows_the_facts_a_player_the_spectrogram_and_the_download(
    client: TestClient, engine: Engine, s3_server: SeaweedS3, tmp_path: Path
) -> None:
    path = write_wav(tmp_path / "dawn chorus é.wav", 0.5, 16000, seed=1)
    rec_id, key, _ = store(s3_server, engine, path, duration_s=0.5, sample_rate=16000, channels=1, bits_per_sample=16)
    page = client.get(f"/recordings/{rec_id}")
    assert page.status_code == 200
    html = page.text
    assert key in html
    assert f'/recordings/{rec_id}/audio"' in html
    assert f'/recordings/{rec_id}/spectrogram.png"' in html
    assert f'/recordings/{rec_id}/original"' in html
    assert "Download original WAV" in html
    assert "16000 Hz, 1 ch, 16-bit" in html


def test_the_audio_route_serves_byte_ranges(
    client: TestClient, engine: Engine, s3_server: SeaweedS3, tmp_path: Path
) -> None:
    path = write_wav(tmp_path / "owl.wav", 1.0, 22050, channels=2, seed=2)
    rec_id, _, data = store(s3_server, engine, path)
    url = f"/recordings/{rec_id}/audio"
    whole = client.get(url)
    assert whole.status_code == 200
    assert whole.headers["content-type"] == "audio/flac"
    assert whole.headers["accept-ranges"] == "bytes"
    assert whole.content == data
    last = len(data) - 1
    cases = [("bytes=10-99", 10, 99), ("bytes=1000-", 1000, last), ("bytes=-50", last - 49, last),
             (f"bytes=5-{len(data) + 100}", 5, last)]  # fmt: skip
    for header, start, end in cases:
        part = client.get(url, headers={"Range": header})
        assert part.status_code == 206, header
        assert part.headers["content-range"] == f"bytes {start}-{end}/{len(data)}"
        assert part.content == data[start : end + 1], header
    beyond = client.get(url, headers={"Range": f"bytes={len(data)}-"})
    assert beyond.status_code == 416
    assert beyond.headers["content-range"] == f"bytes */{len(data)}"
    assert client.app.state.listening.streams.held() == 0  # type: ignore[attr-defined]


CASES = [
    ("24-bit stereo with chunks", {"channels": 2, "bits": 24, "extra_chunks": CHUNKS}, 5),
    ("8-bit mono", {"channels": 1, "bits": 8}, 0),
    ("16-bit stored raw", {"channels": 1, "bits": 16, "extra_chunks": CHUNKS}, -1),
    ("float raw", {"channels": 1, "float32": True}, 5),
]


@pytest.mark.parametrize(("name", "kwargs", "level"), CASES, ids=[c[0] for c in CASES])
def test_the_original_downloads_bit_for_bit(
    client: TestClient, engine: Engine, s3_server: SeaweedS3, tmp_path: Path, name: str, kwargs: Any, level: int
) -> None:
    path = write_wav(tmp_path / f"{name} ü\u202e.wav", 1.2, 32000, kind="field", seed=3, **kwargs)
    rec_id, _, _ = store(s3_server, engine, path, level)
    answer = client.get(f"/recordings/{rec_id}/original")
    assert answer.status_code == 200
    assert answer.content == path.read_bytes()
    assert int(answer.headers["content-length"]) == path.stat().st_size
    disposition = answer.headers["content-disposition"]
    assert disposition.startswith('attachment; filename="')
    assert "filename*=UTF-8''" in disposition
    assert "%C3%BC" in disposition
    assert "\u202e" not in disposition
    assert "%E2%80%AE" not in disposition
    png = client.get(f"/recordings/{rec_id}/spectrogram.png")
    assert png.status_code == 200, png.text
    width, height, _ = read_png(png.content)
    assert (width, height) == (round(1.2 * 32000) // 1024, 256)  # one column per FFT window: a short recording


def test_a_non_audio_object_has_no_player_but_downloads(
    client: TestClient, engine: Engine, s3_server: SeaweedS3
) -> None:
    body = b"field notes\n" * 100
    meta = {META_FORMAT: RAW_FORMAT, META_SIZE: str(len(body)), META_SHA256: hashlib.sha256(body).hexdigest()}
    put_object(s3_server, "it-media/pi-1/notes.txt", body, meta)
    rec_id = catalog(engine, "it-media/pi-1/notes.txt", None, "raw", len(body), original_bytes=len(body))
    page = client.get(f"/recordings/{rec_id}")
    assert "<audio" not in page.text
    assert "not audio a browser can play" in page.text
    assert client.get(f"/recordings/{rec_id}/audio").status_code == 404
    assert client.get(f"/recordings/{rec_id}/spectrogram.png").status_code == 404
    original = client.get(f"/recordings/{rec_id}/original")
    assert original.content == body
    assert original.headers["content-type"] == "application/octet-stream"


def test_the_spectrogram_is_computed_once_and_cached_on_disk(
    client: TestClient, engine: Engine, s3_server: SeaweedS3, tmp_path: Path
) -> None:
    path = write_wav(tmp_path / "tone.wav", 0.5, 16000, kind="field", seed=4)
    rec_id, _, _ = store(s3_server, engine, path)
    service = client.app.state.listening.spectrograms  # type: ignore[attr-defined]
    first = client.get(f"/recordings/{rec_id}/spectrogram.png")
    again = client.get(f"/recordings/{rec_id}/spectrogram.png")
    assert first.content == again.content
    assert service.computed == 1
    assert [p.suffix for p in (tmp_path / "cache").iterdir()] == [".png"]
    assert first.headers["cache-control"].startswith("private")


def test_every_route_checks_the_catalog_and_the_login(
    client: TestClient, engine: Engine, s3_server: SeaweedS3, tmp_path: Path
) -> None:
    for path in (
        "/recordings/999",
        "/recordings/999/audio",
        "/recordings/999/original",
        "/recordings/999/spectrogram.png",
    ):
        assert client.get(path).status_code == 404, path
    for path in ("/recordings/..%2F..%2Fetc", "/recordings/0/audio", "/recordings/-1/original", "/recordings/1e3"):
        assert client.get(path).status_code in (404, 422), path
    client.cookies.clear()
    wav = write_wav(tmp_path / "a.wav", 0.2, 8000)
    rec_id, _, _ = store(s3_server, engine, wav)
    anonymous = client.get(f"/recordings/{rec_id}/original", follow_redirects=False)
    assert anonymous.status_code == 303
    assert anonymous.headers["location"].startswith("/login")


def test_downloads_per_user_are_bounded(
    client: TestClient, engine: Engine, s3_server: SeaweedS3, tmp_path: Path
) -> None:
    rec_id, _, _ = store(s3_server, engine, write_wav(tmp_path / "b.wav", 0.2, 8000))
    slots = client.app.state.listening.downloads  # type: ignore[attr-defined]
    for _ in range(slots.per_user):
        assert slots.acquire("vic")
    assert client.get(f"/recordings/{rec_id}/original").status_code == 429
    slots.release("vic")
    assert client.get(f"/recordings/{rec_id}/original").status_code == 200


def test_without_s3_the_page_shows_facts_only(engine: Engine, tmp_path: Path) -> None:
    rec_id = catalog(engine, "it-media/pi-1/x.flac", None, "flac", 10)
    with TestClient(create_app(parse_config(config_data(str(engine.url))), engine=engine)) as c:
        login(c, "olga")
        assert "no S3 access configured" in c.get(f"/recordings/{rec_id}").text
        assert c.get(f"/recordings/{rec_id}/audio").status_code == 503


def _tamper_edgf(data: bytes) -> bytes:
    """The object with one bit of the original's sha256 in its edgf block flipped (the audio still decodes)."""
    at = data.index(b"edgf\x00\x01") + 4 + 2 + 2 + 8
    return data[:at] + bytes([data[at] ^ 1]) + data[at + 1 :]


@pytest.fixture
def served(engine: Engine, s3_server: SeaweedS3, tmp_path: Path) -> Iterator[tuple[str, FastAPI]]:
    """The dashboard under a real uvicorn, so the test sees what an HTTP client sees."""
    app = make_app(engine, s3_server, tmp_path / "cache")
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="critical"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert time.monotonic() < deadline, "the dashboard did not start"
        assert thread.is_alive(), "the dashboard did not start"
        time.sleep(0.02)
    yield f"http://127.0.0.1:{port}", app
    server.should_exit = True
    thread.join(timeout=30)


def test_a_tampered_object_cuts_the_download_short(
    served: tuple[str, FastAPI], engine: Engine, s3_server: SeaweedS3, tmp_path: Path
) -> None:
    url, app = served
    path = write_wav(tmp_path / "tampered.wav", 2.0, 48000, channels=2, bits=24, seed=5)  # several pieces
    key, data, metadata, codec = encode(path)
    put_object(s3_server, key, _tamper_edgf(data), metadata)
    rec_id = catalog(engine, key, path, codec, len(data))
    received = bytearray()
    with httpx.Client(base_url=url, timeout=60) as http:
        _login(http)
        with pytest.raises(httpx.HTTPError), http.stream("GET", f"/recordings/{rec_id}/original") as answer:  # noqa: PT012
            assert answer.status_code == 200
            assert int(answer.headers["content-length"]) == path.stat().st_size
            for block in answer.iter_raw():
                received += block
    original = path.read_bytes()
    assert 0 < len(received) < len(original)  # never the whole file
    assert original.startswith(bytes(received))  # what came was right, the end is missing
    listening = app.state.listening
    assert listening.failures.value("download_verify") == 1
    assert listening.downloads.held() == 0


def test_an_object_that_does_not_decode_gives_no_spectrogram(
    client: TestClient, engine: Engine, s3_server: SeaweedS3
) -> None:
    put_object(s3_server, "it-media/pi-1/broken.flac", b"fLaC" + b"\x00" * 5000, {})
    rec_id = catalog(engine, "it-media/pi-1/broken.flac", None, "flac", 5004)
    answer = client.get(f"/recordings/{rec_id}/spectrogram.png")
    assert answer.status_code == 502
    assert client.app.state.listening.failures.value("spectrogram_error") == 1  # type: ignore[attr-defined]
    assert client.get(f"/recordings/{rec_id}").status_code == 200  # the page still shows the facts


def test_a_spectrogram_past_its_time_limit_is_a_504_and_not_cached(
    engine: Engine, s3_server: SeaweedS3, tmp_path: Path
) -> None:
    rec_id, _, _ = store(s3_server, engine, write_wav(tmp_path / "slow.wav", 0.5, 16000))
    with TestClient(make_app(engine, s3_server, tmp_path / "cache", spectrogram_timeout_s=1e-9)) as c:
        login(c, "olga")
        assert c.get(f"/recordings/{rec_id}/spectrogram.png").status_code == 504
        assert c.app.state.listening.failures.value("spectrogram_timeout") == 1  # type: ignore[attr-defined]
        assert not (tmp_path / "cache").exists() or not list((tmp_path / "cache").iterdir())


def _login(http: httpx.Client) -> None:
    http.post("/login", data={"username": "vic", "password": PASSWORDS["vic"], "csrf_token": page_csrf(http)})


def test_a_zstd_float_wav_plays_decompressed_with_byte_ranges(
    served: tuple[str, FastAPI], engine: Engine, s3_server: SeaweedS3, tmp_path: Path
) -> None:
    """Under a real uvicorn: the original WAV a zstd object holds, whole and in ranges (across the decompressor's
    output blocks, the last bytes, a suffix), with the original's length; beyond the end is 416."""
    url, app = served
    path = write_wav(tmp_path / "float owl.wav", 3.0, 48000, channels=2, kind="field", float32=True, seed=6)
    rec_id, _, stored = store(s3_server, engine, path)
    original = path.read_bytes()
    size = len(original)
    assert stored[:4] == packed.MAGIC
    assert len(stored) < size
    block = packed.OUT_BLOCK
    cases = [
        ("bytes=0-", 0, size - 1),
        ("bytes=10-99", 10, 99),
        (f"bytes={block - 5}-{block + 4}", block - 5, block + 4),  # across two output blocks
        (f"bytes={3 * block + 7}-", 3 * block + 7, size - 1),
        ("bytes=-50", size - 50, size - 1),
        (f"bytes=5-{size + 100}", 5, size - 1),
    ]
    with httpx.Client(base_url=url, timeout=60) as http:
        _login(http)
        page = http.get(f"/recordings/{rec_id}").text
        assert "<audio" in page
        assert 'data-type="audio/wav"' in page
        whole = http.get(f"/recordings/{rec_id}/audio")
        assert whole.status_code == 200
        assert whole.headers["content-type"] == "audio/wav"
        assert int(whole.headers["content-length"]) == size
        assert whole.content == original
        for header, start, end in cases:
            part = http.get(f"/recordings/{rec_id}/audio", headers={"Range": header})
            assert part.status_code == 206, header
            assert part.headers["content-range"] == f"bytes {start}-{end}/{size}", header
            assert int(part.headers["content-length"]) == end - start + 1
            assert part.content == original[start : end + 1], header
        beyond = http.get(f"/recordings/{rec_id}/audio", headers={"Range": f"bytes={size}-"})
        assert (beyond.status_code, beyond.headers["content-range"]) == (416, f"bytes */{size}")
        assert http.get(f"/recordings/{rec_id}/spectrogram.png").status_code == 200
    assert app.state.listening.streams.held() == 0


def test_a_zstd_object_that_is_not_audio_only_downloads_and_a_corrupt_one_cuts_the_stream(
    served: tuple[str, FastAPI], engine: Engine, s3_server: SeaweedS3, tmp_path: Path
) -> None:
    url, app = served
    notes = tmp_path / "notes.csv"
    notes.write_text("time,species,count\n" + "".join(f"{i},owl,{i % 7}\n" for i in range(20000)))
    rec_id, _, stored = store(s3_server, engine, notes)
    assert stored[:4] == packed.MAGIC
    path = write_wav(tmp_path / "float cut.wav", 2.0, 48000, channels=2, kind="field", float32=True, seed=7)
    key, data, metadata, codec = encode(path)
    put_object(s3_server, key, data[: len(data) // 2], metadata)  # half the frame: it ends early
    cut_id = catalog(engine, key, path, codec, len(data) // 2)
    received = bytearray()
    with httpx.Client(base_url=url, timeout=60) as http:
        _login(http)
        page = http.get(f"/recordings/{rec_id}").text
        assert "<audio" not in page
        assert "not audio a browser can play" in page
        assert http.get(f"/recordings/{rec_id}/audio").status_code == 404
        assert http.get(f"/recordings/{rec_id}/original").content == notes.read_bytes()
        with pytest.raises(httpx.HTTPError), http.stream("GET", f"/recordings/{cut_id}/audio") as answer:  # noqa: PT012
            assert int(answer.headers["content-length"]) == path.stat().st_size
            for piece in answer.iter_raw():
                received += piece
    assert 0 < len(received) < path.stat().st_size
    assert path.read_bytes().startswith(bytes(received))
    assert app.state.listening.failures.value("stream_unpack") == 1
    assert app.state.listening.streams.held() == 0
