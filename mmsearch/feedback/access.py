"""Who may judge and read analytics: on a server with users (``--auth``) a logged-in user, whose name is the rater;
on an open server no one, unless ``--judging open`` (then anyone, naming themselves). Each refusal is its own
exception, with a message for people; the guard (serve/guard.py) gives each its status."""

from __future__ import annotations

from mmsearch.feedback.records import MAX_RATER

JUDGING_OFF = (
    "Judging and analytics are off on this server: they show every visitor's queries. Start it with users "
    "(MMSEARCH_AUTH=name:password,...) or with --judging open."
)


class JudgingOff(PermissionError):
    """Judging and analytics are off on this server (403)."""


class LoginNeeded(PermissionError):
    """A server with users takes grades from logged-in users only (401)."""


class RaterNeeded(ValueError):
    """An open judging server needs the rater's name (400)."""


class Access:
    """``users``: whether the server has logins (--auth); ``judging``: '' or 'open'."""

    def __init__(self, users: bool, judging: str):
        self.users, self.open = users, judging == "open"

    @property
    def enabled(self) -> bool:
        return self.users or self.open

    def rater(self, user: str | None, named: str | None) -> str:
        """The rater's name: the logged-in user's on a server with users (a name in the request is ignored), else
        the one the request gives (already cleaned at the edge)."""
        self.check()
        if self.users:
            if not user:
                raise LoginNeeded("Log in to judge: send the Authorization header of a user.")
            return user
        name = " ".join(str(named or "").split())
        if not name or len(name) > MAX_RATER:
            raise RaterNeeded(f"Say who is rating: a rater name of 1 to {MAX_RATER} characters.")
        return name

    def check(self) -> None:
        if not self.enabled:
            raise JudgingOff(JUDGING_OFF)
