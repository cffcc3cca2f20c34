"""The recorder's own metadata from a WAV's non-audio chunks, and when the recording was made (pure).

Input: the chunks as ``(id, body)`` pairs (``chunks_from_pieces`` turns the RIFF pieces a FLAC object carries
in its ``riff`` blocks into them; ``chunks_from_riff`` does the same for the bytes at the start of a WAV), the
file name, and its modification time. Output: ``RecorderMetadata``, bounded whatever the input (metadata is
untrusted: text fields are cut, keys counted, XML parsed without a DTD), and never an exception.

Read here:
    ``bext``        Broadcast WAV: description, originator, originator reference, origination date + time,
                    time reference (samples since midnight), coding history
    ``guan``        GUANO (bat/bioacoustics recorders): ``key: value`` lines, ``Timestamp`` in ISO 8601
    ``iXML``        iXML (field recorders): project/scene/take/note and the ``BEXT`` copy of the origination
    ``LIST``/INFO   ICMT, ICRD, IART, INAM, ISFT, ... (text)

``recorded_at`` comes from, in this order: ``bext`` origination date/time, GUANO ``Timestamp``, iXML
origination date/time, a file-name pattern (``FILENAME_PATTERNS``), the modification time. Times without a
zone (``bext`` and iXML never carry one; a GUANO timestamp may omit it; recorders write local time or UTC as
configured) are taken as UTC: the controller cannot know the recorder's zone.
"""

from __future__ import annotations

import re
import struct
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from xml.parsers import expat

__all__ = [
    "FILENAME_PATTERNS",
    "RecorderMetadata",
    "chunks_from_pieces",
    "chunks_from_riff",
    "extract",
    "name_timestamp",
]

#: a text value is cut to this many characters (coding history and notes to ``MAX_LONG_TEXT``)
MAX_TEXT = 256
MAX_LONG_TEXT = 1024
#: keys kept per section (GUANO, iXML, INFO)
MAX_KEYS = 48
MAX_KEY = 64
#: a metadata chunk larger than this is not parsed (only its presence is noted)
MAX_CHUNK = 256 * 1024
#: chunks read from a list (a RIFF file has few; a hostile one could have thousands of tiny ones)
MAX_CHUNKS = 256
#: a time outside these years is not believed (unset fields, "0000-00-00", a clock that never was set)
MIN_YEAR, MAX_YEAR = 1980, 2199

Chunk = tuple[bytes, bytes]
SOURCES = ("bext", "guano", "ixml", "filename", "mtime")


@dataclass(frozen=True)
class RecorderMetadata:
    """``fields``: JSON-ready sections (``bext``, ``guano``, ``ixml``, ``info``) of bounded text;
    ``recorded_at`` (UTC) and ``source`` (one of ``SOURCES``, or "" when nothing gave a time)."""

    fields: dict[str, dict[str, Any]] = field(default_factory=dict)
    recorded_at: datetime | None = None
    source: str = ""


def _text(raw: bytes | str, limit: int = MAX_TEXT) -> str:
    text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else raw
    text = text.replace("\x00", " ").strip()
    return "".join(ch if ch.isprintable() or ch in "\n\t" else " " for ch in text[:limit])


def _plausible(at: datetime) -> datetime | None:
    at = at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)
    return at if MIN_YEAR <= at.year <= MAX_YEAR else None


# --- chunk lists --------------------------------------------------------------------------------


def _walk(data: bytes, start: int) -> list[Chunk]:
    chunks: list[Chunk] = []
    pos = start
    while pos + 8 <= len(data) and len(chunks) < MAX_CHUNKS:
        cid, size = data[pos : pos + 4], struct.unpack_from("<I", data, pos + 4)[0]
        chunks.append((cid, data[pos + 8 : pos + 8 + min(size, MAX_CHUNK)] if cid != b"data" else b""))
        pos += 8 + size + (size & 1)
    return chunks


def chunks_from_riff(data: bytes) -> list[Chunk]:
    """The chunks in the first bytes of a WAV (``RIFF....WAVE`` + chunks; a chunk cut off by the end of
    ``data`` is kept cut off, the ``data`` chunk's body is never included). Not a WAV: no chunks."""
    if len(data) < 12 or data[:4] not in (b"RIFF", b"RF64") or data[8:12] != b"WAVE":
        return []
    return _walk(data, 12)


def chunks_from_pieces(pieces: Sequence[bytes]) -> list[Chunk]:
    """The chunks of the RIFF pieces of a FLAC object (``flacmeta.ParsedHeader.foreign``): the first piece
    is ``RIFF....WAVE``, every other one a whole chunk (for ``data`` its header only)."""
    chunks: list[Chunk] = []
    for piece in pieces[:MAX_CHUNKS]:
        if piece[:4] in (b"RIFF", b"RF64") and piece[8:12] == b"WAVE":
            chunks.extend(_walk(piece, 12))
        else:
            chunks.extend(_walk(piece, 0)[:1])
    return chunks[:MAX_CHUNKS]


