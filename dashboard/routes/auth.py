"""Login and logout (HTML form and JSON). Every one but the JSON login needs the session's CSRF token.

Logins are throttled (``dashboard.throttle``): a refused attempt is answered 429 with ``Retry-After``
and its password is not even checked.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, HTTPException, Request, status
from fastapi.responses import RedirectResponse, Response
from pydantic import BaseModel, Field

from dashboard.auth import LoginOutcome
from dashboard.auth import Session as WebSession
from dashboard.context import AppContext
from dashboard.deps import CsrfDep, CtxDep, WebSessionDep, set_web_session
from dashboard.rendering import render
from dashboard.routes.errors import errors
from dashboard.throttle import retry_after_header

router = APIRouter()


def _safe_next(target: str) -> str:
    """Only local paths: never redirect to another site after login."""
    return target if target.startswith("/") and not target.startswith("//") and "\\" not in target else "/"


def _attempt(
    request: Request, ctx: AppContext, session: WebSession, username: str, password: str
) -> tuple[LoginOutcome, WebSession | None]:
    """One throttled attempt, counted; a success replaces (and revokes) the session it came with."""
    outcome = ctx.auth.login(username, password, request.client.host if request.client else None)
    if outcome.user is None:
        ctx.counters.logins.inc("throttled" if outcome.retry_after_s else "failed")
        return outcome, None
    ctx.counters.logins.inc("ok")
    ctx.auth.end_session(session)
    fresh = ctx.auth.start_session(outcome.user)
    set_web_session(request, fresh)
    return outcome, fresh


def _too_many(outcome: LoginOutcome) -> str:
    return f"Too many failed logins: try again in {retry_after_header(outcome.retry_after_s)} s."


@router.get("/login", include_in_schema=False, name="login_page")
def login_page(request: Request, ctx: CtxDep, session: WebSessionDep, next: str = "/") -> Response:
    return render(request, ctx, session, None, "login.html", next=_safe_next(next), error="")


@router.post("/login", include_in_schema=False, name="login")
def login(
    request: Request,
    ctx: CtxDep,
    session: WebSessionDep,
    _csrf: CsrfDep,
    username: Annotated[str, Form()],
    password: Annotated[str, Form()],
    next: Annotated[str, Form()] = "/",
) -> Response:
    outcome, _fresh = _attempt(request, ctx, session, username, password)
    if outcome.user is not None:
        return RedirectResponse(_safe_next(next), status_code=status.HTTP_303_SEE_OTHER)
    throttled = outcome.retry_after_s > 0
    page = render(
        request,
        ctx,
        session,
        None,
        "login.html",
        status_code=status.HTTP_429_TOO_MANY_REQUESTS if throttled else status.HTTP_401_UNAUTHORIZED,
        next=_safe_next(next),
        error=_too_many(outcome) if throttled else "Wrong user name or password.",
    )
    if throttled:
        page.headers["Retry-After"] = retry_after_header(outcome.retry_after_s)
    return page


@router.post("/logout", include_in_schema=False, name="logout")
def logout(request: Request, ctx: CtxDep, session: WebSessionDep, _csrf: CsrfDep) -> Response:
    ctx.auth.end_session(session)
    set_web_session(request, WebSession.fresh())
    return RedirectResponse("/login?msg=logged-out", status_code=status.HTTP_303_SEE_OTHER)


class Credentials(BaseModel):
    username: Annotated[str, Field(max_length=256)]
    password: Annotated[str, Field(max_length=1024)]


class SessionInfo(BaseModel):
    user: str
    role: str
    csrf_token: str


@router.post(
    "/api/login",
    tags=["session"],
    responses=errors(400, 401, 429),
)
def api_login(request: Request, ctx: CtxDep, session: WebSessionDep, body: Credentials) -> SessionInfo:
    """Log in with JSON; the answer carries the CSRF token to send as ``X-CSRF-Token`` on changes.

    A JSON body cannot be sent cross-site without a CORS preflight, so this needs no CSRF token.
    """
    outcome, fresh = _attempt(request, ctx, session, body.username, body.password)
    if outcome.retry_after_s > 0:
        raise HTTPException(
            status.HTTP_429_TOO_MANY_REQUESTS,
            _too_many(outcome),
            headers={"Retry-After": retry_after_header(outcome.retry_after_s)},
        )
    if outcome.user is None or fresh is None:
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "wrong user name or password")
    return SessionInfo(user=outcome.user.name, role=outcome.user.role.value, csrf_token=ctx.auth.csrf_token(fresh))
