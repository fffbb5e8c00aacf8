"""The REST side of the guard: the route class every /api route is made with, and the answers the schema documents.

A route is a plain function in a module of ``serve/routes/``; its router is made with ``guarded()``, so each request
passes the deployment's guard (serve/guard.py): access first, then the body's bound, then the handler, whose failures
become ``{"error": message}`` with the status of the guard's table. Pictures are served by item id, only for items of
the loaded index.
"""

from __future__ import annotations

import hashlib
import json
from functools import cache

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi.routing import APIRoute
from pydantic import BaseModel, Field

from mmsearch.search.results import Hit
from mmsearch.serve.auth import NEEDS_TOKEN, authorized
from mmsearch.serve.guard import Refusal


class Error(BaseModel):
    error: str = Field(description="what went wrong, for the person who sent the request")


class FacetRange(BaseModel):
    """One range of a number column's facet: from (included) to (excluded); an open end is left out."""

    model_config = {"populate_by_name": True}

    start: float | None = Field(None, alias="from", description="the range's lower edge, included")
    to: float | None = Field(None, description="the range's upper edge, excluded")
    count: int


class SearchAnswer(BaseModel):
    query_id: str = Field(description="this answer's id: send it with events on its results (POST /api/events)")
    match: str = Field(
        description="good: the results match the query; weak: nothing in the catalog matches it well, these are the "
        "closest (see the match settings)"
    )
    mode: str = Field(description="the mode that ranked the results (a picture alone is always vector)")
    query_language: str | None = Field(
        None,
        description="the language (ISO 639-1) the model's text tower took the words as: 'en' for an English-only "
        "tower; for a multilingual one, the language guessed among its languages when the guess is sure; null when "
        "the model cannot tell, or for a picture alone",
    )
    results: list[Hit]
    offset: int = Field(0, description="the place of the first result among every match (0: the first page)")
    next_offset: int | None = Field(
        None, description="the offset of the next page (send it as offset= with the same query); null on the last"
    )
    total: int = Field(
        0, description="how many matches this query's pages reach (above min_score, at most the server's --max-k)"
    )
    facets: dict[str, dict[str, int] | list[FacetRange]] | None = Field(
        None,
        description="with facets=: per column, the matches' count by value (most frequent first), or for a column "
        "of numbers by range",
    )
    took_ms: float = Field(description="time spent in the server on this request")
    k: int = Field(description="how many results came back")


RETRY = {"Retry-After": {"description": "seconds to wait before retrying", "schema": {"type": "integer"}}}
# Every status a route may answer besides its own success, with the reason; a route names the ones it can give.
STATUS = {
    400: {"model": Error, "description": "a value the server refuses, or a body it cannot read, with the reason"},
    401: {"model": Error, "description": "this server needs a token, or a logged-in user for this"},
    403: {"model": Error, "description": "judging and analytics are off on this server"},
    404: {"model": Error, "description": "no such item, or no answer with that query_id"},
    405: {"model": Error, "description": "the route does not take this method"},
    409: {"model": Error, "description": "this server does not record events (--no-record)"},
    413: {"model": Error, "description": "the request body is larger than this route takes"},
    422: {"model": Error, "description": "the request's shape is wrong: a field missing, or of the wrong type"},
    429: {"model": Error, "description": "busy, or over this client's rate: retry after Retry-After", "headers": RETRY},
    503: {
        "model": Error,
        "description": "a part the server depends on is down (the Feast online store, the database), or its "
        "pictures' workers are all taken: retry after Retry-After",
        "headers": RETRY,
    },
}


def statuses(*codes: int) -> dict[int, dict]:
    return {code: STATUS[code] for code in codes}


COMMON = (401, 405, 422, 429)  # any /api route: a locked server, another method, a wrong shape, the rate limit


def client_of(request: Request) -> str:
    """Who a rate limit counts: the token's holder when there is one, else the address."""
    header = request.headers.get("authorization") or ""
    if header:
        return "token:" + hashlib.blake2b(header.encode(), digest_size=6).hexdigest()
    return request.client.host if request.client else "unknown"


