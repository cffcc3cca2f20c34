"""Queue control (docs/queue-control.md): an agent's upload queue, asked from the agent over MQTT, and the
operators' actions on it. Pages: ``POST /agents/{id}/queue`` (a form of the agent page's queue panel); JSON:
``GET /api/agents/{id}/queue``, ``POST /api/agents/{id}/queue`` (``{"action": ..., "file": ...}``).

Viewers may look (list); only operators may act, with the CSRF token; every action is audited
(``dashboard.queue_control.act``). Mounted only when ``[mqtt]`` is configured."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, HTTPException, status
from fastapi.responses import RedirectResponse, Response
from pydantic import BaseModel, ConfigDict, Field

from dashboard.deps import AgentIdPath, CsrfDep, CtxDep, DbDep, OperatorDep, UserDep
from dashboard.queue_control import NOT_CONFIGURED, QueueClient, QueueControlError, act
from dashboard.routes.errors import errors
from fleet_protocol.messages import MAX_NAME_CHARS, TEXT_PATTERN, QueueReply
from fleet_protocol.vocabulary import QUEUE_CHANGES, QueueAction

router = APIRouter(tags=["queue"], responses=errors(401, 503))


class QueueChange(BaseModel):
    """One action on one queued file, by the name the agent lists it under."""

    model_config = ConfigDict(extra="forbid")
    action: QueueAction
    file: Annotated[str, Field(min_length=1, max_length=MAX_NAME_CHARS, pattern=TEXT_PATTERN)]


class QueueForm(QueueChange):
    """The queue panel's form: the change, and the CSRF token (checked by ``CsrfDep``)."""

    model_config = ConfigDict(extra="ignore")


def _client(ctx: CtxDep) -> QueueClient:
    if ctx.queue is None:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, NOT_CONFIGURED)
    return ctx.queue


def _change(ctx: CtxDep, db: DbDep, who: str, agent_id: str, change: QueueChange) -> QueueReply:
    if change.action not in QUEUE_CHANGES:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, f"{change.action.value} is not a change")
    client = _client(ctx)
    return act(client, db, who=who, agent_id=agent_id, action=change.action, file=change.file, at=ctx.clock())


@router.get("/api/agents/{agent_id}/queue", responses=errors(504))
def queue_list(ctx: CtxDep, user: UserDep, agent_id: AgentIdPath) -> QueueReply:
    """The agent's upload queue, as it answers now: the first entries (in the order it takes them) and the
    total. 504 when it does not answer in time."""
    try:
        return _client(ctx).ask(agent_id, QueueAction.LIST, who=user.name)
    except QueueControlError as exc:
        raise HTTPException(status.HTTP_504_GATEWAY_TIMEOUT, str(exc)) from exc


@router.post("/api/agents/{agent_id}/queue", responses=errors(400, 403, 504))
def queue_change(
    ctx: CtxDep, db: DbDep, user: OperatorDep, _csrf: CsrfDep, agent_id: AgentIdPath, change: QueueChange
) -> QueueReply:
    """Retry now, upload first, hold or release one file (operators only; audited). ``ok`` false with
    ``error``: the agent refused (e.g. the file is no longer queued)."""
    try:
        return _change(ctx, db, user.name, agent_id, change)
    except QueueControlError as exc:
        raise HTTPException(status.HTTP_504_GATEWAY_TIMEOUT, str(exc)) from exc


@router.post("/agents/{agent_id}/queue", include_in_schema=False, name="agent_queue_form")
def queue_form(
    ctx: CtxDep,
    db: DbDep,
    user: OperatorDep,
    _csrf: CsrfDep,
    agent_id: AgentIdPath,
    change: Annotated[QueueForm, Form()],
) -> Response:
    try:
        code = "queue-done" if _change(ctx, db, user.name, agent_id, change).ok else "queue-refused"
    except QueueControlError:
        code = "queue-no-answer"
    return RedirectResponse(f"/agents/{agent_id}?queue=1&msg={code}#queue", status_code=status.HTTP_303_SEE_OTHER)