# --- bext ---------------------------------------------------------------------------------------

_BEXT = struct.Struct("<256s32s32s10s8sII")  # description .. time reference (low, high)
_DATE = re.compile(r"(\d{4})\D?(\d{2})\D?(\d{2})")
_TIME = re.compile(r"(\d{2})\D?(\d{2})\D?(\d{2})")


def _date_time(date: str, time: str) -> datetime | None:
    """``yyyy-mm-dd`` + ``hh:mm:ss`` with any separators (EBU Tech 3285 allows ``-_:. ``)."""
    d, t = _DATE.fullmatch(date.strip()), _TIME.fullmatch(time.strip() or "00:00:00")
    if d is None or t is None:
        return None
    year, month, day = (int(x) for x in d.groups())
    hour, minute, second = (int(x) for x in t.groups())
    try:
        return _plausible(datetime(year, month, day, hour, minute, second))
    except ValueError:
        return None


def parse_bext(body: bytes) -> tuple[dict[str, Any], datetime | None]:
    if len(body) < _BEXT.size:
        return {"error": f"bext chunk too short ({len(body)} bytes)"}, None
    desc, originator, reference, date, time, low, high = _BEXT.unpack_from(body)
    fields: dict[str, Any] = {
        "description": _text(desc),
        "originator": _text(originator),
        "originator_reference": _text(reference),
        "origination_date": _text(date),
        "origination_time": _text(time),
        "time_reference": (high << 32) | low,
    }
    history = body[602:] if len(body) > 602 else b""  # after version, UMID, loudness and 180 reserved bytes
    if history.strip(b"\0 \r\n"):
        fields["coding_history"] = _text(history, MAX_LONG_TEXT)
    return fields, _date_time(fields["origination_date"], fields["origination_time"])


# --- GUANO ----------------------------------------------------------------------------------------


def parse_timestamp(value: str) -> datetime | None:
    """ISO 8601 with or without an offset (``Z`` included); without one, taken as UTC."""
    try:
        return _plausible(datetime.fromisoformat(value.strip()))
    except (ValueError, OverflowError):
        return None


def parse_guano(body: bytes) -> tuple[dict[str, Any], datetime | None]:
    fields: dict[str, Any] = {}
    for line in body.decode("utf-8", "replace").splitlines():
        key, sep, value = line.partition(":")
        key = _text(key, MAX_KEY)
        if not sep or not key or key in fields:
            continue
        if len(fields) >= MAX_KEYS:
            fields["truncated"] = True
            break
        fields[key] = _text(value)
    stamp = fields.get("Timestamp")
    return fields, parse_timestamp(stamp) if isinstance(stamp, str) else None


# --- iXML -----------------------------------------------------------------------------------------

_IXML_KEYS = ("PROJECT", "SCENE", "TAKE", "TAPE", "NOTE", "CIRCLED", "FILE_UID", "UBITS")
_IXML_BEXT = ("BWF_DESCRIPTION", "BWF_ORIGINATOR", "BWF_ORIGINATOR_REFERENCE", "BWF_ORIGINATION_DATE",
              "BWF_ORIGINATION_TIME")  # fmt: skip


class UnsafeXml(ValueError):
    pass


def _refuse(*_args: object) -> Any:
    raise UnsafeXml("XML with a DTD, entities or processing of external references is not read")


def safe_xml(body: bytes) -> ET.Element:
    """Parse XML refusing any DTD (so no entity can be declared, let alone expanded, and nothing external is
    fetched); an undeclared entity is an error. Raises ``UnsafeXml`` or ``expat.ExpatError``."""
    builder = ET.TreeBuilder()
    parser = expat.ParserCreate()
    parser.StartDoctypeDeclHandler = _refuse
    parser.EntityDeclHandler = _refuse
    parser.ExternalEntityRefHandler = _refuse
    parser.SetParamEntityParsing(expat.XML_PARAM_ENTITY_PARSING_NEVER)
    parser.StartElementHandler = builder.start
    parser.EndElementHandler = builder.end
    parser.CharacterDataHandler = builder.data
    parser.Parse(body, True)
    return builder.close()


def _find_text(root: ET.Element, tag: str) -> str:
    found = root.find(f".//{tag}")
    return _text(found.text or "", MAX_LONG_TEXT if tag == "NOTE" else MAX_TEXT) if found is not None else ""


def parse_ixml(body: bytes) -> tuple[dict[str, Any], datetime | None]:
    root = safe_xml(body.rstrip(b"\0 \r\n"))
    fields: dict[str, Any] = {}
    for tag in (*_IXML_KEYS, *_IXML_BEXT):
        value = _find_text(root, tag)
        if value:
            fields[tag.lower()] = value
    at = _date_time(fields.get("bwf_origination_date", ""), fields.get("bwf_origination_time", ""))
    return fields, at


