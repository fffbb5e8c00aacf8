"""REST routes for the stakeholders' loop: events on results, judgments (with qrels, topics and agreement) and
search analytics (with the UBI export). They go through the same guard as searches (rate limit, errors as
``{"error": ...}``); judgments and analytics also need judging to be on (serve/feedback.py's ``Access``).
"""

from __future__ import annotations

import asyncio
import time

from fastapi import APIRouter, Body, Query, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from pydantic import BaseModel, Field

from mmsearch.evaluate import agreement as agree
from mmsearch.evaluate import analytics
from mmsearch.serve.feedback import Feedback
from mmsearch.serve.guard import Credentials, Refusal, user_of
from mmsearch.store.judgments import GRADES, MAX_QUERY
from mmsearch.store.records import MAX_ACTION, MAX_ID, MAX_RATER

MAX_DAYS = 3660
MAX_BODY = 16 * 1024  # an event or a judgment is a few hundred bytes


class EventIn(BaseModel):
    query_id: str = Field(max_length=32, description="the query_id of the answer whose result this is about")
    item_id: str = Field(max_length=MAX_ID)
    position: int = Field(description="the result's place in that answer, 1 = the first")
    action: str = Field(max_length=MAX_ACTION, description="click, view, or a shop's own name such as add_to_cart")
    client_id: str | None = Field(None, max_length=MAX_ID, description="your own id of the visitor; kept hashed")


class JudgmentIn(BaseModel):
    query: str = Field(max_length=MAX_QUERY)
    item_id: str = Field(max_length=MAX_ID)
    grade: int = Field(description=", ".join(f"{g} {name}" for g, name in GRADES.items()))
    rater: str | None = Field(None, max_length=MAX_RATER, description="ignored on a server with users: the user rates")


def router(feedback: Feedback, route_class, credentials: Credentials | None) -> APIRouter:
    api = APIRouter(prefix="/api", route_class=type("FeedbackRoute", (route_class,), {"max_body": MAX_BODY}))
    access = feedback.access

    def admit(request: Request) -> None:
        """Events and judgments spend the client's rate-limit tokens as searches do (and their bodies are bounded
        by the route class, before they are read)."""
        route_class.guard.admit(request.state.outcome)

    @api.post("/events", status_code=202, summary="Record an event on a result (a click, a view, add_to_cart, ...)")
    async def post_event(request: Request, event: EventIn = Body(...)):
        admit(request)
        client = event.client_id or request.state.outcome.client
        # in a thread: an answer older than the memory's (or another replica's) is read from the database
        await asyncio.to_thread(feedback.event, event.query_id, event.item_id, event.position, event.action, client)
        return JSONResponse({"accepted": True}, status_code=202)

    @api.post("/judgments", status_code=201, summary="Grade a result for a query, 0-3")
    async def post_judgment(request: Request, judgment: JudgmentIn = Body(...)):
        admit(request)
        rater = access.rater(user_of(request.headers.get("authorization"), credentials), judgment.rater)
        kept = await asyncio.to_thread(feedback.judge, judgment.query, judgment.item_id, judgment.grade, rater)
        return JSONResponse(vars(kept), status_code=201)  # after the commit

    @api.get("/judgments", summary="Every judgment, as CSV (query,item_id,grade,rater)")
    async def all_judgments(request: Request):
        access.check()
        return PlainTextResponse(await asyncio.to_thread(feedback.judgments.csv_text), media_type="text/csv")

    @api.get("/judgments/qrels", summary="TREC qrels: topic 0 item_id grade (the raters' median, ties to the lower)")
    async def qrels(request: Request):
        access.check()
        return PlainTextResponse(await asyncio.to_thread(feedback.judgments.qrels_text))

    @api.get("/judgments/topics", summary="The topic number of each judged query")
    async def topics(request: Request):
        access.check()
        found = await asyncio.to_thread(feedback.judgments.topics)
        return [{"topic": n, "query": q} for q, n in found.items()]

    @api.get("/judgments/agreement", summary="Agreement between raters, and the pairs they disagree on")
    async def agreement(request: Request):
        access.check()
        rows = await asyncio.to_thread(feedback.judgments.all)
        return agree.agreement(rows)

    async def rows_of(days: float):
        """The searches and events of the last ``days``, once what waits for its batch is written (judging only)."""
        access.check()
        if not 0 < days <= MAX_DAYS:
            raise Refusal(400, f"days must be more than 0 and at most {MAX_DAYS}, not {days:g}", "invalid_parameter")
        return await asyncio.to_thread(feedback.usage, days)

    @api.get("/analytics", summary="Searches per day, top, no-result, weak and no-click queries, clicks, latency")
    async def get_analytics(request: Request, days: float = Query(7, description="how many days back")):
        s, e = await rows_of(days)
        return analytics.summary(s, e, days) | {"generated_at": time.time()}

    @api.get("/analytics/ubi", summary="The searches and events as User Behavior Insights JSON lines")
    async def ubi(request: Request, days: float = Query(7, description="how many days back")):
        s, e = await rows_of(days)
        lines = analytics.ubi_lines(s, e)
        return Response("\n".join(lines) + ("\n" if lines else ""), media_type="application/x-ndjson")

    return api
