"""Raters' grades (``POST /api/judgments``, committed before the 201) and what they make: every judgment as CSV,
TREC qrels, the topics, and the agreement between raters. Judging must be on (feedback/access.py)."""

from __future__ import annotations

import asyncio
from typing import Annotated, Literal

from fastapi import APIRouter, Body, Request
from fastapi.responses import JSONResponse, PlainTextResponse
from pydantic import BaseModel, ConfigDict, Field

from mmsearch import inputs
from mmsearch.feedback import agreement as agree
from mmsearch.feedback.judgments import GRADES, MAX_QUERY
from mmsearch.feedback.records import MAX_ID, MAX_RATER
from mmsearch.serve.deployment import DeploymentDep
from mmsearch.serve.rest import COMMON, guarded, statuses
from mmsearch.serve.routes.events import MAX_BODY

router = APIRouter(prefix="/api/judgments", route_class=guarded(MAX_BODY), tags=["feedback"])
JUDGING = statuses(403, *COMMON)


class JudgmentIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    query: inputs.text(MAX_QUERY, required=True) = Field(description="the query the result was judged for")
    item_id: inputs.text(MAX_ID, required=True) = Field(description="the result's item id")
    grade: Literal[0, 1, 2, 3] = Field(description=", ".join(f"{g} {name}" for g, name in GRADES.items()))
    rater: inputs.text(MAX_RATER) | None = Field(
        None, description="who grades (required with --judging open; ignored on a server with users: the user rates)"
    )


class Judged(BaseModel):
    query: str
    item_id: str
    grade: int
    rater: str


class Topic(BaseModel):
    topic: int
    query: str


@router.post(
    "",
    status_code=201,
    response_model=Judged,
    summary="Grade a result for a query, 0-3",
    responses=statuses(400, 404, 413) | JUDGING,
)
async def post_judgment(request: Request, deployment: DeploymentDep, judgment: Annotated[JudgmentIn, Body()]):
    deployment.guard.admit(request.state.outcome)
    feedback = deployment.feedback
    rater = feedback.access.rater(deployment.user(request), judgment.rater)
    kept = await asyncio.to_thread(feedback.judge, judgment.query, judgment.item_id, judgment.grade, rater)
    return JSONResponse(vars(kept), status_code=201)  # after the commit


@router.get(
    "",
    summary="Every judgment, as CSV (query,item_id,grade,rater)",
    response_class=PlainTextResponse,
    responses={200: {"content": {"text/csv": {"schema": {"type": "string"}}}, "description": "CSV"}} | JUDGING,
)
async def all_judgments(deployment: DeploymentDep):
    deployment.feedback.access.check()
    text = await asyncio.to_thread(deployment.feedback.judgments.csv_text)
    return PlainTextResponse(text, media_type="text/csv")


@router.get(
    "/qrels",
    summary="TREC qrels: topic 0 item_id grade (the raters' median, ties to the lower)",
    response_class=PlainTextResponse,
    responses={200: {"content": {"text/plain": {"schema": {"type": "string"}}}, "description": "qrels"}} | JUDGING,
)
async def qrels(deployment: DeploymentDep):
    deployment.feedback.access.check()
    return PlainTextResponse(await asyncio.to_thread(deployment.feedback.judgments.qrels_text))


@router.get("/topics", response_model=list[Topic], summary="The topic number of each judged query", responses=JUDGING)
async def topics(deployment: DeploymentDep):
    deployment.feedback.access.check()
    found = await asyncio.to_thread(deployment.feedback.judgments.topics)
    return [{"topic": n, "query": q} for q, n in found.items()]


@router.get("/agreement", summary="Agreement between raters, and the pairs they disagree on", responses=JUDGING)
async def agreement(deployment: DeploymentDep) -> dict:
    deployment.feedback.access.check()
    rows = await asyncio.to_thread(deployment.feedback.judgments.all)
    return agree.agreement(rows)
