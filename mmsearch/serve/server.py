"""The HTTP service without its UI: the routes of ``serve/routes/`` for one deployment, its OpenAPI document, and the
uvicorn that runs it all.

/api/...   REST, OpenAPI docs at /docs
/metrics   Prometheus
/healthz   the process answers (/livez: the same, named as Kubernetes' liveness probes are)
/readyz    the index is loaded, the Feast online store answers a read, and its listings were read ahead

The Gradio UI is mounted at ``/`` on this app by mmsearch/service.py.
"""

from __future__ import annotations

import json
import re

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from fastapi_offline import FastAPIOffline

from mmsearch.index import filters
from mmsearch.inputs import VISIBLE
from mmsearch.search import facets, sorting
from mmsearch.serve import monitoring
from mmsearch.serve.deployment import Deployment
from mmsearch.serve.routes import routers
from mmsearch.store import readahead


def create_api(deployment: Deployment) -> FastAPI:
    """Every route of ``serve/routes/`` for ``deployment``, each through its guard."""
    monitoring.setup_request_log()
    monitoring.SERVICE.searcher = deployment.searcher
    monitoring.SERVICE.feedback = deployment.feedback
    # /readyz waits for this: a balancer then sends no one to a server whose first searches would wait on the disk
    deployment.listings_read = readahead.in_background(deployment.searcher.store)
    # FastAPIOffline serves Swagger UI's files itself: FastAPI's default /docs loads them from a CDN, which leaves the
    # page blank on a machine without the internet.
    app = FastAPIOffline(
        title="mmsearch",
        summary="Multimodal product search: words, pictures, and similar items",
        description='REST routes beside the Gradio app. Errors are `{"error": message}`.',
    )
    app.state.deployment, app.state.documented_for = deployment, None
    app.state.replica = None  # under --replicas: this replica's id, process and node (mmsearch/replicas.py)
    for router in routers():
        app.include_router(router)
    app.openapi = lambda: documented(app, deployment)
    app.add_middleware(MethodGuard, api=app)
    # A clean stop (SIGTERM, Ctrl-C) writes the searches and events still waiting for their batch.
    app.router.on_shutdown.append(deployment.feedback.close)
    return app


def documented(app: FastAPI, deployment: Deployment) -> dict:
    """The OpenAPI document, with what this deployment decides written in: the longest query it takes, the filters
    its catalog's columns allow (remade when a swapped-in build brings other columns), and whether a grade must name
    its rater (an open judging server without users)."""
    snap = deployment.searcher.snapshot
    if app.openapi_schema is None or app.state.documented_for != list(snap.columns.names):
        schema = get_openapi(
            title=app.title, version=app.version, summary=app.summary, description=app.description, routes=app.routes
        )
        names = list(snap.columns.names.values())
        numeric = [n for n in names if facets.is_numeric(snap.columns, n)]
        limits = {
            "q": {"maxLength": deployment.searcher.config.max_query_chars},
            "filters": {"pattern": filters.grammar(list(snap.columns.names))},
            "sort": {"pattern": sorting.grammar(sorting.sortable(snap.columns, whole=True))},
            "facets": {"pattern": facets.grammar(names, numeric)},
            "image": {"minLength": 1},  # an upload of nothing is no picture
            # offset + k may not pass it either, which a schema cannot say (the parameter's description does)
            "offset": {"maximum": deployment.searcher.config.max_k - 1},
        }
        for operation in (op for path in schema["paths"].values() for op in path.values()):
            for parameter in operation.get("parameters", []):
                _constrain(parameter["schema"], limits.get(parameter["name"]))
            for media_type, media in operation.get("requestBody", {}).get("content", {}).items():
                body = _body(schema, media.get("schema", {}))
                for name, field in body.get("properties", {}).items():
                    _constrain(field, limits.get(name))
                    if media_type == "multipart/form-data" and name not in body.get("required", []):
                        # A form's empty field is a field not given (FastAPI reads it so): the schema says so.
                        body["properties"][name] = {"anyOf": [field, {"type": "string", "maxLength": 0}]}
        access = deployment.feedback.access
        judgment = schema.get("components", {}).get("schemas", {}).get("JudgmentIn")
        if access.open and not access.users and judgment is not None:
            judgment["required"] = [*judgment.get("required", []), "rater"]
            rater = judgment["properties"]["rater"]
            judgment["properties"]["rater"] = {
                **rater["anyOf"][0],
                "pattern": VISIBLE,
                "description": rater["description"],
            }
        app.openapi_schema, app.state.documented_for = schema, list(snap.columns.names)
    return app.openapi_schema


def _body(schema: dict, body: dict) -> dict:
    """A request body's schema, through its reference to the components."""
    if "$ref" in body:
        body = schema["components"]["schemas"][body["$ref"].rsplit("/", 1)[-1]]
    return body


def _constrain(field: dict, constraints: dict | None) -> None:
    """Adds ``constraints`` to a field's string variant (an optional field is a string or null), or for a bound
    (``maximum``) its integer variant."""
    kind = "integer" if constraints and "maximum" in constraints else "string"
    for variant in field.get("anyOf", [field]) if constraints else ():
        if variant.get("type") == kind:
            variant.update(constraints)


class MethodGuard:
    """A method an API route does not take is answered 405 with the methods it does (``Allow``): the Gradio app
    mounted at ``/`` would otherwise take the request and answer 404. The routes and their methods are the OpenAPI
    document's, so what it documents is what is enforced."""

    def __init__(self, app, api: FastAPI):
        self.app, self.api = app, api
        self._paths: list[tuple[re.Pattern, str]] | None = None

    def allowed(self, path: str) -> str | None:
        """The methods the route at ``path`` takes, or None for a path that is no API route."""
        if self._paths is None:
            self._paths = [
                (_template(path), ", ".join(sorted(ops)).upper()) for path, ops in self.api.openapi()["paths"].items()
            ]
        return next((methods for pattern, methods in self._paths if pattern.match(path)), None)

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http" and scope["method"] not in ("HEAD", "OPTIONS"):
            allowed = self.allowed(scope["path"])
            if allowed is not None and scope["method"] not in allowed.split(", "):
                body = json.dumps({"error": f"{scope['method']} is not allowed here; use {allowed}."}).encode()
                headers = [(b"content-type", b"application/json"), (b"allow", allowed.encode())]
                await send({"type": "http.response.start", "status": 405, "headers": headers})
                await send({"type": "http.response.body", "body": body})
                return
        await self.app(scope, receive, send)


def _template(path: str) -> re.Pattern:
    """An OpenAPI path (``/api/items/{item_id}``) as the pattern of the paths it stands for."""
    parts = re.split(r"\{[^}]+\}", path)
    return re.compile("^" + "[^/]+".join(re.escape(part) for part in parts) + "$")


def serve(app: FastAPI, settings) -> None:
    """Runs ``app`` on the settings' host and port until stopped, with the connection deadlines of connections.py."""
    import uvicorn

    from mmsearch.serve.connections import with_deadlines

    # One worker process: the searcher, its caches and the hot-reload watcher live in this process. A clean stop waits
    # at most 5 s for requests in flight: the UI's event streams stay open as long as a page does, and a stop that
    # waited for them would never end (the searches and events waiting for their batch are written after it).
    uvicorn.run(
        app,
        host=settings.host,
        port=settings.port,
        log_level="warning",
        proxy_headers=True,
        http=with_deadlines(settings.header_timeout_s, settings.body_timeout_s),
        timeout_keep_alive=settings.keep_alive_s,
        timeout_graceful_shutdown=5,
    )
