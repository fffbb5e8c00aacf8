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


class SearchAnswer(BaseModel):
    query_id: str = Field(description="this answer's id: send it with events on its results (POST /api/events)")
    match: str = Field(
        description="good: the results match the query; weak: nothing in the catalog matches it well, these are the "
        "closest (see the match settings)"
    )
    mode: str = Field(description="the mode that ranked the results (a picture alone is always vector)")
    results: list[Hit]
    took_ms: float = Field(description="time spent in the server on this request")
    k: int = Field(description="how many results came back")


RETRY = {"Retry-After": {"description": "seconds to wait before retrying", "schema": {"type": "integer"}}}
# Every status a route may answer besides its own success, with the reason; a route names the ones it can give.
STATUS = {
    400: {"model": Error, "description": "a value the server refuses, with the reason"},
    401: {"model": Error, "description": "this server needs a token, or a logged-in user for this"},
    403: {"model": Error, "description": "judging and analytics are off on this server"},
    404: {"model": Error, "description": "no such item, or no answer with that query_id"},
    405: {"model": Error, "description": "the route does not take this method"},
    409: {"model": Error, "description": "this server does not record events (--no-record)"},
    413: {"model": Error, "description": "the request body is larger than this route takes"},
    422: {"model": Error, "description": "the request's shape is wrong: a field missing, or of the wrong type"},
    429: {"model": Error, "description": "busy, or over this client's rate: retry after Retry-After", "headers": RETRY},
    503: {"model": Error, "description": "the feature store cannot be read"},
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
    """An /api route: access checked first, then the handler inside the deployment's guard."""

    max_body: int | None = None  # bytes a request's body may have (routes that take JSON)

    def get_route_handler(self):
        handler, endpoint = super().get_route_handler(), self.path_format

        async def guarded(request: Request):
            deployment = request.app.state.deployment
            try:
                with deployment.guard.request(endpoint, client_of(request)) as outcome:
                    request.state.outcome = outcome
                    if not authorized(request.headers.get("authorization"), deployment.credentials):
                        raise Refusal(401, NEEDS_TOKEN, "unauthorized", {"WWW-Authenticate": "Bearer"})
                    if self.max_body:
                        await read_json_body(request, self.max_body)
                    try:
                        response = await handler(request)
                    except RequestValidationError as exc:
                        raise exc from None  # the guard words it (inputs.explain)
                    outcome.status = response.status_code if isinstance(response, Response) else 200
                    return response
            except Refusal as refused:
                return JSONResponse({"error": refused.message}, status_code=refused.status, headers=refused.headers)

        return guarded


async def read_json_body(request: Request, limit: int) -> None:
    """Reads a JSON body up to ``limit`` bytes as it arrives (Content-Length or not: a bound that holds only after
    reading bounds nothing) and checks it is JSON, which FastAPI then parses from what was read."""
    if int(request.headers.get("content-length") or 0) > limit:
        raise Refusal(413, f"A request here is at most {limit // 1024} KB.", "too_large")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise Refusal(413, f"A request here is at most {limit // 1024} KB.", "too_large")
    request._body = bytes(body)  # what Request.body() returns from now on: the stream is spent
    try:
        json.loads(body or b"{}")
    except (ValueError, RecursionError) as exc:  # not UTF-8, not JSON, or nested past Python's recursion limit
        raise Refusal(422, f"The body is not JSON: {str(exc)[:120]}", "invalid_parameter") from None


@cache
def guarded(max_body: int | None = None) -> type[GuardedRoute]:
    """The route class for a router whose requests' bodies are at most ``max_body`` bytes (None: unbounded)."""
    return type(f"GuardedRoute{max_body or ''}", (GuardedRoute,), {"max_body": max_body})
