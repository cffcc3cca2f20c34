"""FastAPI dependencies as ``Annotated`` aliases: the one place a route gets what it needs.

``FleetViewDep`` the filter, order and page of the fleet table from the query string ·
``AgentIdPath``, ``SitePath`` an agent id or site name in the path, checked ·
``CtxDep`` the app context · ``DbDep`` a database session · ``WebSessionDep`` the signed cookie
session (an anonymous one is made when missing) · ``UserDep`` a logged-in user (else 401 for the
API, a redirect to the login page for pages) · ``OperatorDep`` a user who may change things (else
403) · ``CsrfDep`` checks the CSRF token of a state-changing request (header ``X-CSRF-Token`` or
form field ``csrf_token``; else 403).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, HTTPException, Path, Query, Request, Security, status
from fastapi.security import APIKeyCookie
from sqlmodel import Session

from dashboard.auth import CSRF_FIELD, CSRF_HEADER, SESSION_COOKIE, User
from dashboard.auth import Session as WebSession
from dashboard.context import AppContext
from dashboard.listing import FleetView, SortKey, StatusFilter
from fleet_protocol.topics import AGENT_ID_PATTERN

# What may name an agent or a site at all: anything else is refused (422) before it reaches the database,
# which stores at most 128 characters and (PostgreSQL) no NUL.
AgentIdPath = Annotated[str, Path(pattern=f"^{AGENT_ID_PATTERN}$", description="the agent's id")]
SitePath = Annotated[
    str, Path(min_length=1, max_length=128, pattern=r"^[^\x00-\x1f\x7f]+$", description="the site's name")
]


class NotLoggedIn(Exception):
    """Raised by ``current_user``; the app answers 401 on ``/api`` and redirects pages to the login."""


def get_ctx(request: Request) -> AppContext:
    ctx: AppContext = request.app.state.ctx
    return ctx


CtxDep = Annotated[AppContext, Depends(get_ctx)]


def get_db(ctx: CtxDep) -> Iterator[Session]:
    with Session(ctx.engine) as session:
        yield session


DbDep = Annotated[Session, Depends(get_db)]


def set_web_session(request: Request, session: WebSession) -> None:
    """Have ``SessionCookieMiddleware`` send this session as the cookie with the response."""
    request.state.edgefleet_set_session = session


def get_web_session(request: Request, ctx: CtxDep) -> WebSession:
    session = ctx.auth.load(request.cookies.get(SESSION_COOKIE))
    if session is None:
        session = WebSession.fresh()
        set_web_session(request, session)
    return session


WebSessionDep = Annotated[WebSession, Depends(get_web_session)]


# Declares the session cookie in OpenAPI (so clients and the fuzz test know what authenticates); the check
# itself is ``get_web_session`` + ``current_user``.
SESSION_SCHEME = APIKeyCookie(
    name=SESSION_COOKIE, auto_error=False, description="the session cookie set by `POST /api/login` or the login form"
)


def current_user(
    session: WebSessionDep, ctx: CtxDep, _cookie: Annotated[str | None, Security(SESSION_SCHEME)] = None
) -> User:
    user = ctx.auth.user_of(session)
    if user is None:
        raise NotLoggedIn
    return user


UserDep = Annotated[User, Depends(current_user)]


def operator_user(user: UserDep) -> User:
    if not user.can_change:
        raise HTTPException(status.HTTP_403_FORBIDDEN, f"{user.name} is a {user.role.value}: read only")
    return user


OperatorDep = Annotated[User, Depends(operator_user)]


async def check_csrf(request: Request, session: WebSessionDep, ctx: CtxDep) -> None:
    token = request.headers.get(CSRF_HEADER)
    if token is None and request.headers.get("content-type", "").startswith(
        ("application/x-www-form-urlencoded", "multipart/form-data")
    ):
        value = (await request.form()).get(CSRF_FIELD)
        token = value if isinstance(value, str) else None
    if not ctx.auth.csrf_ok(session, token):
        raise HTTPException(status.HTTP_403_FORBIDDEN, "missing or invalid CSRF token; reload the page")


CsrfDep = Annotated[None, Depends(check_csrf)]


def fleet_view(
    ctx: CtxDep,
    q: Annotated[str, Query(description="free text over agent id, site, model and reason")] = "",
    state: Annotated[StatusFilter, Query(alias="status")] = StatusFilter.ALL,
    sort: SortKey = SortKey.AGENT_ID,
    desc: bool = False,
    page: Annotated[int, Query(ge=1)] = 1,
    page_size: Annotated[int | None, Query(ge=1, le=10_000, description="default: the configured page_size")] = None,
    version: Annotated[str, Query(max_length=128, description="only agents reporting this software version")] = "",
) -> FleetView:
    return FleetView(
        query=q,
        status=state,
        sort=sort,
        descending=desc,
        page=page,
        page_size=page_size or ctx.config.page_size,
        version=version,
    )


FleetViewDep = Annotated[FleetView, Depends(fleet_view)]
