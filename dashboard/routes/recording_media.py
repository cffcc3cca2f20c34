"""One recording: its page, its audio (byte ranges), its spectrogram and its original file
(docs/dashboard.md, "Listening and downloads"; docs/security.md, "Listening and downloads").

Every route takes the catalog row's id, never a key: the key comes from the ``recording`` row. Viewers may
listen and download as operators do (nothing here changes anything). The media routes answer 503 when the
dashboard has no ``[s3]`` section.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import partial
from typing import Annotated

from fastapi import APIRouter, HTTPException, Path, Request, status
from fastapi.responses import Response, StreamingResponse
from prometheus_client import CollectorRegistry
from sqlalchemy import Engine
from sqlmodel import Session
from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect
from starlette.types import Receive, Scope, Send

from controller.store.models import Recording
from dashboard.config import DashboardConfig, DashboardS3Section
from dashboard.deps import CtxDep, DbDep, UserDep, WebSessionDep
from dashboard.media import DownloadFailed, MediaError, MediaStore, ObjectBody, SpectrogramTimeout, UnpackedBody
from dashboard.mediahttp import (
    FLAC_TYPE,
    TransferSlots,
    Unsatisfiable,
    content_disposition,
    download_name,
    parse_range,
    play_type,
    unpacked,
)
from dashboard.metrics import LabelledCounter
from dashboard.rendering import render
from dashboard.spectrocache import Busy, DiskCache, SpectrogramService, cache_name
from fleet_audio.errors import RestoreError
from fleet_audio.restore import CannotRestore
from fleet_base.filenames import safe_text

log = logging.getLogger(__name__)
router = APIRouter(include_in_schema=False)

RecordingIdPath = Annotated[int, Path(ge=1, le=2**63 - 1, description="the recording's catalog id")]
FAILURES = ("download_verify", "download_s3", "stream_unpack", "spectrogram_timeout", "spectrogram_error", "busy")


@dataclass(frozen=True)
class Listening:
    """What the media routes share; built once per app by ``listening_for``."""

    settings: DashboardS3Section
    store: MediaStore
    streams: TransferSlots
    downloads: TransferSlots
    spectrograms: SpectrogramService
    failures: LabelledCounter


def listening_for(config: DashboardConfig, registry: CollectorRegistry) -> Listening | None:
    s3 = config.s3
    if s3 is None:
        return None
    failures = LabelledCounter(
        "edgefleet_dashboard_media_failures",
        "recordings that could not be served: download_verify (the rebuilt original did not match its size or "
        "sha256, the download was cut), download_s3, stream_unpack (a zstd object could not be decompressed while "
        "played, the stream was cut), spectrogram_timeout, spectrogram_error, busy (refused: limits)",
        "what",
        FAILURES,
    )
    registry.register(failures)
    return Listening(
        settings=s3,
        store=MediaStore(s3.settings().client(), s3.bucket),
        streams=TransferSlots(s3.streams_per_user, s3.streams_per_user * 64),
        downloads=TransferSlots(s3.downloads_per_user, s3.downloads_total),
        spectrograms=SpectrogramService(
            DiskCache(s3.spectrogram_cache_dir, s3.spectrogram_cache_bytes),
            s3.spectrogram_workers,
            s3.spectrogram_workers + s3.spectrogram_queue,
            s3.spectrogram_timeout_s,
        ),
        failures=failures,
    )


class ClosingStream(StreamingResponse):
    """A streamed body whose ``on_close`` runs however the response ends (done, client gone, failure). A
    ``DownloadFailed`` from the body is reported to ``on_failure`` and the response is left incomplete: the
    server closes the connection, so the client sees a cut transfer (short of ``Content-Length``)."""

    def __init__(
        self,
        content: Iterable[bytes],
        *,
        on_close: Callable[[], None],
        on_failure: Callable[[DownloadFailed], None] | None = None,
        **kwargs: object,
    ) -> None:
        super().__init__(content, **kwargs)  # type: ignore[arg-type]
        self._on_close = on_close
        self._on_failure = on_failure

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        except ClientDisconnect:
            pass  # the client went away (a player drops a range it no longer needs): nothing to report
        except DownloadFailed as exc:
            if self._on_failure is None:
                raise
            self._on_failure(exc)
        finally:
            await run_in_threadpool(self._on_close)


def _listening(request: Request) -> Listening:
    listening: Listening | None = request.app.state.listening
    if listening is None:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, "the dashboard has no [s3] section: cannot read S3")
    return listening


def _recording(engine: Engine, recording_id: int) -> Recording:
    """The row, read in a short session of its own (a stream must not hold a database connection)."""
    with Session(engine) as session:
        row = session.get(Recording, recording_id)
        if row is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"no recording {recording_id}")
        session.expunge(row)
        return row


def _media_error(exc: MediaError) -> HTTPException:
    return HTTPException(exc.status, str(exc))


def _refuse(listening: Listening, what: str) -> HTTPException:
    listening.failures.inc("busy")
    return HTTPException(status.HTTP_429_TOO_MANY_REQUESTS, f"too many {what} at once; wait for one to finish")


@router.get("/recordings/{recording_id}", name="recording_page")
def recording_page(
    request: Request, ctx: CtxDep, db: DbDep, session: WebSessionDep, user: UserDep, recording_id: RecordingIdPath
) -> Response:
    """The row's facts, a player (FLAC and WAV objects), the spectrogram and the download link."""
    row = db.get(Recording, recording_id)
    if row is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no recording {recording_id}")
    return render(
        request,
        ctx,
        session,
        user,
        "recording.html",
        rec=row,
        play=play_type(row.codec, row.key, row.file),
        can_read=request.app.state.listening is not None,
        title=download_name(None, row.file, row.key),
        metadata=sorted(row.recorder_metadata.items())[:200],
    )


