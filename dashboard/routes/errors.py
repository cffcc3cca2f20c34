"""The JSON API's error answers as OpenAPI documents them: ``{"detail": "…"}`` (422 keeps FastAPI's own shape)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel


class ErrorDetail(BaseModel):
    detail: str


_WHY = {
    400: "the body is not valid JSON",
    401: "not logged in (or the session ended)",
    403: "a viewer may not change anything, or the CSRF token is missing or wrong",
    404: "no such agent",
    429: "too many failed logins; `Retry-After` says when to try again",
    503: "the database is not reachable; try again shortly (queue control: not configured)",
    504: "the agent did not answer in time (offline, or its software has no queue control)",
}


def errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    """``responses=`` for a route or router: the given error codes with their ``ErrorDetail`` body."""
    return {code: {"model": ErrorDetail, "description": _WHY[code]} for code in codes}
