"""Search by words (``GET /api/search``) and by an uploaded picture, with or without words
(``POST /api/search/image``)."""

from __future__ import annotations

import io
from typing import Annotated

from fastapi import APIRouter, File, Form, Query, Request, UploadFile

from mmsearch.search.request import FacetText, K, MinScore, Mode, Offset, QueryParam, SearchRequest, SortText, Weight
from mmsearch.search.request import Filters as FilterText
from mmsearch.serve.deployment import DeploymentDep
from mmsearch.serve.guard import Refusal
from mmsearch.serve.rest import COMMON, SearchAnswer, given_once, guarded, statuses

router = APIRouter(prefix="/api", route_class=guarded(), tags=["search"])
UPLOAD_CHUNK = 1 << 20
IMAGES = "image/jpeg, image/png, image/webp, image/gif, image/bmp, image/tiff"  # what load_image reads
FIELDS = SearchRequest.model_fields
FORM_FIELDS = {"image", "q", "image_weight", "k", "mode", "filters", "min_score", "offset", "sort", "facets"}


def described(name: str, **more) -> dict:
    """A parameter's description, the request field's. Optional parameters are declared with the type a given one
    must have and a default of None (no ``| None``): a query string or a form cannot carry a null, so the schema
    offers none."""
    return {"description": FIELDS[name].description} | more


@router.get(
    "/search",
    response_model=SearchAnswer,
    summary="Search by words",
    responses=statuses(400, *COMMON, 503),
)
async def search(
    request: Request,
    deployment: DeploymentDep,
    q: Annotated[QueryParam, Query(**described("q"))],
    k: Annotated[K, Query(**described("k"))] = None,
    mode: Annotated[Mode, Query(**described("mode"))] = None,
    filters: Annotated[FilterText, Query(**described("filters"))] = None,
    min_score: Annotated[MinScore, Query(**described("min_score"))] = None,
    keyword_weight: Annotated[Weight, Query(**described("keyword_weight"))] = None,
    offset: Annotated[Offset, Query(**described("offset"))] = None,
    sort: Annotated[SortText, Query(**described("sort"))] = None,
    facets: Annotated[FacetText, Query(**described("facets"))] = None,
):
    wanted = deployment.searcher.request(
        q=q,
        k=k,
        mode=mode,
        filters=filters,
        min_score=min_score,
        keyword_weight=keyword_weight,
        offset=offset,
        sort=sort,
        facets=facets,
    )
    return await deployment.answer(request, wanted)


@router.post(
    "/search/image",
    response_model=SearchAnswer,
    summary="Search by an uploaded picture (and words)",
    responses=statuses(400, *COMMON, 413, 503),
    openapi_extra={
        "requestBody": {"content": {"multipart/form-data": {"encoding": {"image": {"contentType": IMAGES}}}}}
    },
)
async def search_image(
    request: Request,
    deployment: DeploymentDep,
    image: Annotated[UploadFile, File(description="a JPEG, PNG, WebP, ... picture")],
    q: Annotated[QueryParam, Form(description="optional words to search with the picture")] = None,
    image_weight: Annotated[Weight, Form(**described("image_weight"))] = None,
    k: Annotated[K, Form(**described("k"))] = None,
    mode: Annotated[Mode, Form(**described("mode"))] = None,
    filters: Annotated[FilterText, Form(**described("filters"))] = None,
    min_score: Annotated[MinScore, Form(**described("min_score"))] = None,
    offset: Annotated[Offset, Form(**described("offset"))] = None,
    sort: Annotated[SortText, Form(**described("sort"))] = None,
    facets: Annotated[FacetText, Form(**described("facets"))] = None,
):
    form = await request.form()  # the form FastAPI read: kept, not read again
    given_once([name for name, _ in form.multi_items() if name in FORM_FIELDS])
    limit = deployment.max_upload_bytes
    data = bytearray()
    while chunk := await image.read(UPLOAD_CHUNK):
        data += chunk
        if len(data) > limit:
            raise Refusal(
                413, f"The upload is larger than the {limit // 2**20} MB limit.", "too_large", {"Connection": "close"}
            )
    fields = dict(q=q, k=k, mode=mode, filters=filters, min_score=min_score, image_weight=image_weight)
    fields |= dict(offset=offset, sort=sort, facets=facets)
    wanted = deployment.searcher.request(image=bytes(data), **fields)

    def embedded() -> SearchRequest:
        return wanted.but(image=deployment.searcher.queries.embedded(io.BytesIO(wanted.image)))

    return await deployment.answer(request, wanted, embedded)
