"""The rules of one upload (pure): resume decisions, the part ledger, the multipart ETag."""

import hashlib
from collections.abc import Callable

import pytest
from hypothesis import given
from hypothesis import strategies as st

from edge_agent.engine.partsize import PartPlan
from edge_agent.engine.upload import (
    LocalProtocolError,
    PartAction,
    PartLedger,
    ResumeDecision,
    ResumeKind,
    StoredPart,
    UploadRecord,
    UploadSettings,
    decide_resume,
    md5_hex,
    multipart_etag,
)

PLAN = PartPlan(first=5, size=8, held=True)
SETTINGS = UploadSettings("p/a/2026/01/01/x.flac", PLAN, 42, 5, (100, 7, 9))
PARTS = {1: b"header+first", 2: b"second part", 3: b"third"}
MD5 = {n: md5_hex(d) for n, d in PARTS.items()}


def record(settings: UploadSettings = SETTINGS) -> UploadRecord:
    return UploadRecord("uid-1", settings, (StoredPart(2, MD5[2], 11, 5),))


@pytest.mark.parametrize(
    ("rec", "settings", "server", "kind", "reason"),
    [
        (None, SETTINGS, None, ResumeKind.FRESH, "new upload"),
        (record(), SETTINGS, None, ResumeKind.FRESH, "no longer exists"),
        (record(), SETTINGS, [], ResumeKind.RESUME, "resume"),
        (
            record(),
            SETTINGS.__class__(**{**SETTINGS.__dict__, "fingerprint": (100, 8, 9)}),
            [],
            ResumeKind.ABORT_THEN_FRESH,
            "file changed",
        ),
        (
            record(),
            SETTINGS.__class__(**{**SETTINGS.__dict__, "compression_level": 8}),
            [],
            ResumeKind.ABORT_THEN_FRESH,
            "settings changed",
        ),
        (
            record(),
            SETTINGS.__class__(**{**SETTINGS.__dict__, "plan": PartPlan(5, 16, True)}),
            [],
            ResumeKind.ABORT_THEN_FRESH,
            "settings changed",
        ),
    ],
)
def test_decide_resume(
    rec: UploadRecord | None, settings: UploadSettings, server: list[StoredPart] | None, kind: ResumeKind, reason: str
) -> None:
    d = decide_resume(rec, settings, server)
    assert d.kind is kind
    assert reason in d.reason
    if kind is not ResumeKind.FRESH:
        assert d.upload_id == "uid-1"


def test_server_is_the_truth_and_duplicates_count() -> None:
    # SeaweedFS lists a re-uploaded number twice; the journal's own parts do not matter.
    server = [StoredPart(2, '"' + "0" * 32 + '"', 11), StoredPart(2, MD5[2].upper(), 11), StoredPart(3, MD5[3], 5)]
    d = decide_resume(record(), SETTINGS, server)
    assert d.known == {2: frozenset({"0" * 32, MD5[2]}), 3: frozenset({MD5[3]})}
    up = PartLedger.for_decision(d)
    assert up.on_part(2, MD5[2], 11) is PartAction.SKIP
    assert up.on_part(3, MD5[3], 5) is PartAction.SKIP
    assert up.on_part(1, MD5[1], 12) is PartAction.UPLOAD
    assert up.skipped_bytes == 16
    up.body_done()
    assert up.outstanding == 1
    up.on_acked(1, MD5[1])
    assert up.completion() == ((1, MD5[1]), (2, MD5[2]), (3, MD5[3]))


def test_mismatch_restarts() -> None:
    d = decide_resume(record(), SETTINGS, [StoredPart(2, "f" * 32, 11)])
    up = PartLedger.for_decision(d)
    assert up.on_part(2, MD5[2], 11) is PartAction.RESTART
    assert "part 2" in up.restart_reason
    with pytest.raises(LocalProtocolError, match="start over"):
        up.on_part(3, MD5[3], 5)


def test_fresh_ignores_server_parts() -> None:
    up = PartLedger.for_decision(ResumeDecision(ResumeKind.FRESH, upload_id="u", known={2: frozenset({MD5[2]})}))
    assert up.on_part(2, MD5[2], 11) is PartAction.UPLOAD


