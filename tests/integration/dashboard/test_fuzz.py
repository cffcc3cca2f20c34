"""Property-based fuzzing of the JSON API from its own OpenAPI (schemathesis) against the real app and database.

Logged in as an operator and as a viewer (each with the session's CSRF token, so changes get past the
token check and reach the validation behind it), over a seeded fleet on SQLite and PostgreSQL, every
operation gets generated valid and invalid requests. No answer may be a server error, and every answer
must match what the schema says (status codes, content types, headers, bodies); an operation that declares
the session cookie must refuse a request without it or with a wrong one. ``/api/stream`` never
ends, so it is left to tests/integration/dashboard/test_stream.py. The number of examples is bounded
(``EXAMPLES`` per operation and user, no example database) so the whole run stays well under two minutes.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.core.result import Ok
from schemathesis.schemas import APIOperation
from sqlalchemy import Engine

from dashboard.app import create_app
from dashboard.auth import SESSION_COOKIE
from dashboard.config import parse_config
from tests.integration.dashboard.conftest import login
from tests.integration.dashboard.seed import AgentSpec, MiB, config_data, put_agents, put_event, put_history

pytestmark = [pytest.mark.integration, pytest.mark.timeout(240)]

#: an operation of an OpenAPI schema; schemathesis's own signatures leave its type parameters open
Operation = APIOperation[Any, Any, Any, Any]
EXAMPLES = 30  # per operation and user; 150 ran clean several times locally (~80 s per run)


@pytest.fixture
def seeded(engine: Engine) -> Engine:
    now = datetime.now(UTC)
    fleet = [AgentSpec("pi-01"), AgentSpec("pi-02", site="barn", temperature_c=81.0, throttled=0x4)]
    put_agents(engine, fleet, now)
    put_history(engine, fleet[0], samples=30, every=timedelta(minutes=1), end=now)
    put_event(engine, "pi-01", "upload_completed", file="a.wav", original_bytes=10 * MiB, stored_bytes=6 * MiB)
    put_event(engine, "pi-02", "file_rejected", file="b.wav", reason="not a WAV file")
    return engine


def strategy(operation: Operation, cookie: str) -> st.SearchStrategy[schemathesis.Case[Operation]]:
    """Valid and invalid requests with the session cookie (schemathesis also tries them without it and with a
    wrong one: ``ignored_auth``); where the path names an agent, also ones for an agent that exists."""
    modes = [GenerationMode.POSITIVE, GenerationMode.NEGATIVE]
    cookies = {SESSION_COOKIE: cookie}
    options = [operation.as_strategy(mode, cookies=cookies) for mode in modes]
    if "{agent_id}" in operation.path:
        fixed = {"agent_id": "pi-01"}
        options += [operation.as_strategy(mode, cookies=cookies, path_parameters=fixed) for mode in modes]
    return st.one_of(options)


@pytest.mark.parametrize("user", ["olga", "vic"])
def test_api_never_fails_and_conforms(seeded: Engine, database_url: str, user: str) -> None:
    config = parse_config(config_data(database_url, metrics_cache_s=0, snapshot_max_age_s=0))
    app = create_app(config, engine=seeded)
    with TestClient(app) as client:
        csrf = login(client, user)
        cookie = client.cookies[SESSION_COOKIE]
    schema = schemathesis.openapi.from_asgi("/openapi.json", app).exclude(path="/api/stream")
    assert SESSION_COOKIE in str(schema.raw_schema["components"]["securitySchemes"])
    operations: list[Operation] = []
    for result in schema.get_all_operations():
        assert isinstance(result, Ok), result.err()
        operations.append(result.ok())
    assert len(operations) >= 15

    for operation in operations:

        @given(case=strategy(operation, cookie))
        @settings(
            max_examples=EXAMPLES,
            phases=[Phase.explicit, Phase.generate, Phase.shrink],
            deadline=None,
            suppress_health_check=list(HealthCheck),
            database=None,
        )
        def check(case: schemathesis.Case[Operation]) -> None:
            case.call_and_validate(headers={"X-CSRF-Token": csrf})

        check()
