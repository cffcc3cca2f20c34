import pytest
from hypothesis import given
from hypothesis import strategies as st

from edge_agent.engine.partsize import ObjectTooLarge, PartPlan, plan_parts
from fleet_protocol.assignment import MAX_PART_SIZE, MAX_PARTS, MIN_PART_SIZE, MiB

GiB = 1024 * MiB


@pytest.mark.parametrize(
    ("requested", "bound", "header", "expected"),
    [
        # held part 1 and part 2 (the first sent) as small as S3 allows, the rest at the requested size
        (8 * MiB, 100 * MiB, 42, PartPlan(first=5 * MiB, size=8 * MiB, held=True, second=5 * MiB)),
        (5 * MiB, 100 * MiB, 42, PartPlan(first=5 * MiB, size=5 * MiB, held=True, second=5 * MiB)),
        (MAX_PART_SIZE, 100 * MiB, 0, PartPlan(MAX_PART_SIZE, MAX_PART_SIZE, False, MAX_PART_SIZE)),
        (8 * MiB, 100 * MiB, 0, PartPlan(first=8 * MiB, size=8 * MiB, held=False, second=8 * MiB)),  # raw
        (8 * MiB + 1, 10 * MiB, 0, PartPlan(first=9 * MiB, size=9 * MiB, held=False, second=9 * MiB)),  # whole MiB
        (5 * MiB, 100 * GiB, 42, PartPlan(5 * MiB, 11 * MiB, True, 5 * MiB)),  # grown to fit 10,000
        (16 * MiB, 2 * GiB, 42, PartPlan(first=5 * MiB, size=16 * MiB, held=True, second=5 * MiB)),
        (8 * MiB, 100 * MiB, 6 * MiB, PartPlan(7 * MiB, 8 * MiB, True, 5 * MiB)),  # big header: part 1 bigger
    ],
)
def test_plan_table(requested: int, bound: int, header: int, expected: PartPlan) -> None:
    assert plan_parts(requested, bound, header) == expected


def test_too_large() -> None:
    with pytest.raises(ObjectTooLarge):
        plan_parts(8 * MiB, MAX_PARTS * MAX_PART_SIZE, 42)


@pytest.mark.parametrize(
    ("bad", "match"),
    [
        ((0, 1, 0), "part_size must be"),
        ((MIN_PART_SIZE - 1, 1, 0), "part_size must be"),  # the assignment's value is always a valid size
        ((MAX_PART_SIZE + 1, 1, 0), "part_size must be"),
        ((MIN_PART_SIZE, -1, 0), "bad part plan"),
        ((MIN_PART_SIZE, 1, -1), "bad part plan"),
    ],
)
def test_bad_input(bad: tuple[int, int, int], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        plan_parts(*bad)


@given(
    requested=st.integers(MIN_PART_SIZE, MAX_PART_SIZE),
    bound=st.integers(0, 40_000 * GiB),
    header=st.integers(0, 20 * MiB),
)
def test_plan_properties(requested: int, bound: int, header: int) -> None:
    try:
        plan = plan_parts(requested, bound, header)
    except ObjectTooLarge:
        assert bound > MAX_PARTS * MIN_PART_SIZE
        return
    assert plan.held == (header > 0)
    assert MIN_PART_SIZE <= plan.first <= MAX_PART_SIZE
    assert MIN_PART_SIZE <= plan.size <= MAX_PART_SIZE
    assert plan.size % MiB == 0
    assert plan.first % MiB == 0
    assert plan.size >= min(requested, MAX_PART_SIZE)
    if plan.held:
        assert plan.first > header
        assert plan.first <= max(MIN_PART_SIZE, header + 2 * MiB)  # part 1 is held: kept small
        assert plan.second == MIN_PART_SIZE  # part 2 is the first sent: the link's first bytes come soon
    else:
        assert plan.first == plan.second == plan.size  # raw: every part but the last alike
    assert [plan.part_size(n) for n in (1, 2, 3)] == [plan.first, plan.second, plan.size]
    # an object 5 % bigger than its bound still fits in 10,000 parts
    assert plan.capacity() >= bound * 21 // 20


def test_a_plan_journaled_before_part_2_had_its_own_size_keeps_its_sizes() -> None:
    old = PartPlan(first=5 * MiB, size=16 * MiB, held=True)  # what an older journal's JSON gives
    assert [old.part_size(n) for n in (1, 2, 3)] == [5 * MiB, 16 * MiB, 16 * MiB]
    assert old.capacity() == 5 * MiB + (MAX_PARTS - 1) * 16 * MiB
