"""What stands between a caller and the searcher, whichever way it came in (REST, a UI event, an agent tool).

``Guard.request`` is the one wrapper every way in uses: it takes the client's rate-limit token, maps any failure to
one ``Refusal`` (status, kind, a message for people), and writes the request's metrics and its JSON log line. Each way
in only translates a refusal into its own transport (a JSON error, the UI's error box). Beside it: the queue bound
(``SearchQueue``, for REST; Gradio's own queue bounds its events), per-client token buckets shared by REST and the
UI, and the rule that an input naming a file must name one this server received.
"""

from __future__ import annotations

import asyncio
import logging
import math
import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError
from starlette.exceptions import HTTPException

from mmsearch import inputs
from mmsearch.feedback.access import JudgingOff, LoginNeeded, RaterNeeded
from mmsearch.feedback.database import out_of_reach
from mmsearch.feedback.judgments import JudgmentError
from mmsearch.feedback.loop import NotRecording
from mmsearch.feedback.searchlog import EventError, NotInAnswer, UnknownQuery
from mmsearch.index.milvus_store import VectorStoreUnavailable
from mmsearch.ingest.images import ImageError
from mmsearch.search.results import ItemNotFound, QueryError
from mmsearch.serve import monitoring
from mmsearch.store.features import StoreUnavailable

log = logging.getLogger("mmsearch.guard")

# One message whatever the reason: a caller must not learn whether a path exists on the server.
NOT_UPLOADED = (
    "That image was not uploaded to this server. Send the file itself (an upload), not a path or a URL; "
    "to search by an indexed item, ask for its similar items with its id."
)


class Busy(RuntimeError):
    """Too many searches waiting, or this client is over its rate (429), or the server's pictures' workers are all
    taken (503); the caller should retry after ``retry_after``."""

    def __init__(self, message: str, retry_after: float, reason: str, status: int = 429):
        super().__init__(message)
        self.retry_after, self.reason, self.status = retry_after, reason, status


class Forbidden(ValueError):
    """An input that names a file this server did not receive."""


class TokenBuckets:
    """One token bucket per client: ``rate`` tokens a second up to ``burst``; a search takes one."""

    def __init__(self, rate: float, burst: int = 0, max_clients: int = 100_000):
        self.rate = float(rate)
        self.burst = float(burst or max(1, math.ceil(2 * self.rate)))
        self.max_clients = max_clients
        self._buckets: dict[str, tuple[float, float]] = {}  # client -> (tokens, time of last refill)
        self._lock = threading.Lock()

    @property
    def enabled(self) -> bool:
        return self.rate > 0

    def take(self, client: str) -> None:
        """Spends one of ``client``'s tokens, or raises Busy saying when the next one comes."""
        if not self.enabled:
            return
        now = time.monotonic()
        with self._lock:
            tokens, last = self._buckets.get(client, (self.burst, now))
            tokens = min(self.burst, tokens + (now - last) * self.rate)
            if tokens < 1.0:
                self._buckets[client] = (tokens, now)
                wait = (1.0 - tokens) / self.rate
                raise Busy(
                    f"Too many searches from this client: the limit is {self.rate:g} a second "
                    f"(bursts of {self.burst:g}). Retry in {wait:.1f} s.",
                    wait,
                    "rate",
                )
            self._buckets[client] = (tokens - 1.0, now)
            if len(self._buckets) > self.max_clients:  # forget full buckets: they are what a new client gets
                self._buckets = {
                    c: (t, s) for c, (t, s) in self._buckets.items() if t + (now - s) * self.rate < self.burst
                }


class SearchQueue:
    """At most ``concurrency`` searches at once and ``max_queue`` waiting; past that, Busy at once."""

    def __init__(self, concurrency: int, max_queue: int):
        self.concurrency, self.max_queue = max(1, int(concurrency)), max(0, int(max_queue))
        self._slots: asyncio.Semaphore | None = None  # made inside the server's event loop
        self.waiting = 0

    async def __aenter__(self) -> SearchQueue:
        if self._slots is None:
            self._slots = asyncio.Semaphore(self.concurrency)
        if self.waiting >= self.max_queue:
            raise Busy(f"The server is busy: {self.waiting} searches are waiting. Retry in a moment.", 1.0, "busy")
        self.waiting += 1
        try:
            # One turn of the event loop first, so that every request already received takes its place in line:
            # searches that run on the loop without awaiting would otherwise never see one another waiting.
            await asyncio.sleep(0)
            await self._slots.acquire()
        finally:
            self.waiting -= 1
        return self

    async def __aexit__(self, *exc) -> None:
        self._slots.release()


