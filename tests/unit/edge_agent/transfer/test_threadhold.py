"""The calling thread's run and run-queue time from a schedstat file (its format; the real file is read in the
integration tests)."""

from __future__ import annotations

from pathlib import Path

import pytest

from edge_agent.transfer.threadhold import held_s


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1500000000 250000000 42\n", 1.75),  # run ns, run-queue ns, timeslices
        ("0 0 1\n", 0.0),
        ("", None),
        ("12 x 3\n", None),
        ("12\n", None),
    ],
)
def test_run_plus_run_queue_seconds(tmp_path: Path, text: str, expected: float | None) -> None:
    path = tmp_path / "schedstat"
    path.write_text(text)
    assert held_s(path) == expected


def test_a_missing_file_is_not_measured(tmp_path: Path) -> None:
    assert held_s(tmp_path / "absent") is None
