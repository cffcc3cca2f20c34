"""The composition root: ``create_app(config)`` wires settings, engine, auth, templates, live hub and metrics."""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from functools import partial
from http import HTTPStatus
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import quote

from fastapi import FastAPI, Request
from fastapi.exception_handlers import request_validation_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from prometheus_client import CollectorRegistry
from pydantic import TypeAdapter
from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import Session
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from controller.store.database import make_engine
from dashboard import formatting, queries, readmodel
from dashboard.auth import SESSION_COOKIE, Authenticator
from dashboard.central import UploadDurationCollector, upload_durations
from dashboard.config import DashboardConfig
from dashboard.context import AppContext, DashboardCounters
from dashboard.deps import NotLoggedIn
from dashboard.live import LiveHub, SnapshotCache
from dashboard.metrics import FleetCollector, MetricsPage
from dashboard.queue_control import QueueClient
from dashboard.readmodel import FleetSnapshot
from dashboard.routes import api, apidocs, auth, central, metrics, pages, queue, recording_media, recordings, stream
from dashboard.security import SecurityHeadersMiddleware

HERE = Path(__file__).parent
log = logging.getLogger(__name__)


def utc_now() -> datetime:
    return datetime.now(UTC)


def make_templates() -> Jinja2Templates:
    templates = Jinja2Templates(directory=HERE / "templates")
    env = templates.env
    env.filters.update(
        bytes=formatting.human_bytes,
        rate=formatting.human_rate,
        duration=formatting.human_duration,
        ago=formatting.age,
        iso=formatting.iso,
        temp=formatting.temperature,
        latency=formatting.latency,
        percent=formatting.percent,
        level=formatting.compression_level,
        decisive=readmodel.decisive_clause,
        brief=readmodel.brief,
        clauses=readmodel.reason_clauses,
        thermal=readmodel.thermal_step_name,
    )
    return templates


class SessionCookieMiddleware:
    """Sends the session cookie a request asked for (``deps.set_web_session``); streaming-safe, pure ASGI."""

    def __init__(self, app: ASGIApp, auth: Authenticator, secure: bool) -> None:
        self.app = app
        self.auth = auth
        self.secure = secure

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_cookie(message: Message) -> None:
            session = scope.get("state", {}).get("edgefleet_set_session")
            if message["type"] == "http.response.start" and session is not None:
                cookie = (
                    f"{SESSION_COOKIE}={self.auth.dump(session)}; Path=/; HttpOnly; SameSite=Lax; "
                    f"Max-Age={self.auth.max_age_s}" + ("; Secure" if self.secure else "")
                )
                message = {
                    **message,
                    "headers": [*message.get("headers", []), (b"set-cookie", cookie.encode("latin-1"))],
                }
            await send(message)

        await self.app(scope, receive, send_with_cookie)


