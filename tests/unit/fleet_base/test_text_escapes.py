"""``fleet_protocol.bounds.clean_text`` and ``fleet_base.filenames.safe_text`` side by side. Both make valid UTF-8 of a
``str`` that may carry undecodable bytes (``surrogateescape``), but they are not one function with options: the
table pins where they differ, so a change that merges them shows here as a changed output."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fleet_base.filenames import safe_text
from fleet_protocol.bounds import clean_text


@pytest.mark.parametrize(
    ("text", "clean", "safe"),
    [
        ("owl.wav", "owl.wav", "owl.wav"),
        ("caf\udcc3\udca9", "café", "caf\\xc3\\xa9"),  # escaped bytes that form UTF-8: joined again / each shown
        ("a\udcffb", "a\\xffb", "a\\xffb"),  # the one shared rule: a lone undecodable byte is \xNN
        ("a\x00b", "a\\x00b", "a\\u0000b"),  # NUL
        ("a\nb\u202e", "a\nb\u202e", "a\\u000ab\\u202e"),  # controls and bidi overrides: kept / escaped
        ("x\ud800\udcff", "x\\ud800\\udcff", "x\\ud800\\xff"),  # a lone high surrogate: the whole text backslashed
        ("back\\slash", "back\\slash", "back\\slash"),
    ],
)
def test_the_two_escapes_differ_where_the_table_says(text: str, clean: str, safe: str) -> None:
    assert clean_text(text) == clean
    assert safe_text(text) == safe


@given(st.text(alphabet=st.characters(blacklist_categories=("Cc", "Cf", "Co", "Cn", "Cs", "Zl", "Zp"))))
def test_printable_text_passes_both_unchanged(text: str) -> None:
    assert clean_text(text) == safe_text(text) == text
