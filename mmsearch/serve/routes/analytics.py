"""How search is used (judging must be on): ``GET /api/analytics`` summarises the searches and events of the last
days, ``GET /api/analytics/ubi`` exports them as User Behavior Insights JSON lines."""

from __future__ import annotations

import asyncio
import time
from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.responses import Response

from mmsearch import inputs
from mmsearch.feedback import analytics
from mmsearch.serve.deployment import Deployment, DeploymentDep
from mmsearch.serve.rest import COMMON, guarded, statuses

MAX_DAYS = 3660
Days = inputs.bounded(float, ("days",), 0, MAX_DAYS, above=True)
router = APIRouter(prefix="/api/analytics", route_class=guarded(), tags=["feedback"])
DAYS = Query(description=f"how many days back, more than 0 and at most {MAX_DAYS}")


async def usage(deployment: Deployment, days: float):
    """The searches and events of the last ``days``, once what waits for its batch is written."""
    deployment.feedback.access.check()
    return await asyncio.to_thread(deployment.feedback.usage, days)


@router.get(
    "",
    summary="Searches per day, top, no-result, weak and no-click queries, clicks, latency",
    responses=statuses(400, 403, *COMMON),
)
async def summary(deployment: DeploymentDep, days: Annotated[Days, DAYS] = 7) -> dict:
    s, e = await usage(deployment, days)
    return analytics.summary(s, e, days) | {"generated_at": time.time()}


@router.get(
    "/ubi",
    summary="The searches and events as User Behavior Insights JSON lines",
    response_class=Response,
    responses={200: {"content": {"application/x-ndjson": {"schema": {"type": "string"}}}, "description": "UBI"}}
    | statuses(400, 403, *COMMON),
)
async def ubi(deployment: DeploymentDep, days: Annotated[Days, DAYS] = 7):
    s, e = await usage(deployment, days)
    lines = analytics.ubi_lines(s, e)
    return Response("\n".join(lines) + ("\n" if lines else ""), media_type="application/x-ndjson")
