"""What a balancer and a scraper read: ``/healthz`` (the process answers), ``/readyz`` (ready or not: the index is
loaded, the feature store answers and holds its rows, the vector store and database answer, the listings were read
ahead; the checks themselves with ?verbose=1), ``/metrics`` (Prometheus, behind --auth when set) and
``/metrics/targets`` (every process whose metrics make up the service's: this one, or each replica under --replicas,
as Prometheus' HTTP service discovery reads them)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import BaseModel, Field

from mmsearch.feedback.database import reachable
from mmsearch.serve import monitoring
from mmsearch.serve.auth import NEEDS_TOKEN, authorized
from mmsearch.serve.deployment import DeploymentDep
from mmsearch.serve.rest import statuses
from mmsearch.store.errors import StoreUnavailable

router = APIRouter(tags=["service"])


class Health(BaseModel):
    status: str


class Readiness(BaseModel):
    ready: bool
    checks: dict[str, bool] | None = Field(None, description="each check, with ?verbose=1 (and the token when locked)")
    items: int | None = Field(None, description="items in the loaded index, with ?verbose=1")


@router.get("/healthz", response_model=Health, summary="The process is up", responses=statuses(405))
async def healthz() -> dict:
    return {"status": "ok"}


@router.get(
    "/livez",
    response_model=Health,
    summary="The process is up: a liveness probe (Kubernetes restarts a process that fails it; /readyz says whether "
    "to send it traffic, and fails while a part it depends on is down, which a restart would not mend)",
    responses=statuses(405),
)
async def livez() -> dict:
    return {"status": "ok"}


@router.get(
    "/readyz",
    response_model=Readiness,
    response_model_exclude_none=True,
    summary="Ready or not: the index is loaded, the feature store answers and holds its rows, the vector store and "
    "the database answer, and the listings were read ahead. A balancer learns nothing more; ?verbose=1 adds each "
    "check and the item count for whoever may read the API (the token, on a locked server); /metrics has them too "
    "(mmsearch_ready_check)",
    responses={503: {"model": Readiness, "description": "not ready"}} | statuses(405),
)
def readyz(request: Request, deployment: DeploymentDep, verbose: bool = False) -> JSONResponse:
    searcher = deployment.searcher
    checks = {
        "index": len(searcher.index) > 0,
        "feature_store": holds_its_rows(searcher),
        "vector_store": searcher.index.how.reachable(searcher.index.engine),
        "database": reachable(deployment.feedback.engine),
        "listings_read_ahead": deployment.listings_read.is_set(),
    }
    for name, passed in checks.items():
        monitoring.READY_CHECK.labels(name).set(1.0 if passed else 0.0)
    ready = all(checks.values())
    body: dict = {"ready": ready}
    if verbose and authorized(request.headers.get("authorization"), deployment.credentials):
        body |= {"checks": checks, "items": len(searcher.index)}
    return JSONResponse(body, status_code=200 if ready else 503)


def holds_its_rows(searcher) -> bool:
    """The online store answers, and holds the loaded index's rows (a Redis restarted empty does not)."""
    try:
        return searcher.index.held_by(searcher.store)
    except StoreUnavailable:
        return False


@router.get(
    "/metrics",
    summary="Prometheus metrics",
    response_class=Response,
    responses={200: {"content": {"text/plain": {"schema": {"type": "string"}}}, "description": "metrics"}}
    | statuses(401, 405),
)
def metrics(request: Request, deployment: DeploymentDep) -> Response:
    if refused := _locked(request, deployment):
        return refused
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)


@router.get(
    "/metrics/targets",
    summary="Where Prometheus scrapes this service's metrics: this process, or under --replicas each replica's own "
    "port, labelled with its name (a Prometheus http_sd_configs list; sum over them for the service's figures)",
    responses=statuses(401, 405),
)
def metrics_targets(request: Request, deployment: DeploymentDep):
    if refused := _locked(request, deployment):
        return refused
    if request.app.state.replica is None:
        return [{"targets": [request.url.netloc], "labels": {"replica": "main"}}]
    from mmsearch.serve import roster

    return roster.targets()


def _locked(request: Request, deployment) -> JSONResponse | None:
    """The 401 for a caller without the token on a locked server (the metrics routes are outside /api's guard)."""
    if authorized(request.headers.get("authorization"), deployment.credentials):
        return None
    return JSONResponse({"error": NEEDS_TOKEN}, status_code=401, headers={"WWW-Authenticate": "Bearer"})
