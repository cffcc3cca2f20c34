"""The HTTP side of serving recordings, without I/O: byte ranges, download names, what a key can be played as,
and per-user limits on concurrent transfers.

- ``parse_range``: one ``Range: bytes=...`` range against a known size (RFC 9110 §14). Several ranges, another
  unit or a malformed header are ignored (the whole object is sent, as the RFC allows); a syntactically valid
  range that starts beyond the end is ``Unsatisfiable`` (416).
- ``content_disposition``: ``attachment`` with an ASCII ``filename`` (anything else becomes ``_``) and the exact
  name in ``filename*`` (UTF-8, percent-encoded); a name that is not valid UTF-8 has its odd bytes replaced.
- ``play_type``: the ``Content-Type`` a browser can play an object as, or ``None`` (no player); ``unpacked``:
  whether it is served decompressed (a zstd object: its original bytes).
- ``TransferSlots``: at most ``per_user`` transfers per user and ``total`` in all; ``acquire`` never waits.
"""

from __future__ import annotations

import re
import threading
import unicodedata
from collections import Counter
from dataclasses import dataclass
from urllib.parse import quote

__all__ = [
    "ByteRange",
    "TransferSlots",
    "Unsatisfiable",
    "content_disposition",
    "download_name",
    "parse_range",
    "play_type",
    "unpacked",
]

_RANGE = re.compile(r"^\s*bytes\s*=\s*(\d*)\s*-\s*(\d*)\s*$", re.IGNORECASE)
FLAC_TYPE = "audio/flac"
WAV_TYPE = "audio/wav"
#: the catalog's codec of an object stored as zstd (``fleet_audio.packed``, object format ``zstd-v1``)
ZSTD_CODEC = "zstd"


class Unsatisfiable(Exception):
    """The range starts at or beyond the end of the object (answer 416 with ``Content-Range: bytes */size``)."""


@dataclass(frozen=True)
class ByteRange:
    start: int
    end: int  # inclusive

    @property
    def length(self) -> int:
        return self.end - self.start + 1

    def content_range(self, size: int) -> str:
        return f"bytes {self.start}-{self.end}/{size}"


def parse_range(header: str | None, size: int) -> ByteRange | None:
    """The one range ``header`` asks for, clipped to ``size``; ``None``: send the whole object."""
    if not header:
        return None
    match = _RANGE.match(header)
    if match is None:
        return None  # several ranges, another unit, garbage: ignore the header
    first, last = match.groups()
    if not first and not last:
        return None
    if not first:  # the last N bytes
        suffix = int(last)
        if suffix == 0 or size == 0:
            raise Unsatisfiable
        return ByteRange(max(0, size - suffix), size - 1)
    start = int(first)
    if last and int(last) < start:
        return None  # invalid: ignore
    if start >= size:
        raise Unsatisfiable
    end = int(last) if last else size - 1
    return ByteRange(start, min(end, size - 1))


def _ascii_fallback(name: str) -> str:
    """Letters without their accents, digits and ``-_.()+`` and space; any other character is ``_``."""
    kept = []
    for ch in unicodedata.normalize("NFKD", name):
        if unicodedata.combining(ch):
            continue
        kept.append(ch if ch.isascii() and (ch.isalnum() or ch in "-_.()+ ") else "_")
    cleaned = "".join(kept).strip(" ").lstrip(".")
    return cleaned or "recording"


def content_disposition(name: str) -> str:
    """``attachment; filename="…"; filename*=UTF-8''…`` for ``name`` (a ``str`` that may hold surrogate escapes
    of bytes that are not UTF-8, as os functions give; those become U+FFFD)."""
    text = name.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
    text = "".join("_" if unicodedata.category(ch)[0] == "C" or ch in "/\\" else ch for ch in text)
    return f"attachment; filename=\"{_ascii_fallback(text)}\"; filename*=UTF-8''{quote(text, safe='')}"


def download_name(original: bytes | None, file: str, key: str) -> str:
    """The name a download gets: the original file name's bytes (object metadata), else the catalog's file name
    (its last path segment), else the key's last segment with ``.flac`` as ``.wav``."""
    if original:
        return original.rsplit(b"/", 1)[-1].decode("utf-8", "surrogateescape")
    if file:
        return file.replace("\\", "/").rsplit("/", 1)[-1]
    name = key.rsplit("/", 1)[-1]
    for flac, wav in ((".flac", ".wav"), (".FLAC", ".WAV")):
        if name.endswith(flac):
            return name[: -len(flac)] + wav
    return name


def play_type(codec: str, key: str, file: str = "") -> str | None:
    """``audio/flac`` for our FLAC objects, ``audio/wav`` for a raw WAV and for a WAV stored as zstd (told by the
    original ``file`` name: the dashboard serves it decompressed, ``unpacked``), ``None`` for anything else (no
    player, no spectrogram: download only)."""
    lower = key.lower()
    if codec == "flac" or (not codec and lower.endswith(".flac")):
        return FLAC_TYPE
    if codec == ZSTD_CODEC:
        return WAV_TYPE if file.lower().endswith((".wav", ".wave")) else None
    if codec in ("raw", "") and lower.endswith((".wav", ".wave")):
        return WAV_TYPE
    return None


def unpacked(codec: str) -> bool:
    """Is the object zstd (``fleet_audio.packed``), so served and decoded decompressed? Decided from the catalog's
    codec, once: the store never sniffs the bytes."""
    return codec == ZSTD_CODEC


class TransferSlots:
    """Counts running transfers per user; ``acquire`` says no rather than wait (the route answers 429)."""

    def __init__(self, per_user: int, total: int) -> None:
        self.per_user = per_user
        self.total = total
        self._lock = threading.Lock()
        self._held: Counter[str] = Counter()

    def acquire(self, user: str) -> bool:
        with self._lock:
            if self._held[user] >= self.per_user or sum(self._held.values()) >= self.total:
                return False
            self._held[user] += 1
            return True

    def release(self, user: str) -> None:
        with self._lock:
            self._held[user] -= 1
            if self._held[user] <= 0:
                del self._held[user]

    def held(self, user: str | None = None) -> int:
        with self._lock:
            return sum(self._held.values()) if user is None else self._held[user]
