"""How many parallel workers ``-n auto`` starts (tests/workers.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.workers import WORKERS, GroupScheduling, workers_for

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


def test_the_ansible_tests_and_a_module_with_a_module_fixture_are_one_unit_each(tmp_path: Path) -> None:
    (tmp_path / "tests").mkdir()
    (tmp_path / "tests" / "test_shared.py").write_text('@pytest.fixture(scope="module")\ndef corpus(): ...\n')
    (tmp_path / "tests" / "test_plain.py").write_text("@pytest.fixture\ndef corpus(): ...\n")
    sched = GroupScheduling.__new__(GroupScheduling)  # _split_scope needs nothing of xdist's state
    sched.root = tmp_path
    assert sched._split_scope("tests/integration/ansible/test_playbook.py::test_a") == "tests/integration/ansible/"
    assert sched._split_scope("tests/integration/ansible/test_pki.py::test_b[x]") == "tests/integration/ansible/"
    assert sched._split_scope("tests/test_shared.py::test_a[1]") == "tests/test_shared.py"
    assert sched._split_scope("tests/test_plain.py::test_a[1]") == "tests/test_plain.py::test_a[1]"
