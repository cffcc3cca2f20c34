"""A head start for one file: its source opened and its first parts encoding before the engine asks for it.

``edgefleet upload`` opens the file the engine will start first, at the level it will ask for, and starts
encoding its head in a thread (``FlacSource.encode_ahead``) before it loads the S3 client and sets up the
upload: by the time the first part may be sent, it is ready. ``HeadStart`` is then the engine's codec (the
functions of :mod:`fleet_audio.source`): ``open_source`` hands over the early source when the engine asks for
that file at that level, and opens any other as usual.

Nothing about it is durable: the early source is an open file and encoded bytes in memory. If the engine asks
for another level (a resumed upload keeps the level it started with), the early source is closed and the file
opened again; if the upload never gets that far (S3 set-up fails, the object is already stored), the source is
closed with the job, or by ``close()`` if the engine never asked for it. If opening early fails, nothing is
kept: the engine opens the file itself and meets the error where it always does.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from pathlib import Path

from fleet_audio import source as codec
from fleet_audio.source import FlacSource, ObjectSource

log = logging.getLogger("edgefleet.upload")


class HeadStart:
    def __init__(self, path: Path, level: int, head_bytes: Callable[[ObjectSource], int]) -> None:
        """Open ``path`` at ``level`` and, if it is encoded to FLAC, encode its first ``head_bytes(source)``
        bytes in a thread now."""
        self._lock = threading.Lock()
        self._path, self._level = path.absolute(), level
        self._early: ObjectSource | None = None
        try:
            early = codec.open_source(self._path, level)
        except Exception as exc:  # the engine opens it again and reports what is wrong with it
            log.debug("%s: no head start: %s", path, exc)
            return
        try:
            if isinstance(early, FlacSource):
                early.encode_ahead(head_bytes(early))
        except Exception as exc:
            early.close()
            log.debug("%s: no head start: %s", path, exc)
            return
        self._early = early

    # the codec (``edge_agent.transfer.context.Codec``)
    @staticmethod
    def check_finished(path: Path, *, settled: bool = False) -> None:
        codec.check_finished(path, settled=settled)

    @staticmethod
    def object_key(prefix: str, agent_id: str, path: Path, source: ObjectSource) -> str:
        return codec.object_key(prefix, agent_id, path, source)

    def open_source(self, path: Path, compression_level: int) -> ObjectSource:
        """The early source when it is the one asked for (once); else the file opened now."""
        with self._lock:
            early = self._early if Path(path).absolute() == self._path else None
            if early is not None:
                self._early = None
        if early is not None:
            if compression_level == self._level:
                log.debug("%s: the head start is used", path)
                return early
            log.debug("%s: the head start is dropped: level %d, not %d", path, compression_level, self._level)
            early.close()
        return codec.open_source(path, compression_level)

    def close(self) -> None:
        """Close the early source if the engine never asked for it (idempotent)."""
        with self._lock:
            early, self._early = self._early, None
        if early is not None:
            early.close()
