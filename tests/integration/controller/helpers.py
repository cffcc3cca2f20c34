"""What the controller's integration tests share: the types of the ``start_controller`` and ``make_agent``
fixtures (conftest.py), unique names, an agent's stored row and events."""

from __future__ import annotations

import uuid
from collections.abc import Callable

from sqlmodel import Session

from controller.service.app import Controller
from controller.store import repo
from controller.store.models import Agent
from tests.integration.controller.fakes import FakeAgent

StartController = Callable[..., Controller]
MakeAgent = Callable[..., FakeAgent]


def unique(prefix: str) -> str:
    """``prefix`` with a random suffix: a name no other test (or earlier run on the shared broker) uses."""
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def agent_row(controller: Controller, agent_id: str) -> Agent | None:
    """The agent's row as the controller stored it (None: not stored yet)."""
    with Session(controller.engine) as session:
        return repo.get_agent(session, agent_id)


def files_stored(controller: Controller, agent_id: str) -> list[str]:
    """The file names of the agent's stored events (its last 1000), sorted."""
    with Session(controller.engine) as session:
        return sorted(e.file for e in repo.recent_events(session, agent_id=agent_id, limit=1000))


def stored_agent(controller: Controller, agent_id: str) -> Agent:
    """The agent's row, which must be stored by now."""
    row = agent_row(controller, agent_id)
    assert row is not None, f"agent {agent_id} is not stored"
    return row
