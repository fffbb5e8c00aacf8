"""One indexed item: its listing, its similar items (by its stored embedding) and its picture."""

from __future__ import annotations

from pathlib import Path as FilePath
from typing import Annotated

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import FileResponse

from mmsearch.search.request import FacetText, ItemId, K, MinScore, Offset, SortText
from mmsearch.search.request import Filters as FilterText
from mmsearch.search.results import ItemNotFound, Listing
from mmsearch.serve.deployment import DeploymentDep
from mmsearch.serve.guard import Refusal
from mmsearch.serve.rest import COMMON, SearchAnswer, guarded, statuses
from mmsearch.serve.routes.search import described

router = APIRouter(prefix="/api/items", route_class=guarded(), tags=["items"])
ItemPath = Annotated[ItemId, Path(description="an indexed item's id")]


@router.get(
    "/{item_id}", response_model=Listing, summary="One indexed item's listing", responses=statuses(400, 404, *COMMON)
)
async def item(deployment: DeploymentDep, item_id: ItemPath):
    return deployment.searcher.item(item_id).public(Listing.PUBLIC)


@router.get(
    "/{item_id}/similar",
    response_model=SearchAnswer,
    summary="Items similar to this one (by its stored embedding)",
    responses=statuses(400, 404, *COMMON, 503),
)
async def similar(
    request: Request,
    deployment: DeploymentDep,
    item_id: ItemPath,
    k: Annotated[K, Query(**described("k"))] = None,
    filters: Annotated[FilterText, Query(**described("filters"))] = None,
    min_score: Annotated[MinScore, Query(**described("min_score"))] = None,
    offset: Annotated[Offset, Query(**described("offset"))] = None,
    sort: Annotated[SortText, Query(**described("sort"))] = None,
    facets: Annotated[FacetText, Query(**described("facets"))] = None,
):
    wanted = deployment.searcher.request(
        item_id=item_id, k=k, filters=filters, min_score=min_score, offset=offset, sort=sort, facets=facets
    )
    return await deployment.answer(request, wanted)


@router.get(
    "/{item_id}/image",
    summary="The item's picture",
    response_class=FileResponse,
    responses={200: {"content": {"image/*": {}}, "description": "the picture"}} | statuses(400, 404, *COMMON),
)
async def image(
    deployment: DeploymentDep,
    item_id: ItemPath,
    picture: Annotated[
        int, Query(ge=0, le=999, description="which of the product's pictures: 0 (the default) is its first")
    ] = 0,
):
    snap = deployment.searcher.snapshot
    if item_id not in snap.index:
        raise ItemNotFound(f"No item {item_id!r} in this index.")
    paths = snap.index.picture_paths(item_id)
    if picture >= len(paths):
        raise Refusal(
            404,
            f"Item {item_id!r} has {len(paths)} picture{'s' * (len(paths) > 1)}: picture={picture} is not one.",
            "not_found",
        )
    path = FilePath(paths[picture])
    if not path.is_file():
        raise Refusal(404, f"The picture of item {item_id!r} is no longer on the server.", "not_found")
    headers = {"Cache-Control": "public, max-age=3600"}
    if path.suffix.lower() == ".svg":  # an SVG opened on its own runs its scripts on this origin: not here
        headers["Content-Security-Policy"] = SVG_POLICY
    return FileResponse(path, headers=headers)


SVG_POLICY = "default-src 'none'; style-src 'unsafe-inline'; sandbox"
