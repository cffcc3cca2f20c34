"""Object keys from recording names: total over every byte string, valid UTF-8, bounded, collision-free.

``{prefix}/{agent_id}/{YYYY}/{MM}/{DD}/{name}``, where ``name`` comes from the file name by these rules:

- A FLAC object replaces the name's ``.wav`` with ``.flac`` (``.WAV`` with ``.FLAC``); a raw object keeps
  the name (its extension included); a zstd object (``packed.py``) adds ``.zst`` to the whole name.
- Kept as they are: ASCII letters and digits, ``-``, ``_``, ``.``, and non-ASCII letters, digits and marks in
  Unicode NFC form. Every other character (space, ``%#?\\"'``, controls, a byte that is not UTF-8, ...)
  becomes ``_``, as does a leading ``.``, ``-`` or combining mark; a name not in NFC is normalised first; a
  name longer than 200 bytes (or than the room the prefix leaves under S3's 1024-byte key limit) is cut.
- When any of that changed the name, or the name has no ``.wav``/``.WAV`` (FLAC), ends in ``.flac`` or ``.zst``
  in any case (raw: it could then pass for a FLAC or zstd key), or already holds the marker ``__``, the name gets
  ``__`` + 16 hex digits of the sha256 of the object kind and the raw name's bytes, before its extension:
  ``rec\\xff.wav`` → ``rec___5c0d1f3a9b2e7c41.flac``.

So a name that needed nothing keeps its readable key (``dawn.wav`` → ``dawn.flac``), and two different file
names never share a key: a key without the marker spells its name exactly, and a key with it carries the
name's hash (64 bits) at a place its shape fixes. The original bytes are kept in the object's metadata
(``edgefleet-original-name``, percent-encoded).
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from typing import Literal

__all__ = ["MAX_KEY_BYTES", "key_name", "object_key_for"]

MAX_KEY_BYTES = 1024  # S3's limit on a key, in UTF-8 bytes
MAX_NAME_BYTES = 200  # the readable part of the name, before the hash and extension
MARK = "__"
HASH_HEX = 16
_SAFE_ASCII = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.")
_RAW_EXTENSION = re.compile(rb"\.[A-Za-z0-9]{1,8}\Z")
_FLAC_EXTENSIONS = {b".wav": ".flac", b".WAV": ".FLAC"}

Kind = Literal["flac", "raw", "zstd"]
_CODEC_EXTENSIONS = (".flac", ".zst")


def _safe(ch: str) -> bool:
    if ch in _SAFE_ASCII:
        return True
    return ord(ch) > 0x7F and unicodedata.category(ch)[0] in "LNM"  # surrogates (Cs) are not


def _split(raw: bytes, kind: Kind) -> tuple[bytes, str, bool]:
    """(base, extension of the key, whether the mapping already lost something)."""
    if kind == "flac":
        ext = _FLAC_EXTENSIONS.get(raw[-4:])
        return (raw[:-4], ext, False) if ext else (raw, ".flac", True)
    if kind == "zstd":
        return raw, ".zst", False
    found = _RAW_EXTENSION.search(raw)
    if found is None or found.start() == 0:
        return raw, "", False
    ext = found.group().decode("ascii")
    return raw[: found.start()], ext, ext.lower() in _CODEC_EXTENSIONS


def _cut(text: str, limit: int) -> str:
    """``text`` cut to at most ``limit`` UTF-8 bytes, at a character boundary."""
    data = text.encode("utf-8")
    return text if len(data) <= limit else data[:limit].decode("utf-8", "ignore")


def key_name(raw: bytes, kind: Kind, room: int = MAX_NAME_BYTES + len(MARK) + HASH_HEX + 9) -> str:
    """The last segment of the key for the file name ``raw``, at most ``room`` UTF-8 bytes."""
    base, ext, changed = _split(raw, kind)
    text = base.decode("utf-8", "surrogateescape")
    clean = "".join(ch if _safe(ch) else "_" for ch in unicodedata.normalize("NFC", text))
    if clean and (clean[0] in ".-" or unicodedata.category(clean[0])[0] == "M"):
        clean = "_" + clean[1:]
    limit = min(MAX_NAME_BYTES, room - len(MARK) - HASH_HEX - len(ext))
    if limit < 1:
        raise ValueError(f"no room left for the recording's name in a {MAX_KEY_BYTES}-byte key")
    if not changed and clean == text and clean and MARK not in clean and len(clean.encode("utf-8")) <= limit:
        return clean + ext
    digest = hashlib.sha256(kind.encode() + b"\0" + raw).hexdigest()[:HASH_HEX]
    return _cut(clean, limit) + MARK + digest + ext


def object_key_for(directory: str, raw: bytes, kind: Kind) -> str:
    """``directory/`` + the key name; the whole key stays within S3's 1024 bytes."""
    head = f"{directory}/" if directory else ""
    return head + key_name(raw, kind, MAX_KEY_BYTES - len(head.encode("utf-8")))