def uploaded_file(payload: object, upload_dir: str | Path) -> str | None:
    """The path of an image input, accepted only inside ``upload_dir`` (where the server keeps what callers sent).

    Gradio events run with ``preprocess=False`` so that a bad upload gets mmsearch's message; that also means the
    payload's path comes from the caller as typed, so it is checked here, after resolving links and '..'."""
    if payload is None or payload == "":
        return None
    path = payload.get("path") if isinstance(payload, dict) else payload
    if not isinstance(path, (str, os.PathLike)) or not str(path):
        raise Forbidden(NOT_UPLOADED)
    try:
        real, root = Path(path).resolve(), Path(upload_dir).resolve()
    except (OSError, RuntimeError, ValueError) as exc:
        raise Forbidden(NOT_UPLOADED) from exc
    if real == root or root not in real.parents:
        raise Forbidden(NOT_UPLOADED)
    return str(real)


class Refusal(Exception):
    """A request turned down: REST answers ``status`` with ``{"error": message}``, the UI and the agent tools show the
    message. ``kind`` names the failure in metrics (``mmsearch_errors_total{type}``) and the log."""

    def __init__(self, status: int, message: str, kind: str, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status, self.message, self.kind, self.headers = status, message, kind, headers or {}


# The one table from a failure to what the caller is told: (failures, status, kind in metrics and the log; None
# names the failure's class). A failure in no row is a defect: the caller gets a plain line, the log the traceback.
REFUSALS = [
    ((ItemNotFound, UnknownQuery), 404, "not_found"),
    ((LoginNeeded,), 401, "unauthorized"),
    ((JudgingOff,), 403, "judging_off"),
    ((NotRecording,), 409, "off"),
    ((NotInAnswer,), 409, "EventError"),
    ((RaterNeeded,), 400, "invalid_parameter"),
    ((Forbidden,), 400, "QueryError"),
    ((JudgmentError, EventError, QueryError, ImageError), 400, None),
    ((StoreUnavailable,), 503, "StoreUnavailable"),
    ((VectorStoreUnavailable,), 503, "VectorStoreUnavailable"),
]
RETRY_LATER = {"Retry-After": "5"}  # an outage: the store's and the database's checks run every second or so


def refusal(exc: BaseException) -> Refusal:
    """What the caller of any way in is told of ``exc`` (see REFUSALS)."""
    if isinstance(exc, Refusal):
        return exc
    if isinstance(exc, Busy):
        monitoring.REJECTED.labels(exc.reason).inc()
        return Refusal(exc.status, str(exc), "busy", {"Retry-After": str(max(1, math.ceil(exc.retry_after)))})
    if isinstance(exc, (RequestValidationError, ValidationError)):
        exc = inputs.explain(exc.errors())
    if isinstance(exc, HTTPException) and isinstance(exc.__cause__, Refusal):  # refused while the framework read
        return exc.__cause__
    if isinstance(exc, HTTPException) and 400 <= exc.status_code < 500:  # a body the framework could not read
        return Refusal(exc.status_code, f"The request cannot be read: {exc.detail}", "invalid_body")
    if out_of_reach(exc):  # a database that is down answers as an outage, not as a failure of the server
        return Refusal(503, "The database is out of reach right now. Retry in a moment.", "database_down", RETRY_LATER)
    if isinstance(exc, inputs.InputError):
        return Refusal(exc.status, str(exc), "QueryError" if exc.status == 400 else "invalid_parameter")
    for failures, status, kind in REFUSALS:
        if isinstance(exc, failures):
            return Refusal(status, str(exc), kind or type(exc).__name__, RETRY_LATER if status == 503 else None)
    log.error("a request failed", exc_info=exc)
    return Refusal(500, "The server failed on this request; the failure is in its log.", type(exc).__name__)


@dataclass
class Outcome:
    """What one request did, filled in as it runs: the figures of its metrics and its log line."""

    endpoint: str
    client: str
    kind: str = ""  # text, image, text+image, similar, item: set once the request has answered
    mode: str = ""
    query: str | None = None  # kept only with --log-queries
    results: int | None = None
    status: int = 200


class Guard:
    """The rate limit, the error mapping, the metrics and the request log, for every way in."""

    def __init__(self, buckets: TokenBuckets, log_queries: bool = False):
        self.buckets, self.log_queries = buckets, log_queries

    def admit(self, outcome: Outcome) -> None:
        """Spends one of the client's tokens (a search; lookups of one item are not counted)."""
        self.buckets.take(outcome.client)

    @contextmanager
    def request(self, endpoint: str, client: str, mode: str = "", query: str | None = None) -> Iterator[Outcome]:
        """Wraps one request: any failure inside leaves as a ``Refusal``, and the request is observed either way."""
        outcome = Outcome(endpoint, client, mode=mode, query=query if self.log_queries else None)
        started, error = time.perf_counter(), ""
        try:
            yield outcome
        except Exception as exc:
            refused = refusal(exc)
            outcome.status, error = refused.status, refused.kind
            raise refused from exc
        finally:
            monitoring.observe(
                endpoint,
                time.perf_counter() - started,
                status=outcome.status,
                results=outcome.results,
                mode=outcome.mode,
                kind="" if error else outcome.kind,
                error=error,
                query=outcome.query,
                client=client,
            )
