"""Keeping a UI session on one replica: the session cookie read from a Cookie header, and the replica's middleware
that names it on every answer and gives a page's visitor a session."""

import asyncio

import pytest

pytest.importorskip("ray.serve", reason="pip install 'ray[serve]==2.60.0' (requirements.txt pins it)")

from mmsearch.serve.sticky import SESSION_COOKIE, ReplicaHeaders, session_of  # noqa: E402


@pytest.mark.parametrize(
    "header, session",
    [
        (f"{SESSION_COOKIE}=abc123", "abc123"),
        (f"theme=dark; {SESSION_COOKIE}=abc123; other=1", "abc123"),  # other cookies do not move a visitor
        ("theme=dark", None),
        ("", None),
        (None, None),
        (f"{SESSION_COOKIE}=", None),
        ('a="unterminated; b', None),  # malformed: no session, no error
    ],
)
def test_the_session_is_the_cookies_value_alone(header, session):
    assert session_of(header) == session


def answered(content_type: bytes, cookie: str | None = None, path: str = "/") -> dict[bytes, list[bytes]]:
    async def app(scope, receive, send):
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", content_type)]})
        await send({"type": "http.response.body", "body": b"x"})

    sent = []

    async def send(message):
        sent.append(message)

    headers = [(b"cookie", cookie.encode())] if cookie else []
    scope = {"type": "http", "method": "GET", "path": path, "headers": headers}
    asyncio.run(ReplicaHeaders(app, "r1")({**scope}, None, send))
    out: dict[bytes, list[bytes]] = {}
    for k, v in sent[0]["headers"]:
        out.setdefault(k, []).append(v)
    return out


def test_every_answer_names_its_replica_and_only_a_page_gives_a_session():
    page = answered(b"text/html; charset=utf-8")
    assert page[b"x-mmsearch-replica"] == [b"r1"]
    (cookie,) = page[b"set-cookie"]
    assert cookie.startswith(f"{SESSION_COOKIE}=".encode()) and b"HttpOnly" in cookie and b"Path=/" in cookie
    assert session_of(cookie.split(b";")[0].decode())
    # a script's JSON answers set no cookie (a client that keeps cookies would be held on one replica)
    assert b"set-cookie" not in answered(b"application/json", path="/api/search")
    # a visitor who has a session keeps it
    assert b"set-cookie" not in answered(b"text/html", cookie=f"{SESSION_COOKIE}=known")
