"""Who may call: ``--auth user:password[,user:password...]`` as Gradio's login for the UI and, for REST and
/metrics, ``Authorization: Bearer <password>`` or HTTP basic. Without it the deployment is open (a public demo)."""

from __future__ import annotations

import base64
import secrets

NEEDS_TOKEN = "This server needs a token: send 'Authorization: Bearer <token>'."

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
