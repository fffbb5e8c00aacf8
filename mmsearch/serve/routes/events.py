"""Events on results (``POST /api/events``): a click, a view, or a shop's own action such as add_to_cart, each
checked against the answer it names and written behind the request (feedback/searchlog.py)."""

from __future__ import annotations

import asyncio
from typing import Annotated

from fastapi import APIRouter, Body, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from mmsearch import inputs
from mmsearch.feedback.records import MAX_ACTION, MAX_ID
from mmsearch.serve.deployment import DeploymentDep
from mmsearch.serve.rest import COMMON, Error, guarded, statuses

MAX_BODY = 16 * 1024  # an event or a judgment is a few hundred bytes
router = APIRouter(prefix="/api", route_class=guarded(MAX_BODY), tags=["feedback"])


class EventIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    query_id: Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{32}$")] = Field(
        description="the query_id of the answer whose result this is about"
    )
    item_id: inputs.text(MAX_ID, required=True) = Field(description="the result's item id")
    position: inputs.bounded(int, ("position",), 1) = Field(description="the result's place in that answer, 1 = first")
    action: inputs.name("A-Za-z0-9_.-", MAX_ACTION) = Field(
        description="click, view, or a shop's own name such as add_to_cart (letters, digits, '_', '-', '.')"
    )
    client_id: inputs.text(MAX_ID) | None = Field(None, description="your own id of the visitor; kept hashed")


CONFLICT = {
    "model": Error,
    "description": "the item named is not at that position of that answer, or this server does not record events",
}


class Accepted(BaseModel):
    accepted: bool


@router.post(
    "/events",
    status_code=202,
    response_model=Accepted,
    summary="Record an event on a result (a click, a view, add_to_cart, ...)",
    responses=statuses(400, 404, 409, 413, *COMMON) | {409: CONFLICT},
)
async def post_event(request: Request, deployment: DeploymentDep, event: Annotated[EventIn, Body()]):
    outcome = request.state.outcome
    deployment.guard.admit(outcome)  # events spend the client's rate-limit tokens as searches do
    client = event.client_id or outcome.client
    # in a thread: an answer older than the memory's (or another replica's) is read from the database
    await asyncio.to_thread(
        deployment.feedback.event, event.query_id, event.item_id, event.position, event.action, client
    )
    return JSONResponse({"accepted": True}, status_code=202)