class DashboardApp(FastAPI):
    """FastAPI with the security headers outermost, so even the 500 page of ``ServerErrorMiddleware`` has them."""

    def __init__(self, *, over_tls: bool, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.over_tls = over_tls

    def build_middleware_stack(self) -> ASGIApp:
        return SecurityHeadersMiddleware(super().build_middleware_stack(), over_tls=self.over_tls)


def _not_logged_in(request: Request, _exc: Exception) -> Response:
    if request.url.path.startswith("/api/"):
        return JSONResponse({"detail": "log in first"}, status_code=401)
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return RedirectResponse(f"/login?next={quote(target, safe='')}", status_code=303)


def _http_error(request: Request, exc: Exception) -> Response:
    """JSON for the API (as FastAPI does), a readable page for people."""
    assert isinstance(exc, StarletteHTTPException)
    if request.url.path.startswith(("/api/", "/metrics", "/static/")):
        return JSONResponse({"detail": exc.detail}, status_code=exc.status_code, headers=exc.headers)
    ctx: AppContext = request.app.state.ctx
    title = HTTPStatus(exc.status_code).phrase if exc.status_code in HTTPStatus._value2member_map_ else "Error"
    return ctx.templates.TemplateResponse(
        request,
        "error.html",
        {"status_code": exc.status_code, "title": title, "detail": exc.detail, "user": None, "csrf_token": ""},
        status_code=exc.status_code,
    )


async def _invalid_request(request: Request, exc: Exception) -> Response:
    """FastAPI's 422 for the API; a readable page for people."""
    assert isinstance(exc, RequestValidationError)
    if request.url.path.startswith("/api/"):
        return await request_validation_exception_handler(request, exc)
    detail = "; ".join(f"{'.'.join(str(p) for p in e['loc'][1:])}: {e['msg']}" for e in exc.errors())
    return _http_error(request, StarletteHTTPException(422, detail))


def _database_error(request: Request, exc: Exception) -> Response:
    """The controller's database is down or restarting: say so (503) rather than a bare 500."""
    log.warning("database error on %s: %s", request.url.path, exc)
    return _http_error(request, StarletteHTTPException(503, "the database is not reachable; try again shortly"))


T = TypeVar("T")


def _read(engine: Engine, query: Callable[[Session], T]) -> T:
    with Session(engine) as session:
        return query(session)


def _register_collectors(registry: CollectorRegistry, snapshot: Callable[[], FleetSnapshot], engine: Engine) -> None:
    """``/metrics``: the fleet (from the cached snapshot) and the upload durations (one query per scrape)."""
    registry.register(FleetCollector(snapshot))
    registry.register(UploadDurationCollector(lambda: _read(engine, upload_durations)))


@asynccontextmanager
async def _lifespan(ctx: AppContext, _app: FastAPI) -> AsyncIterator[None]:
    """The queue-control connection is made by its first request and closed here."""
    yield
    if ctx.queue is not None:
        ctx.queue.stop()


def _add_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(NotLoggedIn, _not_logged_in)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _invalid_request)
    app.add_exception_handler(SQLAlchemyError, _database_error)


def _snapshot_cache(config: DashboardConfig, engine: Engine, clock: Callable[[], datetime]) -> SnapshotCache:
    """The shared fleet snapshot (``SnapshotCache``), and its JSON as ``/api/fleet`` sends it."""

    def read_snapshot() -> FleetSnapshot:
        with Session(engine) as session:
            return queries.fleet_snapshot(session, clock(), config.offline_after_s, config.policy)

    return SnapshotCache(
        read_snapshot,
        config.snapshot_max_age_s,
        time.monotonic,
        config.snapshot_stale_s,
        encode=TypeAdapter(FleetSnapshot).dump_json,
    )


def create_app(
    config: DashboardConfig,
    *,
    engine: Engine | None = None,
    clock: Callable[[], datetime] = utc_now,
    monotonic: Callable[[], float] = time.monotonic,
) -> FastAPI:
    """``clock`` dates what pages show; ``monotonic`` times sessions and login backoff."""
    engine = engine or make_engine(config.database_url)
    auth_ = Authenticator(config, monotonic)

    snapshots = _snapshot_cache(config, engine, clock)

    registry = CollectorRegistry()
    ctx = AppContext(
        config=config,
        engine=engine,
        auth=auth_,
        templates=make_templates(),
        snapshots=snapshots,
        hub=LiveHub(snapshots.get, config.live_interval_s),
        registry=registry,
        metrics_page=MetricsPage(registry, config.metrics_cache_s),
        counters=DashboardCounters.create(registry),
        clock=clock,
        queue=QueueClient(config.mqtt.parsed, config.mqtt.reply_timeout_s) if config.mqtt else None,
    )
    _register_collectors(registry, snapshots.get, engine)

    app = DashboardApp(
        over_tls=config.over_tls,
        title="edgefleet dashboard",
        description="The operators' view of the fleet: agents, uploads, assignments, overrides and their audit trail.",
        version="1",
        docs_url=None,  # served by routes.apidocs from local files
        redoc_url=None,  # ReDoc needs inline styles the Content-Security-Policy forbids; Swagger UI is enough
        lifespan=partial(_lifespan, ctx),
    )
    app.state.ctx, app.state.listening = ctx, recording_media.listening_for(config, registry)
    app.add_middleware(SessionCookieMiddleware, auth=auth_, secure=config.over_tls)
    _add_error_handlers(app)
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")
    queue_routes = [queue] if ctx.queue else []  # queue control needs the dashboard's own broker user
    for module in (auth, pages, api, recordings, *queue_routes, central, stream, metrics, apidocs, recording_media):
        app.include_router(module.router)
    return app