def test_abort_then_fresh_is_not_a_ledger_input() -> None:
    with pytest.raises(LocalProtocolError):
        PartLedger.for_decision(ResumeDecision(ResumeKind.ABORT_THEN_FRESH, upload_id="u"))


def fresh_run() -> PartLedger:
    up = PartLedger()
    for n in (2, 3, 1):
        assert up.on_part(n, MD5[n], len(PARTS[n])) is PartAction.UPLOAD
    up.body_done()
    for n in (3, 1, 2):
        up.on_acked(n, f'"{MD5[n]}"')
    return up


def test_full_cycle_and_verify() -> None:
    up = fresh_run()
    parts = up.completion()
    assert [n for n, _ in parts] == [1, 2, 3]
    size = sum(len(d) for d in PARTS.values())
    assert up.verify(size + 1, up.expected_etag).startswith("stored size")
    assert up.verify(size, "abc-3").startswith("stored ETag")
    assert up.verify(size, '"' + up.expected_etag + '"') == ""


@pytest.mark.parametrize(
    "misuse",
    [
        lambda up: up.completion(),  # before body_done
        lambda up: up.on_acked(9, MD5[1]),  # unknown part
        lambda up: up.on_acked(2, MD5[1]),  # an ETag that is not the part's MD5
    ],
)
def test_protocol_errors(misuse: Callable[[PartLedger], object]) -> None:
    up = PartLedger()
    up.on_part(2, MD5[2], 11)
    with pytest.raises(LocalProtocolError):
        misuse(up)


def test_produced_twice_gaps_and_after_the_end() -> None:
    up = PartLedger()
    up.on_part(3, MD5[3], 5)
    with pytest.raises(LocalProtocolError):
        up.on_part(3, MD5[3], 5)
    with pytest.raises(LocalProtocolError, match="part 1"):
        up.body_done()
    up.on_part(1, MD5[1], 12)
    with pytest.raises(LocalProtocolError, match="contiguous"):
        up.body_done()
    up.on_part(2, MD5[2], 11)
    up.body_done()
    assert up.body_is_done
    with pytest.raises(LocalProtocolError, match="after the body ended"):
        up.on_part(4, MD5[1], 1)


def test_waiting_for_acks_and_wrong_etag() -> None:
    up = PartLedger()
    up.on_part(1, MD5[1], 12)
    up.body_done()
    with pytest.raises(LocalProtocolError, match="not acknowledged"):
        up.completion()
    with pytest.raises(LocalProtocolError, match="!= MD5"):
        up.on_acked(1, MD5[2])
    up.on_acked(1, MD5[1])
    with pytest.raises(LocalProtocolError, match="unexpected ack"):
        up.on_acked(1, MD5[1])


def test_multipart_etag_known_value() -> None:
    # the S3 rule: md5 of the concatenated binary part md5s, "-", count
    a, b = hashlib.md5(b"a").digest(), hashlib.md5(b"b").digest()
    assert multipart_etag([a.hex(), b.hex()]) == hashlib.md5(a + b).hexdigest() + "-2"


@given(
    parts=st.lists(st.binary(max_size=20), min_size=1, max_size=8, unique=True),
    stored=st.lists(st.booleans(), min_size=8, max_size=8),
    order=st.permutations(range(8)),
)
def test_resume_uploads_exactly_what_the_server_lacks(parts: list[bytes], stored: list[bool], order: list[int]) -> None:
    md5s = {i + 1: md5_hex(p) for i, p in enumerate(parts)}
    server = [StoredPart(n, m, len(parts[n - 1])) for n, m in md5s.items() if stored[n - 1]]
    up = PartLedger.for_decision(decide_resume(record(), SETTINGS, server))
    numbers = [n + 1 for n in order if n < len(parts)]
    uploaded = [n for n in numbers if up.on_part(n, md5s[n], len(parts[n - 1])) is PartAction.UPLOAD]
    assert sorted(uploaded) == [n for n in md5s if not stored[n - 1]]
    up.body_done()
    for n in uploaded:
        up.on_acked(n, md5s[n])
    assert up.completion() == tuple(sorted(md5s.items()))
    assert up.verify(sum(map(len, parts)), multipart_etag(md5s[n] for n in sorted(md5s))) == ""
