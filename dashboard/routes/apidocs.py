"""``/docs``: Swagger UI for the JSON API, from files under ``/static/swagger-ui`` (no CDN, no inline script)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from dashboard.deps import CtxDep, WebSessionDep

router = APIRouter(include_in_schema=False)


@router.get("/docs", name="api_docs")
def api_docs(request: Request, ctx: CtxDep, session: WebSessionDep) -> Response:
    return ctx.templates.TemplateResponse(
        request,
        "apidocs.html",
        {"csrf_token": ctx.auth.csrf_token(session), "openapi_url": request.app.openapi_url},
    )
