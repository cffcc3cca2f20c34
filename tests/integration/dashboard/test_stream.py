"""The live stream (SSE) against a real database: first everything, then only what changed."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from tests.integration.dashboard.conftest import login
from tests.integration.dashboard.seed import AgentSpec, put_agents

pytestmark = pytest.mark.integration


def events(lines: Iterator[str]) -> Iterator[tuple[str, dict[str, Any]]]:
    name, data = "", ""
    for line in lines:
        if line.startswith("event: "):
            name = line.removeprefix("event: ")
        elif line.startswith("data: "):
            data += line.removeprefix("data: ")
        elif line == "" and name:
            yield name, json.loads(data)
            name, data = "", ""


@pytest.mark.timeout(60)
def settle(stream: Iterator[tuple[str, Any]], done: Callable[[dict[str, Any]], bool]) -> tuple[dict[str, Any], Any]:
    """Fleet updates merged until ``done`` holds for one, and the newest agent update among them (None if none
    came yet). The store is written in two commits (the rows, then the controller's alert round): a poll of the
    stream may fall between them, and the alert then comes in the next update."""
    rows: dict[str, Any] = {}
    mine = None
    for _ in range(20):
        name, update = next(stream)
        if name == "agent":
            mine = update
            continue
        rows |= update["rows"]
        if done(update):
            return {**update, "rows": rows}, mine
    raise AssertionError("the stream never showed the change")


def test_stream_sends_changes_and_alerts(app_client: TestClient, engine: Engine) -> None:
    put_agents(engine, [AgentSpec("pi-01"), AgentSpec("pi-02")])
    login(app_client, "vic")
    with app_client.stream("GET", "/api/stream", params={"rows": "true", "agent": "pi-02"}) as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        stream = events(response.iter_lines())
        name, first = next(stream)
        assert name == "fleet"
        assert set(first["rows"]) == {"pi-01", "pi-02"}
        assert 'id="agent-pi-01"' in first["rows"]["pi-01"]
        assert first["alerts"] == []
        name, mine = next(stream)
        assert name == "agent"
        assert mine["agent"]["agent_id"] == "pi-02"

        put_agents(engine, [AgentSpec("pi-02", temperature_c=82.5), AgentSpec("pi-03", site="barn")])
        update, mine = settle(stream, lambda u: bool(u["alerts"]))
        assert set(update["rows"]) == {"pi-02", "pi-03"}
        assert update["order"] == ["pi-01", "pi-02", "pi-03"]
        assert update["matching"] == 3
        assert [(a["agent_id"], a["kind"]) for a in update["alerts"]] == [("pi-02", "critical")]
        assert "82.5 °C ≥ 80 °C hard limit" in update["alerts_html"]
        assert "3 / 3" in update["totals_html"]
        if mine is None:  # it follows the fleet update of the same poll
            name, mine = next(stream)
            assert name == "agent"
        assert mine["agent"]["temperature_c"] == 82.5
        assert "82.5 °C" in mine["facts_html"]

        put_agents(engine, [AgentSpec("pi-01", online=False)])
        update, _ = settle(stream, lambda u: any(a["kind"] == "offline" for a in u["alerts"]))
        assert set(update["rows"]) == {"pi-01"}
        assert ("pi-01", "offline") in [(a["agent_id"], a["kind"]) for a in update["alerts"]]


def test_stream_without_rows_sends_only_totals_and_alerts(app_client: TestClient, engine: Engine) -> None:
    put_agents(engine, [AgentSpec("pi-01")])
    login(app_client, "vic")
    with app_client.stream("GET", "/api/stream") as response:
        name, first = next(events(response.iter_lines()))
        assert name == "fleet"
        assert "rows" not in first
        assert first["count"] == 1
