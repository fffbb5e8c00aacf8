"""Keeping a visitor's UI session on one replica (``app.py --replicas``): Gradio holds a session's queue and event
state in one process, so every request of a page must reach the replica that served it.

The page sets a session cookie (``ReplicaHeaders``); Ray Serve's proxy hands each request's Cookie header to the
router as its session (``RAY_SERVE_SESSION_ID_HEADER_KEY=cookie``, set by mmsearch/replicas.py before Ray starts), and
``StickySessions`` hashes the cookie's value alone onto Serve's consistent-hash ring of replicas: a replica lost or
added moves only its own sessions. Requests without the cookie (REST clients) get a fresh key each, spread evenly.
"""

from __future__ import annotations

import uuid
from http.cookies import CookieError, SimpleCookie

from ray.serve.experimental.consistent_hash_router import ConsistentHashRouter

SESSION_COOKIE = "mmsearch_session"


def session_of(cookie_header: str | None) -> str | None:
    """The UI session a request belongs to: the value of its ``mmsearch_session`` cookie, if it has one."""
    if not cookie_header:
        return None
    try:
        cookies = SimpleCookie(cookie_header)
    except CookieError:  # a malformed Cookie header is a request without a session, not an error
        return None
    morsel = cookies.get(SESSION_COOKIE)
    return morsel.value if morsel is not None and morsel.value else None


class ReplicaHeaders:
    """ASGI middleware of a replica: every answer names it (``X-MMSearch-Replica``), and a page (HTML) given to a
    browser without a session gets one, so its later requests (Gradio's queue, its event stream, uploads) reach this
    same replica."""

    def __init__(self, app, replica: str):
        self.app, self.replica = app, replica.encode()

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        cookie = next((v.decode("latin-1") for k, v in scope.get("headers", []) if k == b"cookie"), None)
        needs_session = session_of(cookie) is None

        async def named(message):
            if message["type"] == "http.response.start":
                headers = [*message.get("headers", []), (b"x-mmsearch-replica", self.replica)]
                html = any(k.lower() == b"content-type" and v.startswith(b"text/html") for k, v in headers)
                if needs_session and html:
                    value = f"{SESSION_COOKIE}={uuid.uuid4().hex}; Path=/; HttpOnly; SameSite=Lax"
                    headers.append((b"set-cookie", value.encode()))
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, named)


class StickySessions(ConsistentHashRouter):
    """Serve's consistent-hash router keyed on the session cookie alone: the whole Cookie header would move a
    visitor to another replica whenever any other cookie of the site changed."""

    def _routing_key(self, pending_request):
        if pending_request is not None:
            session = session_of(pending_request.metadata.session_id)
            if session:
                return session
        return super()._routing_key(pending_request)  # no session: a fresh id per request, spread evenly
