"""Rendering pages and fragments with the shared template context (user, CSRF token, clock, limits)."""

from __future__ import annotations

from typing import Any

from fastapi import Request
from starlette.templating import _TemplateResponse

from dashboard.auth import Session as WebSession
from dashboard.auth import User
from dashboard.context import AppContext

# Messages a redirect may ask a page to show (``?msg=<code>``): codes, never free text from the URL.
FLASH_MESSAGES = {
    "override-set": "Override saved. The controller applies it on its next tick.",
    "override-cleared": "Override cleared. The policy decides again.",
    "logged-out": "Logged out.",
    "queue-done": "Done: the agent applied it (its queue below).",
    "queue-refused": "The agent refused it (the reason is in the operator changes below).",
    "queue-no-answer": "The agent did not answer (offline?). Nothing changed.",
}


def render(
    request: Request,
    ctx: AppContext,
    session: WebSession,
    user: User | None,
    name: str,
    status_code: int = 200,
    **context: Any,
) -> _TemplateResponse:
    code = request.query_params.get("msg", "")
    base: dict[str, Any] = {
        "user": user,
        "csrf_token": ctx.auth.csrf_token(session),
        "now": ctx.clock(),
        "limits": ctx.limits,
        "flash": FLASH_MESSAGES.get(code, ""),
        "flash_error": False,
    }
    base.update(context)
    return ctx.templates.TemplateResponse(request, name, base, status_code=status_code)


def render_fragment(ctx: AppContext, macro: str, *args: Any) -> str:
    """One macro of ``_macros.html`` as a string (for the live stream)."""
    module = ctx.templates.env.get_template("_macros.html").module
    return str(getattr(module, macro)(*args))
