"""The stakeholders' loop as one object for every way in (REST, the UI, the agent tools): each answer gets a
``query_id`` and is logged with what it showed (searchlog.py); events on its results are checked against it;
grades are kept (judgments.py); analytics read both (analytics.py). Who may judge is ``Access`` (access.py).

Client addresses are never kept: a client is a salted hash (the salt is a random secret made once in the data
directory), and so is any ``client_id`` a shop sends.
"""

from __future__ import annotations

import hashlib
import os
import secrets
import time
from pathlib import Path

import pandas as pd

from mmsearch.feedback import analytics, metrics
from mmsearch.feedback.access import Access
from mmsearch.feedback.database import open_configured
from mmsearch.feedback.judgments import Judgment, Judgments, checked
from mmsearch.feedback.searchlog import Event, Search, SearchLog, new_query_id
from mmsearch.search.request import SearchRequest
from mmsearch.search.results import Answer, ItemNotFound
from mmsearch.search.searcher import Searcher
from mmsearch.settings import Settings

SALT_FILE = "client-salt"


class NotRecording(RuntimeError):
    """Events are refused: this server was started with --no-record (409)."""


def client_salt(data_dir: Path) -> bytes:
    """The secret that client hashes are salted with, made once (atomically) in the data directory."""
    path = Path(data_dir) / SALT_FILE
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{SALT_FILE}.{os.getpid()}")
        tmp.write_bytes(secrets.token_bytes(32))
        tmp.chmod(0o600)
        try:
            os.link(tmp, path)  # fails if another process made it first: then both use that one
        except FileExistsError:
            pass
        finally:
            tmp.unlink()
    return path.read_bytes()


class Feedback:
    """``searchers``: the served searcher first, then the Compare tab's model if any (a rater's pool comes from
    all of them, and a grade may name an item of any of their indexes); ``users``: whether the server has logins."""

    def __init__(self, config: Settings, searchers: list[Searcher], users: bool = False):
        self.config, self.searchers = config, searchers
        self.model_id = searchers[0].encoder.model_id
        self.engine = open_configured(config)
        self.log = (
            SearchLog(self.engine, config.events_flush_s, config.analytics_days, shared=config.replicas > 0)
            if config.record
            else None
        )
        self.judgments = Judgments(self.engine)
        self.access = Access(users, config.judging)
        self._salt = client_salt(config.data_dir)

    def client_id(self, client: str | None) -> str | None:
        if not client:
            return None
        return hashlib.blake2b(client.encode(), key=self._salt, digest_size=12).hexdigest()

    def record(self, answer: Answer, request: SearchRequest, source: str, client: str | None, started: float) -> str:
        """Gives ``answer`` its query_id and logs it (behind the request: see searchlog.py)."""
        answer.query_id = new_query_id()
        took_ms = round(1000 * (time.perf_counter() - started), 2)
        match = answer.match if len(answer) else "empty"
        metrics.ANSWERS.labels(match).inc()
        if self.log is not None:
            teams = None if answer.teams is None else tuple(answer.teams)
            ids = tuple(h.item_id for h in answer)
            self.log.searched(
                Search(
                    answer.query_id,
                    time.time(),
                    request.q or None,
                    answer.kind,
                    answer.mode,
                    self.model_id,
                    match,
                    ids,
                    took_ms,
                    self.client_id(client),
                    source,
                    teams,
                )  # fmt: skip
            )
        return answer.query_id

    def event(self, query_id: str, item_id: str, position: int, action: str, client: str | None) -> Event:
        """An event on a result, checked against its answer and queued (searchlog.py): every way in (REST, a click
        in the gallery) comes here. Raises EventError (UnknownQuery) with a message for people."""
        if self.log is None:
            raise NotRecording("This server does not record events (it was started with --no-record).")
        event = self.log.event(query_id, item_id, position, action, self.client_id(client))
        metrics.count_event(action)
        return event

    def judge(self, query: object, item_id: object, grade: object, rater: str) -> Judgment:
        """Keeps one grade, committed before it returns (REST answers 201 after it, the Judge tab shows the next
        result after it): JudgmentError for a bad field, ItemNotFound for an item no loaded index holds."""
        kept = checked(query, item_id, grade, rater)
        if not any(kept.item_id in s.snapshot.index for s in self.searchers):
            raise ItemNotFound(f"No item {kept.item_id!r} in this server's index.")
        self.judgments.add([kept])
        metrics.JUDGMENTS.inc()
        return kept

    def usage(self, days: float) -> tuple[pd.DataFrame, pd.DataFrame]:
        """The searches and events of the last ``days``, once what waits for its batch is written."""
        if self.log is not None:
            self.log.flush()
        return analytics.load(self.engine, days)

    def close(self) -> None:
        if self.log is not None:
            self.log.close()
        self.engine.dispose()
