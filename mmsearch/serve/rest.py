"""The REST API: plain JSON routes for scripts, on the same server and searcher as the Gradio app.

Every search route goes through the same checks as the UI (the searcher's QueryError messages), the shared rate
limit, and a bounded queue; errors are JSON ``{"error": ...}`` with a 4xx code (503 when the feature store cannot be
read). Pictures are served by item id, only for items of the loaded index.
"""

from __future__ import annotations

import hashlib
import io
import time
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import orjson
from fastapi import APIRouter, File, Form, Query, Request, UploadFile
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.routing import APIRoute
from pydantic import BaseModel, Field

from mmsearch.ingest.images import ImageError, load_image
from mmsearch.search.checks import MAX_K
from mmsearch.search.results import ItemNotFound, QueryError
from mmsearch.search.searcher import Searcher
from mmsearch.serve import monitoring
from mmsearch.serve.feedback import Feedback
from mmsearch.serve.guard import NEEDS_TOKEN, Credentials, Gate, Guard, Refusal, authorized

UPLOAD_CHUNK = 1 << 20


class Hit(BaseModel):
    item_id: str
    score: float = Field(
        description="cosine similarity in vector mode, BM25 in keyword mode, 1 = first in both lists in hybrid mode"
    )
    title: str
    image_url: str = Field(description="the item's picture, served by this server")
    price: float | None = None
    category: str = ""
    description: str = ""
    metadata: dict = Field(default_factory=dict, description="the catalog's other columns")
    similarity: float | None = Field(None, description="cosine similarity to the query, in every mode")
    keyword_score: float | None = Field(None, description="BM25, when the item came up in the keyword search")


class SearchResponse(BaseModel):
    query_id: str = Field(description="this answer's id: send it with events on its results (POST /api/events)")
    results: list[Hit]
    took_ms: float = Field(description="time spent in the server on this request")
    mode: str = Field(description="the mode that ranked the results (an image alone is always vector)")
    match: str = Field(
        description="good: the results match the query; weak: nothing in the catalog matches it well, these are the "
        "closest (see the match settings)"
    )
    k: int


class Item(BaseModel):
    item_id: str
    title: str
    image_url: str
    price: float | None = None
    category: str = ""
    description: str = ""
    metadata: dict = Field(default_factory=dict)


class Info(BaseModel):
    model: str
    index_kind: str
    items: int
    catalog: str
    built_at: str | None
    index_age_s: float | None
    near_duplicate_pairs: int | None = None
    search_mode: str
    versions: dict[str, str]


class Error(BaseModel):
    error: str


ERRORS = {
    400: {"model": Error, "description": "a query the searcher refuses, with the reason"},
    429: {"model": Error, "description": "busy or over this client's rate: retry after Retry-After seconds"},
    503: {"model": Error, "description": "the feature store cannot be read"},
}


class GuardedRoute(APIRoute):
    """Every /api route: access checked first, then the handler inside the guard (serve/guard.py), whose refusals
    become ``{"error": message}`` with their status."""

    guard: Guard  # a subclass per router() holds its deployment's guard and secret
    credentials: Credentials | None = None
    max_body: int | None = None  # bytes a request's body may have (routes that take JSON)

    def get_route_handler(self):
        handler, endpoint = super().get_route_handler(), self.path_format

        async def guarded(request: Request):
            try:
                with self.guard.request(endpoint, _client(request)) as outcome:
                    request.state.outcome = outcome
                    if not authorized(request.headers.get("authorization"), self.credentials):
                        raise Refusal(401, NEEDS_TOKEN, "unauthorized", {"WWW-Authenticate": "Bearer"})
                    if self.max_body and int(request.headers.get("content-length") or 0) > self.max_body:
                        # before the body is read and parsed: a bound that holds only after parsing bounds nothing
                        raise Refusal(413, f"A request here is at most {self.max_body // 1024} KB.", "too_large")
                    try:
                        response = await handler(request)
                        outcome.status = response.status_code if isinstance(response, Response) else 200
                        return response
                    except RequestValidationError as exc:
                        raise Refusal(422, _plain(exc), "invalid_parameter") from exc
            except Refusal as refused:
                return JSONResponse({"error": refused.message}, status_code=refused.status, headers=refused.headers)

        return guarded


def _plain(exc: RequestValidationError) -> str:
    """FastAPI's validation details as one sentence a person can act on."""
    parts = []
    for err in exc.errors():
        where = ".".join(str(x) for x in err.get("loc", ())[1:]) or "request"
        parts.append(f"{where}: {err.get('msg', 'invalid')}")
    return "Invalid request: " + "; ".join(parts[:5])


def _client(request: Request) -> str:
    """Who a rate limit counts: the token's holder when there is one, else the address."""
    header = request.headers.get("authorization") or ""
    if header:
        return "token:" + hashlib.blake2b(header.encode(), digest_size=6).hexdigest()
    return request.client.host if request.client else "unknown"


def _version(package: str) -> str:
    try:
        return version(package)
    except PackageNotFoundError:
        return "-"


def route_class(guard: Guard, credentials: Credentials | None) -> type[GuardedRoute]:
    return type("DeploymentRoute", (GuardedRoute,), {"guard": guard, "credentials": credentials})


