"""Spool file names are byte strings: how we store them losslessly and show them safely.

Linux allows any bytes but ``/`` and NUL in a file name. Python hands such a name over as a ``str`` in which
every byte that is not valid UTF-8 became a lone surrogate U+DC80..U+DCFF (PEP 383, ``surrogateescape``);
``os.fsencode`` turns it back into the exact bytes. Such a ``str`` cannot be encoded as UTF-8, so it must
never reach SQLite, JSON or an HTTP header as it is. Two representations, both total and lossless:

- **SQLite** (``sql_name`` / ``name_from_sql``): a name that is valid UTF-8 is stored as TEXT, as it always
  was, so older journals and ledgers read the same; any other name is stored as a BLOB of its raw bytes.
  The choice depends on the bytes only, so one file always gets the same value (primary keys, ``WHERE``).
- **Text for people and messages** (``display_name`` / ``parse_display_name``): valid UTF-8, no control or
  invisible characters. A byte that is not UTF-8 becomes ``\\xNN``, a control, format (e.g. the bidi override
  U+202E), line/paragraph separator or unassigned character becomes ``\\uNNNN`` / ``\\UNNNNNNNN``, and a
  backslash becomes ``\\\\``; everything else stays. ``parse_display_name`` gives back the exact bytes.
  ``safe_text`` applies the same escapes to free text (error reasons that quote a path), without the
  backslash doubling: readable, not reversible.
"""

from __future__ import annotations

import os
import re
import unicodedata

__all__ = ["display_name", "name_bytes", "name_from_sql", "parse_display_name", "safe_text", "sql_name"]

_ESCAPED_CATEGORIES = {"Cc", "Cf", "Co", "Cn", "Cs", "Zl", "Zp"}
_ESCAPE_RE = re.compile(r"\\(?:x([0-9a-f]{2})|u([0-9a-f]{4})|U([0-9a-f]{8})|(\\))")


def name_bytes(name: str | bytes) -> bytes:
    """The file name's bytes as the file system has them."""
    return name if isinstance(name, bytes) else os.fsencode(name)


def sql_name(name: str | bytes) -> str | bytes:
    """The value to bind for a file name or path: TEXT when it is valid UTF-8, else a BLOB of its bytes."""
    raw = name_bytes(name)
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw


def name_from_sql(value: str | bytes) -> str:
    """A name as read from SQLite (TEXT or BLOB) → the ``str`` os functions take (surrogate-escaped)."""
    return os.fsdecode(value) if isinstance(value, bytes) else value


def _escape_char(ch: str, escape_backslash: bool) -> str:
    code = ord(ch)
    if 0xDC80 <= code <= 0xDCFF:  # a byte that is not UTF-8, as surrogateescape carries it
        return f"\\x{code - 0xDC00:02x}"
    if ch == "\\":
        return "\\\\" if escape_backslash else ch
    if code < 0x80 and ch.isprintable():
        return ch
    if unicodedata.category(ch) in _ESCAPED_CATEGORIES:
        return f"\\u{code:04x}" if code <= 0xFFFF else f"\\U{code:08x}"
    return ch


def _escape(text: str, escape_backslash: bool) -> str:
    return "".join(_escape_char(ch, escape_backslash) for ch in text)


def display_name(name: str | bytes) -> str:
    """A file name (``str`` from os functions, or bytes) as printable, valid UTF-8 text; reversible."""
    text = name.decode("utf-8", "surrogateescape") if isinstance(name, bytes) else name
    return _escape(text, escape_backslash=True)


def parse_display_name(text: str) -> bytes:
    """The raw bytes of a name written by ``display_name``."""
    out = bytearray()
    pos = 0
    for match in _ESCAPE_RE.finditer(text):
        out += text[pos : match.start()].encode("utf-8")
        byte, short, long, backslash = match.groups()
        if byte is not None:
            out.append(int(byte, 16))
        elif backslash is not None:
            out += b"\\"
        else:
            out += chr(int(short or long, 16)).encode("utf-8", "surrogatepass")
        pos = match.end()
    out += text[pos:].encode("utf-8")
    return bytes(out)


def safe_text(text: str) -> str:
    """Free text that may quote a file name (an error reason) as printable, valid UTF-8; not reversible."""
    return _escape(text, escape_backslash=False)
