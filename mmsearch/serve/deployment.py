"""One deployment's parts, as every route reads them: the searcher, the feedback loop, the guard, the credentials and
the limits, kept on the app (``app.state.deployment``) and handed to a route through ``DeploymentDep``; and
``answer``, the one path from a checked request to a recorded REST answer."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from importlib.metadata import PackageNotFoundError, version
from typing import Annotated

import orjson
from fastapi import Depends, Request
from fastapi.responses import Response

from mmsearch.feedback.loop import Feedback
from mmsearch.search.request import SearchRequest
from mmsearch.search.results import Answer
from mmsearch.search.searcher import Searcher
from mmsearch.serve.auth import Credentials, user_of
from mmsearch.serve.guard import Guard, SearchQueue
from mmsearch.serve.image_work import ImageWork

LIBRARIES = ("faiss-cpu", "feast", "gradio", "torch", "open_clip_torch")


def _version(package: str) -> str:
    try:
        return version(package)
    except PackageNotFoundError:
        return "-"


@dataclass
class Deployment:
    searcher: Searcher  # interleaved with a second ranker under --interleave (feedback/interleave.py)
    feedback: Feedback
    guard: Guard
    credentials: Credentials | None
    queue: SearchQueue
    max_upload_bytes: int
    images: ImageWork  # uploads decoded and embedded off the event loop
    versions: dict[str, str] = field(default_factory=lambda: {p: _version(p) for p in LIBRARIES})
    listings_read: threading.Event = field(default_factory=threading.Event)  # set once read ahead (/readyz)

    def user(self, request: Request) -> str | None:
        """The logged-in user behind a request (None on an open server or without credentials)."""
        return user_of(request.headers.get("authorization"), self.credentials)

    async def answer(self, request: Request, wanted: SearchRequest, work=None) -> Response:
        """A search after the client's rate limit and the queue bound, recorded, as the SearchAnswer JSON; what the
        log line needs goes into the request's outcome, which the route's guard writes.

        Searches run on the event loop itself, one at a time: a search is milliseconds of mostly Python, and worker
        threads would fight over the GIL. ``work``, when given, makes the request first in the pictures' pool (an
        upload's decoding and embedding: not milliseconds, see image_work.py)."""
        # Measured with benchmarks/load.py, 16 clients, the load mix: 237 q/s in threads, 476 all on the loop, with
        # a lower p99 too.
        started = time.perf_counter()
        outcome = request.state.outcome
        outcome.query = wanted.q if self.guard.log_queries else None
        self.guard.admit(outcome)
        if work is not None:
            wanted = await self.images.run(work)
        async with self.queue:
            answer: Answer = self.searcher.search(wanted)
        outcome.mode, outcome.kind, outcome.results = answer.mode, answer.kind, len(answer)
        self.feedback.record(answer, wanted, "rest", outcome.client, started)
        # Shaped as SearchAnswer but serialised directly: a pydantic model per hit costs more than the search.
        body = answer.public() | {"took_ms": round(1000 * (time.perf_counter() - started), 2), "k": len(answer)}
        # The build that answered, so a client (or a test) can see that an answer never mixes two builds.
        return Response(orjson.dumps(body), media_type="application/json", headers={"X-MMSearch-Build": answer.build})


def deployment(request: Request) -> Deployment:
    return request.app.state.deployment


DeploymentDep = Annotated[Deployment, Depends(deployment)]
