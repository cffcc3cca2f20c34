"""Spectrograms computed once: a bounded cache on disk, one computation per recording at a time, a bounded
pool of worker threads (docs/dashboard.md, "Listening and downloads").

- ``DiskCache``: one PNG file per cache name in a folder; written under a temporary name and renamed (never a
  half-written image); after each write the least recently used files are removed until the folder holds at
  most ``max_bytes``. A read marks a file as used (its modification time).
- ``cache_name``: the object key, the original's sha256, the object's ETag and the image size, hashed: a
  recording replaced under the same key gets a new image.
- ``SpectrogramService.get``: the cached image, else the computation already running for this name, else a new
  one in the pool (``workers`` threads). At most ``max_pending`` computations wait or run; beyond that
  ``Busy`` is raised (the route answers 503). The caller awaits the returned future, never a thread.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

log = logging.getLogger(__name__)

CACHE_VERSION = "1"  # bump when the image changes for the same input


class Busy(Exception):
    """Too many spectrograms are being computed; try again later."""


def cache_name(key: str, sha256: str, etag: str, width: int, height: int) -> str:
    parts = "\0".join((CACHE_VERSION, key, sha256, etag, f"{width}x{height}"))
    return hashlib.sha256(parts.encode("utf-8", "surrogatepass")).hexdigest() + ".png"


class DiskCache:
    def __init__(self, folder: Path, max_bytes: int) -> None:
        self.folder = folder
        self.max_bytes = max_bytes
        self._lock = threading.Lock()

    def _path(self, name: str) -> Path:
        if len(name) != 68 or not name.endswith(".png") or not all(c in "0123456789abcdef" for c in name[:64]):
            raise ValueError(f"not a cache name: {name!r}")
        return self.folder / name

    def get(self, name: str) -> bytes | None:
        path = self._path(name)
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            return None
        with contextlib.suppress(OSError):
            os.utime(path)
        return data

    def put(self, name: str, data: bytes) -> None:
        path = self._path(name)
        self.folder.mkdir(parents=True, exist_ok=True)
        partial = path.with_suffix(f".{threading.get_ident()}.part")
        try:
            partial.write_bytes(data)
            os.replace(partial, path)
        finally:
            with contextlib.suppress(FileNotFoundError):
                partial.unlink()
        self.evict()

    def evict(self) -> None:
        """Remove the least recently used images until the folder holds at most ``max_bytes``."""
        with self._lock:
            files = []
            for path in self.folder.glob("*.png"):
                with contextlib.suppress(FileNotFoundError):
                    st = path.stat()
                    files.append((st.st_mtime_ns, st.st_size, path))
            total = sum(size for _, size, _ in files)
            for _, size, path in sorted(files):
                if total <= self.max_bytes:
                    break
                with contextlib.suppress(FileNotFoundError):
                    path.unlink()
                total -= size

    def total_bytes(self) -> int:
        return sum(p.stat().st_size for p in self.folder.glob("*.png")) if self.folder.exists() else 0


class SpectrogramService:
    """See the module doc. ``compute(deadline)`` makes the PNG bytes (raising past ``deadline``, a
    ``time.monotonic`` value ``timeout_s`` after it starts)."""

    def __init__(self, cache: DiskCache, workers: int, max_pending: int, timeout_s: float) -> None:
        self.cache = cache
        self.timeout_s = timeout_s
        self.max_pending = max_pending
        self._executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="spectrogram")
        self._running: dict[str, Future[bytes]] = {}
        self._lock = threading.Lock()
        self.computed = 0  # how many images were computed (not served from the cache)

    def get(self, name: str, compute: Callable[[float], bytes]) -> Future[bytes]:
        cached = self.cache.get(name)
        if cached is not None:
            done: Future[bytes] = Future()
            done.set_result(cached)
            return done
        with self._lock:
            running = self._running.get(name)
            if running is not None:
                return running
            if len(self._running) >= self.max_pending:
                raise Busy
            future = self._executor.submit(self._run, name, compute)
            self._running[name] = future
            return future

    def _run(self, name: str, compute: Callable[[float], bytes]) -> bytes:
        try:
            cached = self.cache.get(name)  # made by a computation that ended after our caller looked
            if cached is not None:
                return cached
            data = compute(time.monotonic() + self.timeout_s)
            self.computed += 1
            try:
                self.cache.put(name, data)
            except OSError as exc:  # a full or read-only cache folder: serve the image anyway
                log.warning("cannot cache a spectrogram in %s: %s", self.cache.folder, exc.strerror or exc)
            return data
        finally:
            with self._lock:
                self._running.pop(name, None)

    def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)
