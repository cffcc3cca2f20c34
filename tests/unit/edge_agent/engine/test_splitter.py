import pytest
from hypothesis import given
from hypothesis import strategies as st

from edge_agent.engine.partsize import PartPlan
from edge_agent.engine.splitter import Part, PartSplitter, TooManyParts


def split(plan: PartPlan, header: bytes, body: bytes, cuts: list[int]) -> tuple[PartSplitter, list[Part]]:
    s = PartSplitter(plan, len(header))
    parts: list[Part] = []
    pos = 0
    for cut in [*sorted(c % (len(body) + 1) for c in cuts), len(body)]:
        parts += list(s.feed(body[pos:cut])) if cut > pos else []
        pos = max(pos, cut)
    parts += list(s.finish(header))
    return s, parts


@given(
    header=st.binary(min_size=0, max_size=6),
    body=st.binary(max_size=200),
    cuts=st.lists(st.integers(0, 10_000), max_size=20),
    first_extra=st.integers(1, 10),
    size=st.integers(1, 30),
    second=st.integers(0, 30),  # 0: a plan journaled before part 2 had its own size (part 2 at ``size``)
)
def test_parts_rebuild_the_object(
    header: bytes, body: bytes, cuts: list[int], first_extra: int, size: int, second: int
) -> None:
    held = bool(header)
    plan = PartPlan(first=len(header) + first_extra if held else size, size=size, held=held, second=second)
    s, parts = split(plan, header, body, cuts)
    numbers = [p.number for p in parts]
    assert sorted(numbers) == list(range(1, len(parts) + 1))
    if held:
        assert numbers[-1] == 1  # part 1 (with the header) goes last
    ordered = sorted(parts, key=lambda p: p.number)
    assert b"".join(p.data for p in ordered) == header + body
    assert [p.offset for p in ordered] == [sum(len(q.data) for q in ordered[:i]) for i in range(len(ordered))]
    for p in ordered[:-1]:
        want = plan.first if p.number == 1 else (second or size) if p.number == 2 else size
        assert len(p.data) == want  # only the last may be short
    assert s.object_size() == len(header) + len(body)


def test_header_must_match() -> None:
    s = PartSplitter(PartPlan(first=10, size=10, held=True), 4)
    list(s.feed(b"abc"))
    with pytest.raises(ValueError, match="header is 2 bytes"):
        list(s.finish(b"xy"))


def test_plan_must_fit_header() -> None:
    with pytest.raises(ValueError, match="does not fit"):
        PartSplitter(PartPlan(first=4, size=10, held=True), 4)
    with pytest.raises(ValueError, match="does not fit"):
        PartSplitter(PartPlan(first=10, size=10, held=False), 4)


def test_too_many_parts(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("edge_agent.engine.splitter.MAX_PARTS", 3)
    s = PartSplitter(PartPlan(first=2, size=2, held=False), 0)
    with pytest.raises(TooManyParts):
        list(s.feed(b"x" * 7))


def test_empty_raw_object_is_one_empty_part() -> None:
    s = PartSplitter(PartPlan(first=5, size=5, held=False), 0)
    parts = list(s.finish(b""))
    assert [(p.number, bytes(p.data)) for p in parts] == [(1, b"")]


def test_feed_after_finish() -> None:
    s = PartSplitter(PartPlan(first=5, size=5, held=False), 0)
    list(s.finish(b""))
    with pytest.raises(ValueError, match="after finish"):
        list(s.feed(b"x"))


def test_part_2_has_its_own_size() -> None:
    s = PartSplitter(PartPlan(first=4, size=6, held=True, second=3), 2)
    parts = [*s.feed(b"0123456789abcdef"), *s.finish(b"HH")]
    assert [(p.number, p.offset, bytes(p.data)) for p in parts] == [
        (2, 4, b"234"),  # part 1 holds the header and the first 2 body bytes
        (3, 7, b"56789a"),
        (4, 13, b"bcdef"),
        (1, 0, b"HH01"),
    ]
