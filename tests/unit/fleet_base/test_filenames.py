"""File names as bytes: lossless storage in SQLite, safe and reversible display (fleet_base/filenames.py)."""

import os
import sqlite3
import unicodedata

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fleet_base.filenames import display_name, name_from_sql, parse_display_name, safe_text, sql_name
from tests.oddnames import ODD_NAMES

names = st.binary(min_size=1, max_size=300)
_HIDDEN = {"Cc", "Cf", "Co", "Cn", "Cs", "Zl", "Zp"}


@pytest.mark.parametrize(
    ("raw", "shown"),
    [
        (b"dawn.wav", "dawn.wav"),
        (b"rec\xff\xfe.wav", "rec\\xff\\xfe.wav"),
        (b"line\nbreak.wav", "line\\u000abreak.wav"),
        (b"back\\slash.wav", "back\\\\slash.wav"),
        (b"back\\xff.wav", "back\\\\xff.wav"),  # a real backslash-x-f-f is not a byte escape
        ("evil\u202evaw.exe".encode(), "evil\\u202evaw.exe"),
        ("caf\u00e9 vogel.wav".encode(), "caf\u00e9 vogel.wav"),
        (b"\xc2\x85nel", "\\u0085nel"),  # the C1 control NEL (valid UTF-8) is not the byte 0x85
        (b"\x85nel", "\\x85nel"),
    ],
)
def test_display_name_table(raw, shown):
    assert display_name(raw) == shown
    assert display_name(os.fsdecode(raw)) == shown
    assert parse_display_name(shown) == raw


@given(names)
def test_display_name_is_printable_utf8_and_reversible(raw):
    shown = display_name(os.fsdecode(raw))
    shown.encode("utf-8")  # strict: no surrogates
    assert not [ch for ch in shown if unicodedata.category(ch) in _HIDDEN]
    assert parse_display_name(shown) == raw


@given(names, names)
def test_display_name_is_injective(a, b):
    assert (display_name(a) == display_name(b)) == (a == b)


@given(st.text())
def test_safe_text_is_total_and_printable(text):
    shown = safe_text(text)
    shown.encode("utf-8")
    assert not [ch for ch in shown if unicodedata.category(ch) in _HIDDEN]


def test_safe_text_keeps_a_reason_readable():
    reason = os.fsdecode(b"/spool/rec\xff.wav") + ": truncated\n"
    assert safe_text(reason) == "/spool/rec\\xff.wav: truncated\\u000a"


def _table() -> sqlite3.Connection:
    db = sqlite3.connect(":memory:")
    db.execute("CREATE TABLE t (path TEXT PRIMARY KEY, n INTEGER)")
    return db


@given(st.lists(names, unique=True, max_size=20))
def test_sqlite_keeps_every_name_exactly_and_finds_it_again(raws):
    db = _table()
    for i, raw in enumerate(raws):
        db.execute("INSERT INTO t VALUES (?, ?)", (sql_name(os.fsdecode(raw)), i))
    assert sorted(os.fsencode(name_from_sql(r[0])) for r in db.execute("SELECT path FROM t")) == sorted(raws)
    for i, raw in enumerate(raws):
        assert db.execute("SELECT n FROM t WHERE path=?", (sql_name(os.fsdecode(raw)),)).fetchone() == (i,)


def test_utf8_names_stay_text_as_in_older_databases():
    db = _table()
    db.execute("INSERT INTO t VALUES ('/spool/café.wav', 1)")  # as written before names could be bytes
    assert sql_name("/spool/café.wav") == "/spool/café.wav"
    assert db.execute("SELECT n FROM t WHERE path=?", (sql_name("/spool/café.wav"),)).fetchone() == (1,)
    assert isinstance(sql_name(os.fsdecode(ODD_NAMES["not UTF-8"])), bytes)
    # one file, one value: a str with escaped bytes that happen to spell UTF-8 binds like the plain name
    assert sql_name("caf\udcc3\udca9") == sql_name("café") == "café"
