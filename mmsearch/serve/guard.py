"""What stands between a caller and the searcher: the queue bound, per-client rate limits, access control, and the
rule that an input naming a file must name one this server received.

The REST routes and the Gradio events share the rate limit and the upload rule; Gradio's own queue (``max_size``)
bounds its events, and ``Gate`` bounds the REST routes the same way, so neither side grows latency without bound.
"""

from __future__ import annotations

import asyncio
import base64
import math
import os
import secrets
import threading
import time
from pathlib import Path

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


def parse_auth(spec: str) -> tuple[str, str] | None:
    """``user:password`` -> (user, password); empty -> None (an open deployment)."""
    spec = (spec or "").strip()
    if not spec:
        return None
    user, sep, password = spec.partition(":")
    if not sep or not user or not password:
        raise ValueError("MMSEARCH_AUTH must look like user:password (both parts non-empty)")
    return user, password


def authorized(header: str | None, credentials: tuple[str, str] | None) -> bool:
    """A REST caller's ``Authorization`` header: ``Bearer <password>`` or HTTP basic ``user:password``."""
    if credentials is None:
        return True
    scheme, _, value = (header or "").strip().partition(" ")
    user, password = credentials
    if scheme.lower() == "bearer":
        return secrets.compare_digest(value.strip().encode(), password.encode())
    if scheme.lower() == "basic":
        try:
            given = base64.b64decode(value.strip(), validate=True).decode()
        except (ValueError, UnicodeDecodeError):
            return False
        return secrets.compare_digest(given.encode(), f"{user}:{password}".encode())
    return False


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


def _named_paths(value: object):
    """Every file path a Gradio payload names: the ``path`` of each FileData object, however deeply nested."""
    if isinstance(value, dict):
        if isinstance(value.get("path"), str) and (
            "meta" in value or "orig_name" in value or "url" in value or len(value) <= 3
        ):
            yield value["path"]
        for v in value.values():
            yield from _named_paths(v)
    elif isinstance(value, list):
        for v in value:
            yield from _named_paths(v)


class GradioDoor:
    """ASGI middleware in front of Gradio's event routes.

    - An event whose inputs name a server file that was not uploaded (anything outside the upload folder, or a path
      that does not resolve) is refused before Gradio copies it anywhere, with NOT_UPLOADED whatever the path.
      http(s) URLs pass: Gradio fetches those itself, through its public-address-only client.
    - A raw HTTP call (``/gradio_api/call/<name>`` or ``/run/<name>``) with too few inputs is told which are missing,
      by name, instead of Gradio's message about component objects."""

    EVENT_PATHS = ("/gradio_api/queue/join", "/gradio_api/call/", "/gradio_api/run/", "/gradio_api/api/")
    MAX_BODY = 4 << 20  # an event's JSON: files travel separately, through /gradio_api/upload

    def __init__(self, app, upload_dir: str | Path, inputs: dict[str, list[str]] | None = None):
        self.app, self.upload_dir, self.inputs = app, upload_dir, inputs or {}

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope["method"] != "POST" or not scope["path"].startswith(self.EVENT_PATHS):
            return await self.app(scope, receive, send)
        body, more = b"", True
        while more:
            message = await receive()
            body += message.get("body", b"")
            more = message.get("more_body", False)
            if len(body) > self.MAX_BODY:
                return await _json(send, 413, {"error": "The request is too large."})
        payload = _parse(body)
        if not self._acceptable(payload):
            return await _json(send, 400, {"error": NOT_UPLOADED})
        missing = self._missing(scope["path"], payload)
        if missing:
            return await _json(send, 400, {"error": missing})
        replayed = False

        async def replay():
            nonlocal replayed
            if replayed:
                return await receive()
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}

        return await self.app(scope, replay, send)

    def _missing(self, path: str, payload: object) -> str:
        name = path.rstrip("/").rsplit("/", 1)[-1]
        wanted = self.inputs.get(name)
        if (
            not path.startswith(("/gradio_api/call/", "/gradio_api/run/"))
            or wanted is None
            or not isinstance(payload, dict)
        ):
            return ""
        data = payload.get("data")
        if not isinstance(data, list):
            return f'/{name} takes its inputs as a JSON list under "data", in this order: {", ".join(wanted)}.'
        if len(data) < len(wanted):
            return (
                f"/{name} needs {len(wanted)} inputs in this order: {', '.join(wanted)}; got {len(data)}, so "
                f"{', '.join(wanted[len(data) :])} {'is' if len(wanted) - len(data) == 1 else 'are'} missing "
                f"(send null for a default)."
            )
        return ""

    def _acceptable(self, payload: object) -> bool:
        for path in _named_paths(payload):
            if path.startswith(("http://", "https://")):
                continue
            try:
                uploaded_file(path, self.upload_dir)
            except Forbidden:
                return False
        return True


def _parse(body: bytes) -> object:
    import json

    try:
        return json.loads(body or b"null")
    except ValueError:
        return None  # not JSON: Gradio answers it with its own error


async def _json(send, status: int, body: dict) -> None:
    import json

    data = json.dumps(body).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(data)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": data})
