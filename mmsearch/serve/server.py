"""The HTTP service without its UI: the REST API, the health and metrics routes, and the uvicorn that runs it all.

/api/...   REST (rest.py), OpenAPI docs at /docs
/metrics   Prometheus
/healthz   the process answers
/readyz    the index is loaded, the Feast online store answers a read, and its listings were read ahead

The Gradio UI is mounted at ``/`` on this app by mmsearch/service.py.
"""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from fastapi_offline import FastAPIOffline
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from mmsearch.search.searcher import Searcher
from mmsearch.serve import feedback_api, monitoring, rest
from mmsearch.serve.feedback import Feedback
from mmsearch.serve.guard import NEEDS_TOKEN, Credentials, Gate, Guard, authorized
from mmsearch.store import readahead


def create_api(searcher: Searcher, guard: Guard, credentials: Credentials | None, feedback: Feedback) -> FastAPI:
    """REST, /metrics, /healthz and /readyz for one searcher, every route through ``guard``; ``feedback`` keeps
    searches, events and judgments."""
    config = searcher.config
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
    gate = Gate(config.concurrency, config.max_queue)
    routes = rest.route_class(guard, credentials)
    app.include_router(rest.router(searcher, feedback, gate, config.max_upload_mb * 2**20, routes))
    app.include_router(feedback_api.router(feedback, routes, credentials))
    # A clean stop (SIGTERM, Ctrl-C) writes the searches and events still waiting for their batch.
    app.router.on_shutdown.append(feedback.close)

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

    return app


def serve(app: FastAPI, host: str, port: int) -> None:
    import uvicorn

    # One worker process: the searcher, its caches and the hot-reload watcher live in this process.
    uvicorn.run(app, host=host, port=port, log_level="warning", proxy_headers=True, timeout_keep_alive=30)
