"""Login and logout (HTML form and JSON). Every one of them needs the session's CSRF token."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, HTTPException, Request, status
from fastapi.responses import RedirectResponse, Response
from pydantic import BaseModel

from dashboard.auth import Session as WebSession
from dashboard.deps import CsrfDep, CtxDep, WebSessionDep, set_web_session
from dashboard.rendering import render

router = APIRouter()


def _safe_next(target: str) -> str:
    """Only local paths: never redirect to another site after login."""
    return target if target.startswith("/") and not target.startswith("//") and "\\" not in target else "/"


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
    user = ctx.auth.login(username, password)
    ctx.counters.logins.labels("ok" if user else "failed").inc()
    if user is None:
        return render(
            request,
            ctx,
            session,
            None,
            "login.html",
            status_code=401,
            next=_safe_next(next),
            error="Wrong user name or password.",
        )
    set_web_session(request, WebSession.fresh(user.name))
    return RedirectResponse(_safe_next(next), status_code=status.HTTP_303_SEE_OTHER)


@router.post("/logout", include_in_schema=False, name="logout")
def logout(request: Request, _csrf: CsrfDep) -> Response:
    set_web_session(request, WebSession.fresh())
    return RedirectResponse("/login?msg=logged-out", status_code=status.HTTP_303_SEE_OTHER)


class Credentials(BaseModel):
    username: str
    password: str


class SessionInfo(BaseModel):
    user: str
    role: str
    csrf_token: str


@router.post("/api/login", tags=["session"])
def api_login(request: Request, ctx: CtxDep, body: Credentials) -> SessionInfo:
    """Log in with JSON; the answer carries the CSRF token to send as ``X-CSRF-Token`` on changes.

    A JSON body cannot be sent cross-site without a CORS preflight, so this needs no CSRF token.
    """
    user = ctx.auth.login(body.username, body.password)
    ctx.counters.logins.labels("ok" if user else "failed").inc()
    if user is None:
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "wrong user name or password")
    session = WebSession.fresh(user.name)
    set_web_session(request, session)
    return SessionInfo(user=user.name, role=user.role.value, csrf_token=ctx.auth.csrf_token(session))