class GuardedRoute(APIRoute):
    """An /api route: access checked first, the body bounded as it arrives, then the handler inside the deployment's
    guard."""

    max_body: int | None = None  # bytes a JSON request's body may have; None: a route that takes an upload, or none

    def get_route_handler(self):
        handler, endpoint = super().get_route_handler(), self.path_format

        async def guarded(request: Request):
            deployment = request.app.state.deployment
            try:
                with deployment.guard.request(endpoint, client_of(request)) as outcome:
                    request.state.outcome = outcome
                    if not authorized(request.headers.get("authorization"), deployment.credentials):
                        raise Refusal(401, NEEDS_TOKEN, "unauthorized", {"WWW-Authenticate": "Bearer"})
                    request = bounded(request, *self.body_limit(deployment))
                    own = {field.alias for field in self.dependant.query_params}
                    given_once([name for name, _ in request.query_params.multi_items() if name in own])
                    if self.max_body:
                        await check_json(request)
                    try:
                        response = await handler(request)
                    except RequestValidationError as exc:
                        raise exc from None  # the guard words it (inputs.explain)
                    outcome.status = response.status_code if isinstance(response, Response) else 200
                    return response
            except Refusal as refused:
                return JSONResponse({"error": refused.message}, status_code=refused.status, headers=refused.headers)

        return guarded

    def body_limit(self, deployment) -> tuple[int, str]:
        """The most bytes a request's body may have here, and what a larger one is told."""
        if self.max_body:
            return self.max_body, f"A request here is at most {self.max_body // 1024} KB."
        mb = deployment.max_upload_bytes // 2**20
        return deployment.max_upload_bytes + FORM_ALLOWANCE, f"The upload is larger than the {mb} MB limit."


# An upload's other fields and multipart framing, beyond the picture's own bound (its words are at most a few KB).
FORM_ALLOWANCE = 64 * 1024


def bounded(request: Request, limit: int, message: str) -> Request:
    """The request with its body counted as it arrives: past ``limit`` bytes (Content-Length or not: a bound that holds
    only after reading bounds nothing) it is refused with 413 and no more is read."""
    try:
        declared = int(request.headers.get("content-length") or 0)
    except ValueError:
        declared = 0  # the HTTP parser has refused a malformed one before this
    # The connection is closed after the answer: kept alive, the server would go on reading the rest to discard it.
    too_large = Refusal(413, message, "too_large", {"Connection": "close"})
    if declared > limit:
        raise too_large
    receive, seen = request.receive, 0

    async def counted() -> dict:
        nonlocal seen
        event = await receive()
        if event["type"] == "http.request":
            seen += len(event.get("body", b""))
            if seen > limit:
                raise too_large
        return event

    return Request(request.scope, counted)


def given_once(names: list[str]) -> None:
    """Refuses a request naming one of its route's parameters (or form fields) more than once: the schema's fields
    are single values, and which one a framework would keep is no answer to give. (Names the route does not take
    are left out by the caller: the schema lets them come, and they are ignored.)"""
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        listed = ", ".join(repr(name) for name in repeated[:5])
        raise Refusal(400, f"Give each field once: {listed} came more than once.", "invalid_body")


async def check_json(request: Request) -> None:
    """Reads the (bounded) body and checks it is JSON, which FastAPI then parses from what was read; malformed or
    nested past Python's recursion limit, it is refused with 400 before any handler sees it."""
    body = await request.body()
    try:
        json.loads(body or b"{}")
    except (ValueError, RecursionError) as exc:  # not UTF-8, not JSON, or nested past Python's recursion limit
        raise Refusal(400, f"The body is not JSON: {str(exc)[:120]}", "invalid_body") from None


@cache
def guarded(max_body: int | None = None) -> type[GuardedRoute]:
    """The route class for a router whose requests' bodies are at most ``max_body`` bytes (None: unbounded)."""
    return type(f"GuardedRoute{max_body or ''}", (GuardedRoute,), {"max_body": max_body})
