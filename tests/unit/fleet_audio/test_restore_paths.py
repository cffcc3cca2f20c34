"""Keys and local files around restore (fleet_audio/restore.py): which keys are refused, what name a
restored file gets, and that an existing file is never replaced without --force."""

import errno
import os

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fleet_audio import restore
from fleet_audio.objectkey import object_key_for
from fleet_audio.restore import CannotRestore, check_key, file_name_for, key_problem


@pytest.mark.parametrize(
    ("key", "problem"),
    [
        ("rec/pi-1/2026/05/28/dawn.flac", ""),
        ("rec/pi-1/2026/05/28/café.flac", ""),
        ("", "empty"),
        ("..", "'..'"),
        ("a/../b.flac", "'..'"),
        ("./a.flac", "'.'"),
        ("/a.flac", "starts or ends"),
        ("a/", "starts or ends"),
        ("a//b.flac", "empty"),
        ("a\nb.flac", "control"),
        ("a\x00b", "control"),
        (os.fsdecode(b"a\xffb"), "UTF-8"),
        ("k" * 1025, "1025 bytes"),
    ],
)
def test_key_problems(key, problem):
    got = key_problem(key)
    assert (problem in got) if problem else got == ""


def test_an_invalid_key_is_a_cannot_restore_with_a_printable_message():
    with pytest.raises(CannotRestore, match=r"invalid key 'a\\nb': it holds control characters"):
        check_key("a\nb")


@given(st.binary(max_size=300), st.sampled_from(["flac", "raw"]))
def test_every_key_edgefleet_writes_is_accepted(raw, kind):
    assert key_problem(object_key_for("rec/pi-1/2026/05/28", raw, kind)) == ""


@pytest.mark.parametrize(
    ("key", "as_stored", "name"),
    [
        ("p/a/dawn.flac", False, "dawn.wav"),
        ("p/a/DAWN.FLAC", False, "DAWN.WAV"),
        ("p/a/notes.txt", False, "notes.txt"),
        ("p/a/dawn.flac", True, "dawn.flac"),
        ("p/a/.flac", False, ".flac"),
        ("dawn.flac", False, "dawn.wav"),
    ],
)
def test_file_name_for(key, as_stored, name):
    assert file_name_for(key, as_stored) == name


def test_without_hard_links_a_file_that_appeared_meanwhile_is_still_not_replaced(tmp_path, monkeypatch):
    def no_links(*_args):
        raise OSError(errno.EPERM, "Operation not permitted")

    monkeypatch.setattr(os, "link", no_links)  # the os module restore links with
    tmp = tmp_path / "tmp"
    tmp.write_bytes(b"new")
    target = tmp_path / "out.wav"
    restore._move_into_place(str(tmp), target, force=False)  # falls back to a rename
    assert target.read_bytes() == b"new"
    tmp.write_bytes(b"newer")
    with pytest.raises(CannotRestore, match="exists"):
        restore._move_into_place(str(tmp), target, force=False)
    assert target.read_bytes() == b"new"
    restore._move_into_place(str(tmp), target, force=True)
    assert target.read_bytes() == b"newer"


def test_with_hard_links_a_file_that_appeared_meanwhile_is_not_replaced(tmp_path):
    tmp = tmp_path / "tmp"
    tmp.write_bytes(b"new")
    target = tmp_path / "out.wav"
    target.write_bytes(b"appeared after the first check")
    with pytest.raises(CannotRestore, match="exists"):
        restore._move_into_place(str(tmp), target, force=False)
    assert target.read_bytes() == b"appeared after the first check"
