from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dashboard.listing import SortKey, StatusFilter, select_rows
from dashboard.readmodel import AgentRow
from tests.unit.dashboard.factories import assignment, row

ROWS = [
    row("b-2", site="north", temperature_c=72.0, backlog_files=5, throughput_bps=10.0, backlog_eta_s=30.0),
    row("a-1", site="south", temperature_c=None, backlog_files=9, online=False, backlog_eta_s=7200.0),
    row(
        "c-3",
        site="north",
        model="Raspberry Pi 5",
        temperature_c=40.0,
        assignment=assignment(paused=True, reason="operator: paused"),
    ),
    row("d-4", site="west", temperature_c=40.0, backlog_files=5, assignment=None),
]


def ids(rows: list[AgentRow]) -> list[str]:
    return [r.agent_id for r in rows]


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        ({}, ["a-1", "b-2", "c-3", "d-4"]),
        ({"sort": SortKey.TEMPERATURE, "descending": True}, ["b-2", "c-3", "d-4", "a-1"]),
        ({"sort": SortKey.TEMPERATURE}, ["a-1", "c-3", "d-4", "b-2"]),
        ({"sort": SortKey.BACKLOG_FILES, "descending": True}, ["a-1", "b-2", "d-4", "c-3"]),
        ({"sort": SortKey.CONCURRENCY}, ["d-4", "a-1", "b-2", "c-3"]),
        ({"sort": SortKey.STATUS}, ["a-1", "b-2", "c-3", "d-4"]),
        ({"sort": SortKey.BACKLOG_ETA, "descending": True}, ["a-1", "b-2", "c-3", "d-4"]),  # unknown last
        ({"sort": SortKey.BACKLOG_ETA}, ["c-3", "d-4", "b-2", "a-1"]),
        ({"query": "NORTH"}, ["b-2", "c-3"]),
        ({"query": "pi 5"}, ["c-3"]),
        ({"query": "operator"}, ["c-3"]),
        ({"query": "  "}, ["a-1", "b-2", "c-3", "d-4"]),
        ({"status": StatusFilter.OFFLINE}, ["a-1"]),
        ({"status": StatusFilter.ONLINE}, ["b-2", "c-3", "d-4"]),
        ({"status": StatusFilter.HOT}, ["b-2"]),
        ({"status": StatusFilter.PAUSED}, ["c-3"]),
        ({"status": StatusFilter.ONLINE, "query": "north", "sort": SortKey.TEMPERATURE}, ["c-3", "b-2"]),
    ],
)
def test_select_rows(kwargs: dict[str, Any], expected: list[str]) -> None:
    assert ids(select_rows(ROWS, **kwargs)) == expected


@given(
    temps=st.lists(st.one_of(st.none(), st.floats(-20, 100)), max_size=30),
    key=st.sampled_from(list(SortKey)),
    desc=st.booleans(),
    status=st.sampled_from(list(StatusFilter)),
)
def test_select_is_a_sorted_subset(temps: list[float | None], key: SortKey, desc: bool, status: StatusFilter) -> None:
    rows = [row(f"pi-{i:02d}", temperature_c=t, online=i % 3 != 0, backlog_files=i % 4) for i, t in enumerate(temps)]
    chosen = select_rows(rows, sort=key, descending=desc, status=status)
    assert set(ids(chosen)) <= set(ids(rows))
    assert len(set(ids(chosen))) == len(chosen)
    again = select_rows(chosen, sort=key, descending=desc)
    assert ids(again) == ids(chosen)  # sorting is stable and total