def router(searcher: Searcher, feedback: Feedback, gate: Gate, max_upload_bytes: int, routes: type[GuardedRoute]):
    guard = routes.guard
    versions = {p: _version(p) for p in ("faiss-cpu", "feast", "gradio", "torch", "open_clip_torch")}
    api = APIRouter(prefix="/api", responses=ERRORS, route_class=routes)

    async def run(request: Request, query: str | None, work) -> Response:
        """The search ``work`` after the client's rate limit and the queue bound; what the log line needs goes in the
        request's outcome, which the route class's guard writes.

        Searches run on the event loop itself, one at a time: a search is milliseconds of mostly Python, and handing
        it to worker threads made them fight over the GIL (16 clients, the load mix: 237 q/s in threads, 275 with
        only uploads in threads, 476 all on the loop, with a lower p99 too). An upload's size is bounded by
        --max-upload-mb and --max-upload-pixels, so one picture cannot stall the loop for long."""
        started = time.perf_counter()
        outcome = request.state.outcome
        outcome.query = query if guard.log_queries else None
        guard.admit(outcome)
        async with gate:
            answer = work()
        outcome.mode, outcome.kind, outcome.results = answer.mode, answer.kind, len(answer)
        feedback.record(answer, query, "rest", outcome.client, started)
        # Shaped as SearchResponse (the documented model) but serialised directly: building a pydantic model per
        # hit costs more than the search's own Python on a small catalog.
        return Response(
            orjson.dumps(
                {
                    "query_id": answer.query_id,
                    "results": [r.public() for r in answer],
                    "took_ms": round(1000 * (time.perf_counter() - started), 2),
                    "mode": answer.mode,
                    "match": answer.match,
                    "k": len(answer),
                }
            ),
            media_type="application/json",
        )

    @api.get("/search", response_model=SearchResponse, summary="Search by text")
    async def search(
        request: Request,
        q: str = Query(..., description="what to look for; words starting with '-' push away"),
        k: int = Query(None, description=f"results, 1..{MAX_K} (default: the server's)"),
        mode: str | None = Query(None, description="vector, keyword or hybrid"),
        filters: str | None = Query(None, description="e.g. category=mug; colour=blue|red; price<=20"),
        min_score: float | None = Query(None, description="drop results scoring lower"),
        keyword_weight: float | None = Query(None, description="hybrid: the keyword list's share, 0..1"),
    ):
        return await run(
            request, q, lambda: feedback.text_answer(searcher, q, k, min_score, filters, mode, keyword_weight)
        )

    @api.post("/search/image", response_model=SearchResponse, summary="Search by an uploaded picture (and text)")
    async def search_image(
        request: Request,
        image: UploadFile = File(..., description="a JPEG, PNG, WebP, ... picture"),
        q: str | None = Form(None, description="optional words to search with the picture"),
        image_weight: float | None = Form(None, description="the picture's share with text, 0..1"),
        k: int | None = Form(None),
        mode: str | None = Form(None),
        filters: str | None = Form(None),
        min_score: float | None = Form(None),
    ):
        data = bytearray()
        while chunk := await image.read(UPLOAD_CHUNK):
            data += chunk
            if len(data) > max_upload_bytes:
                raise Refusal(413, f"The upload is larger than the {max_upload_bytes // 2**20} MB limit.", "too_large")

        def work():
            try:
                picture = load_image(io.BytesIO(bytes(data)), searcher.config.max_upload_pixels)
            except ImageError as exc:  # worded as the UI words it
                raise QueryError(f"That upload cannot be used as an image: {exc}.") from exc
            return searcher.search(q, picture, k, min_score, filters, mode, None, image_weight)

        return await run(request, q, work)

    @api.get("/items/{item_id}", response_model=Item, summary="One indexed item's listing")
    async def item(request: Request, item_id: str):
        listing = searcher.item(item_id).public()
        return Item(**{k: v for k, v in listing.items() if k in Item.model_fields})

    @api.get("/items/{item_id}/similar", response_model=SearchResponse, summary="Items that look like this one")
    async def similar(
        request: Request,
        item_id: str,
        k: int = Query(None, description=f"results, 1..{MAX_K}"),
        filters: str | None = Query(None),
        min_score: float | None = Query(None),
    ):
        return await run(request, None, lambda: searcher.more_like_this(item_id, k, min_score, filters))

    @api.get(
        "/items/{item_id}/image",
        summary="The item's picture",
        response_class=FileResponse,
        responses={200: {"content": {"image/*": {}}}},
    )
    async def picture(item_id: str):
        snap = searcher.snapshot
        if item_id not in snap.index:
            raise ItemNotFound(f"No item {item_id!r} in this index.")
        path = Path(str(snap.index.items["image"].iat[snap.index.row(item_id)]))
        if not path.is_file():
            raise Refusal(404, f"The picture of item {item_id!r} is no longer on the server.", "not_found")
        return FileResponse(path, headers={"Cache-Control": "public, max-age=3600"})

    @api.get("/info", response_model=Info, summary="The model and index being served")
    async def info():
        index = searcher.index
        m = index.manifest
        age = monitoring.index_age_s(m)
        return Info(
            model=searcher.encoder.model_id,
            index_kind=index.kind,
            items=len(index),
            catalog=str(m.get("catalog_name", m.get("catalog", ""))),
            built_at=m.get("built_at"),
            index_age_s=None if age is None else round(age, 1),
            near_duplicate_pairs=m.get("near_duplicate_pairs"),
            search_mode=searcher.config.search_mode,
            versions=versions,
        )

    return api
