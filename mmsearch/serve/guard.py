"""What stands between a caller and the searcher, whichever way it came in (REST, a UI event, an agent tool).

``Guard.request`` is the one wrapper every way in uses: it takes the client's rate-limit token, maps any failure to
one ``Refusal`` (status, kind, a message for people), and writes the request's metrics and its JSON log line. Each way
in only translates a refusal into its own transport (a JSON error, the UI's error box). Beside it: the queue bound
(``Gate``, for REST; Gradio's own queue bounds its events), per-client token buckets shared by REST and the UI,
access control, and the rule that an input naming a file must name one this server received.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import math
import os
import secrets
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from mmsearch.ingest.images import ImageError
from mmsearch.search.results import ItemNotFound, QueryError
from mmsearch.serve import monitoring
from mmsearch.store.features import StoreUnavailable
from mmsearch.store.judgments import JudgmentError
from mmsearch.store.searchlog import EventError, UnknownQuery

log = logging.getLogger("mmsearch.guard")

# One message whatever the reason: a caller must not learn whether a path exists on the server.
NOT_UPLOADED = (
    "That image was not uploaded to this server. Send the file itself (an upload), not a path or a URL; "
    "to search by an indexed item, use more-like-this with its id."
)


NEEDS_TOKEN = "This server needs a token: send 'Authorization: Bearer <token>'."


class Busy(RuntimeError):
    """Too many searches waiting, or this client is over its rate; the caller should retry after ``retry_after``."""

    def __init__(self, message: str, retry_after: float, reason: str):
        super().__init__(message)
        self.retry_after, self.reason = retry_after, reason


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


class Gate:
    """At most ``concurrency`` searches at once and ``max_queue`` waiting; past that, Busy at once."""

    def __init__(self, concurrency: int, max_queue: int):
        self.concurrency, self.max_queue = max(1, int(concurrency)), max(0, int(max_queue))
        self._slots: asyncio.Semaphore | None = None  # made inside the server's event loop
        self.waiting = 0

    async def __aenter__(self) -> Gate:
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


Credentials = tuple[tuple[str, str], ...]


def parse_auth(spec: str) -> Credentials | None:
    """``user:password`` (several separated by ',', one per rater) -> ((user, password), ...); empty -> None
    (an open deployment)."""
    spec = (spec or "").strip()
    if not spec:
        return None
    users = []
    for part in spec.split(","):
        user, sep, password = part.strip().partition(":")
        if not sep or not user or not password:
            raise ValueError(
                "MMSEARCH_AUTH must look like user:password, or several as user:password,user2:password2 "
                "(both parts non-empty)"
            )
        users.append((user, password))
    if len({u for u, _ in users}) != len(users):
        raise ValueError("MMSEARCH_AUTH names a user twice")
    return tuple(users)


def user_of(header: str | None, credentials: Credentials | None) -> str | None:
    """Whose ``Authorization`` header this is (``Bearer <password>`` or HTTP basic ``user:password``), or None."""
    if credentials is None:
        return None
    scheme, _, value = (header or "").strip().partition(" ")
    found = None
    if scheme.lower() == "bearer":
        for user, password in credentials:  # every one compared, so the time does not tell which matched
            if secrets.compare_digest(value.strip().encode(), password.encode()):
                found = user
    elif scheme.lower() == "basic":
        try:
            given = base64.b64decode(value.strip(), validate=True).decode()
        except (ValueError, UnicodeDecodeError):
            return None
        for user, password in credentials:
            if secrets.compare_digest(given.encode(), f"{user}:{password}".encode()):
                found = user
    return found


def authorized(header: str | None, credentials: Credentials | None) -> bool:
    """A REST caller may search: the deployment is open, or the header is one of its users'."""
    return credentials is None or user_of(header, credentials) is not None


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


def refusal(exc: BaseException) -> Refusal:
    """The one table from a failure to what the caller is told."""
    if isinstance(exc, Refusal):
        return exc
    if isinstance(exc, Busy):
        monitoring.REJECTED.labels(exc.reason).inc()
        return Refusal(429, str(exc), "busy", {"Retry-After": str(max(1, math.ceil(exc.retry_after)))})
    if isinstance(exc, (ItemNotFound, UnknownQuery)):
        return Refusal(404, str(exc), "not_found")
    if isinstance(exc, (JudgmentError, EventError)):  # a judgment or an event the store refuses, with the reason
        return Refusal(400, str(exc), type(exc).__name__)
    if isinstance(exc, Forbidden):
        return Refusal(400, str(exc), "QueryError")
    if isinstance(exc, (QueryError, ImageError)):
        return Refusal(400, str(exc), type(exc).__name__)
    if isinstance(exc, StoreUnavailable):
        return Refusal(503, f"Search is unavailable: {exc}", "StoreUnavailable")
    log.error("a request failed", exc_info=exc)  # a defect: the caller gets a plain line, the log the traceback
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
