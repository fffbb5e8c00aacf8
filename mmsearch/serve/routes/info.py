"""What is being served: the model, the index and the versions of the libraries that matter."""

from __future__ import annotations

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field

from mmsearch.serve import monitoring
from mmsearch.serve.deployment import DeploymentDep
from mmsearch.serve.rest import COMMON, guarded, statuses

router = APIRouter(prefix="/api", route_class=guarded(), tags=["service"])


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
    build: str = Field(description="the build being served (X-MMSearch-Build names the one behind each answer)")
    replica: dict | None = Field(
        None, description="under --replicas, the replica that answered: its id, process id and node; else null"
    )


@router.get("/info", response_model=Info, summary="The model and index being served", responses=statuses(*COMMON))
async def info(request: Request, deployment: DeploymentDep):
    searcher = deployment.searcher
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
        versions=deployment.versions,
        build=searcher.snapshot.build,
        replica=request.app.state.replica,
    )