# --- LIST/INFO ------------------------------------------------------------------------------------


def parse_info(body: bytes) -> tuple[dict[str, Any], datetime | None]:
    if body[:4] != b"INFO":
        return {}, None
    fields: dict[str, Any] = {}
    for cid, value in _walk(body, 4):
        key = _text(cid, 4)
        if key and key not in fields and len(fields) < MAX_KEYS:
            fields[key] = _text(value)
    return fields, None


# --- file names -----------------------------------------------------------------------------------

_D = r"(?P<Y>\d{4})(?P<m>\d{2})(?P<d>\d{2})"
_T = r"(?P<H>\d{2})(?P<M>\d{2})(?P<S>\d{2})"
#: (name, pattern on the file name without extension), tried in order; every time taken as UTC
FILENAME_PATTERNS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("audiomoth", re.compile(rf"{_D}_{_T}")),  # AudioMoth: 20260528_061500.WAV (UTC)
    ("songmeter", re.compile(rf".+?_{_D}_{_T}(?:_.*)?")),  # Wildlife Acoustics: SM4A_20260528_061500.wav
    (
        "iso",  # 2026-05-28_06-15-00, 2026-05-28T06:15:00, 2026-05-28 06.15.00, with text around it
        re.compile(
            r"(?:.*?\D)?(?P<Y>\d{4})-(?P<m>\d{2})-(?P<d>\d{2})[_T ]"
            r"(?P<H>\d{2})[-:.](?P<M>\d{2})[-:.](?P<S>\d{2})(?:\D.*)?"
        ),
    ),
    ("compact", re.compile(rf"(?:.*?\D)?{_D}T?{_T}(?:\D.*)?")),  # rec20260528T061500, 20260528061500
)


def name_timestamp(name: str) -> tuple[datetime, str] | None:
    """The recording time a well-known file-name pattern spells, and the pattern's name (UTC)."""
    stem = name.rsplit("/", 1)[-1]
    stem = stem[: stem.rfind(".")] if "." in stem[1:] else stem
    for label, pattern in FILENAME_PATTERNS:
        m = pattern.fullmatch(stem[:MAX_TEXT])
        if m is None:
            continue
        year, month, day, hour, minute, second = (int(m.group(g)) for g in "YmdHMS")
        try:
            at = _plausible(datetime(year, month, day, hour, minute, second))
        except ValueError:
            continue
        if at is not None:
            return at, label
    return None


# --- all together ---------------------------------------------------------------------------------

Parser = Callable[[bytes], tuple[dict[str, Any], datetime | None]]
#: chunk id → (section, parser); the section order is the ``recorded_at`` order
PARSERS: dict[bytes, tuple[str, Parser]] = {
    b"bext": ("bext", parse_bext),
    b"guan": ("guano", parse_guano),
    b"iXML": ("ixml", parse_ixml),
    b"LIST": ("info", parse_info),
}


def _sections(chunks: Iterable[Chunk]) -> tuple[dict[str, dict[str, Any]], dict[str, datetime]]:
    fields: dict[str, dict[str, Any]] = {}
    times: dict[str, datetime] = {}
    for cid, body in list(chunks)[:MAX_CHUNKS]:
        entry = PARSERS.get(bytes(cid))
        if entry is None:
            continue
        section, parse = entry
        if section in fields and section != "info":
            continue  # the first chunk of a kind counts
        if len(body) > MAX_CHUNK:
            fields[section] = {"error": f"{section} chunk larger than {MAX_CHUNK} bytes: not read"}
            continue
        try:
            values, at = parse(bytes(body))
        except Exception as exc:  # untrusted bytes: say what was wrong, keep the other sections
            values, at = {"error": _text(f"{type(exc).__name__}: {exc}")}, None
        if values:
            fields.setdefault(section, {}).update(values)
        if at is not None:
            times.setdefault(section, at)
    return fields, times


def extract(chunks: Iterable[Chunk], *, file_name: str = "", mtime: datetime | None = None) -> RecorderMetadata:
    """Everything above from one recording. Never raises on any chunk bytes or name."""
    fields, times = _sections(chunks)
    for source in ("bext", "guano", "ixml"):
        if source in times:
            return RecorderMetadata(fields, times[source], source)
    named = name_timestamp(file_name)
    if named is not None:
        fields["filename"] = {"pattern": named[1]}
        return RecorderMetadata(fields, named[0], "filename")
    if mtime is not None:
        return RecorderMetadata(fields, mtime.astimezone(UTC) if mtime.tzinfo else mtime.replace(tzinfo=UTC), "mtime")
    return RecorderMetadata(fields, None, "")
