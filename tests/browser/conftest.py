"""A real dashboard server (uvicorn, in a thread) and a real headless Chromium (Debian's, via Playwright)."""

from __future__ import annotations

import os
import shutil
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import uvicorn
from sqlalchemy import Engine

from controller.store.database import create_all, make_engine
from dashboard.app import create_app
from dashboard.config import parse_config
from edgefleet.localservices.process import free_port
from tests.integration.dashboard.seed import config_data

CHROMIUM = os.environ.get("EDGEFLEET_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
]


@dataclass
class RunningDashboard:
    url: str
    engine: Engine
    database_url: str


@pytest.fixture
def start_dashboard() -> Iterator[Callable[..., RunningDashboard]]:
    """Start the dashboard app under uvicorn on a free loopback port, on the given database (``extra``: more
    dashboard settings, e.g. ``s3``)."""
    running: list[tuple[uvicorn.Server, threading.Thread, Engine]] = []

    def start(database_url: str, **extra: object) -> RunningDashboard:
        engine = make_engine(database_url)
        create_all(engine)
        config = parse_config(config_data(database_url, live_interval_s=0.3, **extra))
        port = free_port()
        app = create_app(config, engine=engine)
        server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
        thread = threading.Thread(target=server.run, name="dashboard-server", daemon=True)
        thread.start()
        running.append((server, thread, engine))
        deadline = time.monotonic() + 20
        while not server.started:
            if time.monotonic() > deadline or not thread.is_alive():
                raise RuntimeError("the dashboard server did not start")
            time.sleep(0.02)
        return RunningDashboard(url=f"http://127.0.0.1:{port}", engine=engine, database_url=database_url)

    yield start
    for server, thread, engine in running:
        server.should_exit = True
        thread.join(timeout=10)
        engine.dispose()


@pytest.fixture
def dashboard_server(tmp_path: Path, start_dashboard: Callable[[str], RunningDashboard]) -> RunningDashboard:
    return start_dashboard(f"sqlite:///{tmp_path / 'controller.db'}")


@pytest.fixture
def browser_page() -> Iterator[object]:
    if not shutil.which(CHROMIUM) and not Path(CHROMIUM).exists():
        pytest.skip(f"no Chromium at {CHROMIUM}")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        context = browser.new_context(viewport={"width": 1500, "height": 1000})
        page = context.new_page()
        page.set_default_timeout(15_000)
        yield page
        context.close()
        browser.close()
