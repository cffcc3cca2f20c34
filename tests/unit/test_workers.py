"""How many parallel workers ``-n auto`` starts (tests/workers.py)."""

from __future__ import annotations

import pytest

from tests.workers import WORKERS, workers_for

DEFAULT = "not bench and not slow"


@pytest.mark.parametrize(
    ("markexpr", "args", "expected"),
    [
        (DEFAULT, ["tests"], WORKERS),
        (DEFAULT, ["tests/integration/controller", "tests/integration/dashboard"], WORKERS),
        ("integration", ["tests"], WORKERS),
        ("bench", ["tests/bench"], 0),
        ("slow", ["tests"], 0),
        ("bench and not slow", ["tests/bench/test_scale_bench.py", "tests/bench/test_plan_bench.py"], 0),
        (DEFAULT, ["tests/unit/test_locks.py"], 0),
        (DEFAULT, ["tests/unit/test_locks.py::test_every_pin_carries_hashes"], 0),
    ],
)
def test_the_default_run_is_parallel_and_benchmarks_and_single_files_are_not(
    markexpr: str, args: list[str], expected: int
) -> None:
    assert workers_for(markexpr, args, {}) == expected


def test_the_environment_overrides_the_count() -> None:
    assert workers_for(DEFAULT, ["tests"], {"PYTEST_XDIST_AUTO_NUM_WORKERS": "3"}) == 3
    assert workers_for("bench", ["tests/bench"], {"PYTEST_XDIST_AUTO_NUM_WORKERS": "1"}) == 1
