"""File names a careless recorder or a hostile user can put in a spool folder (bytes: what Linux allows)."""

from __future__ import annotations

import os
import unicodedata

ODD_NAMES: dict[str, bytes] = {
    "not UTF-8": b"rec\xff\xfe.wav",
    "255 bytes": b"L" * 251 + b".wav",
    "254 bytes of two-byte letters": "é".encode() * 125 + b".wav",
    "newline": b"line\nbreak.wav",
    "spaces and quotes": b'it\'s a "take" 01.wav',
    "leading dash": b"-rf --all.wav",
    "NFC": unicodedata.normalize("NFC", "café.wav").encode(),
    "NFD": unicodedata.normalize("NFD", "café.wav").encode(),
    "URL characters": b"100%#?&=+;\\.wav",
    "control characters": b"ctrl\x01\x1b[31m\x7f.wav",
    "bidi override": "evil\u202evaw.exe.wav".encode(),
    "upper-case suffix": b"DAWN.WAV",
    "marker in the name": b"a__b.wav",
}


def odd_str(raw: bytes) -> str:
    """The name as ``os.scandir`` gives it."""
    return os.fsdecode(raw)
