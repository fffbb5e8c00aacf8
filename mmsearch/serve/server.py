"""One process, one port: the REST API, the health and metrics routes, and the Gradio app mounted at ``/``.

/api/...   REST (api.py), OpenAPI docs at /docs
/metrics   Prometheus
/healthz   the process answers
/readyz    the index is loaded, the Feast online store answers a read, and its listings were read ahead
/          the Gradio UI and its own API (gradio_client)
"""

from __future__ import annotations

import inspect
from pathlib import Path

import gradio as gr
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from fastapi_offline import FastAPIOffline
from gradio.utils import get_upload_folder
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from mmsearch.config import Config
from mmsearch.resources import DEMO_MODEL_DIR, IN_CHECKOUT, PACKAGE_DIR, SOURCE_ROOT
from mmsearch.search.searcher import Searcher
from mmsearch.serve import monitoring
from mmsearch.serve import rest as api
from mmsearch.serve.guard import NEEDS_TOKEN, Gate, GradioDoor, TokenBuckets, authorized, parse_auth
from mmsearch.store import readahead
from mmsearch.ui.blocks import CSS, build_ui


def private_paths(config: Config, searchers: list[Searcher]) -> list[str]:
    """What Gradio must never serve, even if a path to it is guessed: the data directory (Feast stores, indexes),
    the indexes and models wherever they are, and the project's sources."""
    paths = {Path(config.data_dir), PACKAGE_DIR, DEMO_MODEL_DIR, *([SOURCE_ROOT] if IN_CHECKOUT else [])}
    for s in searchers:
        paths.add(Path(s.index.path))
        paths.add(Path(s.store.data_dir))
        model_dir = getattr(s.encoder, "path", None)
        if model_dir:
            paths.add(Path(model_dir))
    return sorted(str(p.resolve()) for p in paths)


def event_inputs(demo: gr.Blocks) -> dict[str, list[str]]:
    """Each public event's input names, in order (its function's parameters): what a raw HTTP call must send."""
    out = {}
    for fn in demo.fns.values():
        if fn.api_name and fn.fn is not None and fn.inputs:
            names = [p for p in inspect.signature(fn.fn).parameters if p not in ("request", "evt", "progress")]
            out[str(fn.api_name)] = names[: len(fn.inputs)]
    return out


def create_app(searcher: Searcher, other: Searcher | None = None) -> FastAPI:
    """The whole service; the UI is built here so that its events and the REST routes spend one client's tokens from
    the same bucket."""
    config = searcher.config
    credentials = parse_auth(config.auth)
    buckets = TokenBuckets(config.rate_limit, config.rate_burst)
    demo = build_ui(searcher, other, buckets)
    monitoring.setup_request_log()
    monitoring.SERVICE.searcher = searcher
    # /readyz waits for this: a balancer then sends no one to a server whose first searches would wait on the disk
    listings_read = readahead.in_background(searcher.store)
    # FastAPIOffline serves Swagger UI's files itself: FastAPI's default /docs loads them from a CDN, which leaves the
    # page blank on a machine without the internet.
    app = FastAPIOffline(
        title="mmsearch",
        summary="Multimodal product search: text, image, and more-like-this",
        description='REST routes beside the Gradio app. Errors are `{"error": message}`.',
    )
    app.include_router(
        api.router(
            searcher,
            buckets,
            Gate(config.concurrency, config.max_queue),
            config.max_upload_mb * 2**20,
            credentials,
            config.log_queries,
        )
    )

    @app.get("/healthz", summary="The process is up")
    def healthz() -> dict:
        return {"status": "ok"}

    @app.get("/readyz", summary="The index is loaded, the feature store answers, and its listings were read ahead")
    def readyz() -> JSONResponse:
        checks = {
            "index": len(searcher.index) > 0,
            "feature_store": searcher.store.readable(),
            "listings_read_ahead": listings_read.is_set(),
        }
        ready = all(checks.values())
        return JSONResponse(
            {"ready": ready, "checks": checks, "items": len(searcher.index)}, status_code=200 if ready else 503
        )

    @app.get("/metrics", summary="Prometheus metrics", response_class=Response)
    def metrics(request: Request) -> Response:
        if not authorized(request.headers.get("authorization"), credentials):
            return JSONResponse({"error": NEEDS_TOKEN}, status_code=401, headers={"WWW-Authenticate": "Bearer"})
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    # Gradio's own queue bounds its events as Gate bounds the REST routes.
    demo.queue(default_concurrency_limit=config.concurrency, max_size=config.max_queue)
    searchers = [s for s in (searcher, other) if s is not None]
    # Gradio copies any file an event's input names into its cache before the event runs (its own check is off
    # when it is mounted rather than launched): the middleware refuses such inputs at the door.
    app.add_middleware(GradioDoor, upload_dir=get_upload_folder(), inputs=event_inputs(demo))
    return gr.mount_gradio_app(
        app,
        demo,
        path="/",
        auth=credentials,
        allowed_paths=[],
        blocked_paths=private_paths(config, searchers),
        max_file_size=f"{config.max_upload_mb}mb",
        footer_links=["api"],
        theme=gr.themes.Soft(),
        css=CSS,
        mcp_server=config.mcp,
    )


def serve(app: FastAPI, host: str, port: int) -> None:
    import uvicorn

    # One worker process: the searcher, its caches and the hot-reload watcher live in this process.
    uvicorn.run(app, host=host, port=port, log_level="warning", proxy_headers=True, timeout_keep_alive=30)
