"""Object keys from arbitrary file names (fleet_audio/objectkey.py): total, valid UTF-8, bounded,
S3-safe and collision-free."""

import re
import unicodedata

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fleet_audio.objectkey import MAX_KEY_BYTES, Kind, key_name, object_key_for
from tests.oddnames import ODD_NAMES

KINDS: tuple[Kind, ...] = ("flac", "raw")
DIRECTORY = "recordings/pi-garden-01/2026/05/28"
LONG_DIRECTORY = "p" * 700 + "/" + "a" * 64 + "/2026/05/28"


def safe_segment(segment: str) -> bool:
    """ASCII letters, digits, ``-_.`` (S3's safe characters) and non-ASCII letters, digits and marks in NFC;
    never starting with ``.``, ``-`` or a combining mark."""
    if not segment or segment[0] in ".-" or unicodedata.category(segment[0])[0] == "M":
        return False
    if unicodedata.normalize("NFC", segment) != segment:
        return False
    return all(
        (ch.isascii() and (ch.isalnum() or ch in "-_.")) or (not ch.isascii() and unicodedata.category(ch)[0] in "LNM")
        for ch in segment
    )


names = st.one_of(
    st.binary(min_size=0, max_size=300),
    st.text(min_size=0, max_size=150).map(lambda t: t.encode("utf-8", "surrogatepass")),
    st.sampled_from(list(ODD_NAMES.values())),
    # near-misses of readable names: the cases most likely to collide
    st.tuples(
        st.sampled_from(["a", "a_", "a__", "_a", ".a", "-a", "a b", "a?"]),
        st.sampled_from([".wav", ".WAV", ".Wav", ".flac", ".FLAC", "", ".wav.flac", "__0123456789abcdef.flac"]),
    ).map(lambda t: (t[0] + t[1]).encode()),
)


@pytest.mark.parametrize(
    ("raw", "kind", "key"),
    [
        (b"dawn.wav", "flac", "dawn.flac"),
        (b"dawn.wav", "raw", "dawn.wav"),
        (b"DAWN.WAV", "flac", "DAWN.FLAC"),
        (b"2026-05-28_05.30.00.wav", "flac", "2026-05-28_05.30.00.flac"),
        ("Großer Garten.wav".encode(), "flac", "Großer_Garten__{h}.flac"),
        ("Großer_Garten.wav".encode(), "flac", "Großer_Garten.flac"),
        (b"rec\xff\xfe.wav", "flac", "rec____{h}.flac"),
        (b"-rf.wav", "flac", "_rf__{h}.flac"),
        (b"notes.txt", "raw", "notes.txt"),
        (b"dawn.Wav", "flac", "dawn.Wav__{h}.flac"),
        (b"sneaky.flac", "raw", "sneaky__{h}.flac"),  # would pass for the FLAC key of sneaky.wav
        (b"a__b.wav", "flac", "a__b__{h}.flac"),
        (b"..wav", "flac", "___{h}.flac"),
    ],
)
def test_key_name_table(raw, kind, key):
    got = key_name(raw, kind)
    pattern = re.escape(key).replace(re.escape("{h}"), "[0-9a-f]{16}")
    assert re.fullmatch(pattern, got), got


@pytest.mark.parametrize("directory", [DIRECTORY, LONG_DIRECTORY, ""])
@given(raw=names, kind=st.sampled_from(KINDS))
def test_the_key_is_total_valid_utf8_bounded_and_safe(directory, raw, kind):
    key = object_key_for(directory, raw, kind)
    data = key.encode("utf-8")  # strict: valid UTF-8, no surrogates
    assert len(data) <= MAX_KEY_BYTES
    assert key.startswith(f"{directory}/" if directory else "")
    segment = key[len(directory) + 1 :] if directory else key
    assert "/" not in segment
    assert segment not in ("", ".", "..")
    assert safe_segment(segment), segment


@given(a=names, b=names, kind_a=st.sampled_from(KINDS), kind_b=st.sampled_from(KINDS))
def test_different_names_never_share_a_key(a, b, kind_a, kind_b):
    for directory in (DIRECTORY, LONG_DIRECTORY):
        same = object_key_for(directory, a, kind_a) == object_key_for(directory, b, kind_b)
        assert same == ((a, kind_a) == (b, kind_b))


@given(st.lists(names, min_size=2, max_size=40, unique=True))
def test_a_whole_spool_gets_distinct_keys(raws):
    for kind in KINDS:
        assert len({key_name(r, kind) for r in raws}) == len(raws)


def test_odd_names_all_get_distinct_keys_and_nfc_nfd_stay_apart():
    keys = {key_name(raw, "flac") for raw in ODD_NAMES.values()}
    assert len(keys) == len(ODD_NAMES)
    assert key_name(ODD_NAMES["NFC"], "flac") == "café.flac"
    assert key_name(ODD_NAMES["NFD"], "flac").startswith("café__")


def test_a_prefix_that_leaves_no_room_is_a_clear_error():
    with pytest.raises(ValueError, match="no room"):
        object_key_for("p" * 1010, b"dawn.wav", "flac")