@router.get("/recordings/{recording_id}/audio", name="recording_audio")
def recording_audio(request: Request, ctx: CtxDep, user: UserDep, recording_id: RecordingIdPath) -> Response:
    """The stored object (FLAC, or a raw WAV) as it is, or the original WAV a zstd object holds, decompressed
    (``UnpackedBody``); with byte ranges so a player can seek."""
    listening = _listening(request)
    row = _recording(ctx.engine, recording_id)
    media_type = play_type(row.codec, row.key, row.file)
    if media_type is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "this recording is not audio a browser can play")
    if not listening.streams.acquire(user.name):
        raise _refuse(listening, "streams")
    release = partial(listening.streams.release, user.name)
    size = 0
    try:
        info = listening.store.stat(row.key)
        zstd = unpacked(row.codec)
        size = (info.original_size or row.original_bytes) if zstd else info.size
        wanted = parse_range(request.headers.get("range"), size)
        start, length = (wanted.start, wanted.length) if wanted else (0, size)
        if zstd:
            body: ObjectBody | UnpackedBody = listening.store.open_unpacked(row.key, start, length)
        else:
            body = listening.store.open_range(row.key, start, length if wanted else 0)
    except Unsatisfiable:
        release()
        return Response(status_code=416, headers={"Content-Range": f"bytes */{size}"})
    except MediaError as exc:
        release()
        raise _media_error(exc) from None
    etag = f'"{info.etag}-original"' if zstd else f'"{info.etag}"'  # another representation, another tag
    headers = {"Accept-Ranges": "bytes", "Content-Length": str(length), "ETag": etag}
    if wanted:
        headers["Content-Range"] = wanted.content_range(size)

    def close() -> None:
        body.close()
        release()

    def failed(exc: DownloadFailed) -> None:
        listening.failures.inc("stream_unpack")
        log.error("stream of %s cut short for %s: %s", safe_text(row.key), user.name, exc)

    code = 206 if wanted else 200
    return ClosingStream(
        body, status_code=code, media_type=media_type, headers=headers, on_close=close, on_failure=failed
    )


@router.get("/recordings/{recording_id}/original", name="recording_original")
def recording_original(request: Request, ctx: CtxDep, user: UserDep, recording_id: RecordingIdPath) -> Response:
    """The original file, rebuilt from the object as it streams and checked (size, sha256) at the end; a
    mismatch cuts the download short (see ``ClosingStream``)."""
    listening = _listening(request)
    row = _recording(ctx.engine, recording_id)
    if not listening.downloads.acquire(user.name):
        raise _refuse(listening, "downloads")
    release = partial(listening.downloads.release, user.name)
    try:
        info = listening.store.stat(row.key)
        stream = listening.store.restore(row.key)
    except (MediaError, CannotRestore) as exc:
        release()
        raise HTTPException(exc.status if isinstance(exc, MediaError) else 400, str(exc)) from None
    name = download_name(info.original_name, row.file, row.key)
    headers = {"Content-Disposition": content_disposition(name)}
    size = info.original_size or row.original_bytes
    if size:
        headers["Content-Length"] = str(size)
    log.info("%s downloads the original of %s", user.name, safe_text(row.key))

    def failed(exc: DownloadFailed) -> None:
        cause = stream.failure
        listening.failures.inc("download_verify" if isinstance(cause, RestoreError) else "download_s3")
        log.error("download of the original of %s cut short for %s: %s", safe_text(row.key), user.name, exc)

    def close() -> None:
        stream.close()
        release()

    wav_name = name.lower().endswith((".wav", ".wave"))
    media_type = "audio/wav" if wav_name else "application/octet-stream"
    return ClosingStream(stream, media_type=media_type, headers=headers, on_close=close, on_failure=failed)


@router.get("/recordings/{recording_id}/spectrogram.png", name="recording_spectrogram")
async def recording_spectrogram(
    request: Request, ctx: CtxDep, _user: UserDep, recording_id: RecordingIdPath
) -> Response:
    """The spectrogram image, computed once per recording in the worker pool and cached on disk."""
    listening = _listening(request)
    row = await run_in_threadpool(_recording, ctx.engine, recording_id)
    media_type = play_type(row.codec, row.key, row.file)
    if media_type is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "this recording is not audio: no spectrogram")
    s3 = listening.settings
    try:
        etag = "" if row.sha256 else (await run_in_threadpool(listening.store.stat, row.key)).etag
        name = cache_name(row.key, row.sha256, etag, s3.spectrogram_width, s3.spectrogram_height)
        compute = partial(
            listening.store.spectrogram,
            row.key,
            flac=media_type == FLAC_TYPE,
            zstd=unpacked(row.codec),
            width=s3.spectrogram_width,
            height=s3.spectrogram_height,
        )
        future = listening.spectrograms.get(name, lambda deadline: compute(deadline=deadline))
        data = await asyncio.shield(asyncio.wrap_future(future))
    except MediaError as exc:
        raise _media_error(exc) from None
    except Busy:
        raise _refuse(listening, "spectrograms being computed") from None
    except SpectrogramTimeout as exc:
        listening.failures.inc("spectrogram_timeout")
        raise HTTPException(status.HTTP_504_GATEWAY_TIMEOUT, str(exc)) from None
    except Exception as exc:  # RestoreError (corrupt, unsupported) or anything else from one object
        listening.failures.inc("spectrogram_error")
        log.warning("no spectrogram for %s: %s", safe_text(row.key), exc, exc_info=not isinstance(exc, RestoreError))
        raise HTTPException(status.HTTP_502_BAD_GATEWAY, "the stored object cannot be decoded") from None
    return Response(data, media_type="image/png", headers={"Cache-Control": "private, max-age=86400"})
