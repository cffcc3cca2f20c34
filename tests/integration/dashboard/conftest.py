from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from dashboard.app import create_app
from dashboard.config import parse_config
from tests.integration.dashboard.seed import PASSWORDS, config_data


@pytest.fixture
def app_client(engine: Engine, database_url: str) -> Iterator[TestClient]:
    config = parse_config(config_data(database_url, live_interval_s=0.05, metrics_cache_s=0, snapshot_max_age_s=0))
    with TestClient(create_app(config, engine=engine)) as client:
        yield client


def csrf_in(html: str) -> str:
    """The CSRF token a page carries (its ``csrf-token`` meta tag)."""
    return html.split('name="csrf-token" content="', 1)[1].split('"', 1)[0]


def page_csrf(client: httpx.Client) -> str:
    """The login page's CSRF token, for the login form. ``client``: a ``TestClient`` (an ``httpx.Client``) or an
    ``httpx.Client`` on a running dashboard."""
    return csrf_in(client.get("/login").text)


def login(client: TestClient, user: str) -> str:
    """Log in through the form (with the login page's CSRF token); returns the new session's CSRF token."""
    token = page_csrf(client)
    answer = client.post(
        "/login", data={"username": user, "password": PASSWORDS[user], "csrf_token": token}, follow_redirects=False
    )
    assert answer.status_code == 303, answer.text
    token = client.get("/api/me").json()["csrf_token"]
    assert isinstance(token, str)
    return token
