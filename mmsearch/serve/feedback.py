"""What the server keeps of how its answers are used, for every way in (REST, the UI, the agent tools): each answer
gets a ``query_id`` and is logged with what it showed; events on its results are checked against it; judgments are
kept; and with ``--interleave`` a share of text searches is answered by two rankers interleaved.

Client addresses are never kept: a client is a salted hash (the salt is a random secret made once in the data
directory), and so is any ``client_id`` a shop sends. Who may judge and read analytics is decided here too
(``Access``): on a server with users (``--auth``) a logged-in user, whose name is the rater; on an open server no
one, unless ``--judging open``.
"""

from __future__ import annotations

import hashlib
import os
import random
import secrets
import time
from pathlib import Path

import pandas as pd

from mmsearch.config import Config
from mmsearch.evaluate import analytics
from mmsearch.search.interleave import team_draft
from mmsearch.search.results import Answer, ItemNotFound
from mmsearch.search.searcher import MODES, Searcher
from mmsearch.serve import monitoring
from mmsearch.serve.guard import Refusal
from mmsearch.store.database import open_configured
from mmsearch.store.judgments import Judgment, Judgments, checked
from mmsearch.store.records import MAX_RATER
from mmsearch.store.searchlog import Event, Search, SearchLog, new_query_id

SALT_FILE = "client-salt"
JUDGING_OFF = (
    "Judging and analytics are off on this server: they show every visitor's queries. Start it with users "
    "(MMSEARCH_AUTH=name:password,...) or with --judging open."
)
NEEDS_RATER = f"Say who is rating: a rater name of 1 to {MAX_RATER} characters."
NOT_RECORDING = "This server does not record events (it was started with --no-record)."


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


class Access:
    """Who may judge and read analytics: ``users`` is whether the server has logins (--auth)."""

    def __init__(self, users: bool, judging: str):
        self.users, self.open = users, judging == "open"

    @property
    def enabled(self) -> bool:
        return self.users or self.open

    def rater(self, user: str | None, named: str | None) -> str:
        """The rater's name: the logged-in user's on a server with users (a name in the request is ignored), else
        the one the request gives; refusals say why."""
        self.check()
        if self.users:
            if not user:
                raise Refusal(401, "Log in to judge: send the Authorization header of a user.", "unauthorized")
            return user
        name = " ".join(str(named or "").split())
        if not name or len(name) > MAX_RATER:
            raise Refusal(400, NEEDS_RATER, "invalid_parameter")
        return name

    def check(self) -> None:
        if not self.enabled:
            raise Refusal(403, JUDGING_OFF, "judging_off")


class Feedback:
    """``searcher`` serves; ``other`` (the Compare tab's model) is judged beside it; ``rival`` is what --interleave
    compares online (it may be ``other``)."""

    def __init__(
        self,
        config: Config,
        searcher: Searcher,
        other: Searcher | None = None,
        rival: Searcher | None = None,
        users: bool = False,
    ):
        self.config, self.searcher = config, searcher
        self.searchers = [s for s in (searcher, other) if s is not None]  # the systems a rater's pool comes from
        self.engine = open_configured(config)
        self.log = SearchLog(self.engine, config.events_flush_s, config.analytics_days) if config.record else None
        self.judgments = Judgments(self.engine)
        self.access = Access(users, config.judging)
        self._salt = client_salt(config.data_dir)
        self._rng = random.Random()
        self.rival_mode = config.interleave if config.interleave in MODES else None
        self.rival = rival  # a second model's searcher (--interleave <model spec>)
        self.interleaving = bool(self.rival_mode or self.rival) and config.interleave_share > 0

    def client_id(self, client: str | None) -> str | None:
        if not client:
            return None
        return hashlib.blake2b(client.encode(), key=self._salt, digest_size=12).hexdigest()

    def text_answer(
        self,
        searcher: Searcher,
        query: str,
        k: int | None = None,
        min_score: float | None = None,
        filters: str | None = None,
        mode: str | None = None,
        keyword_weight: float | None = None,
    ) -> Answer:
        """A text search; with --interleave, a share of those in the served mode (no ``mode`` asked for) come back
        as a team-draft interleaving of the served ranker (team A) and the other one (team B)."""
        answer = searcher.search_text(query, k, min_score, filters, mode, keyword_weight)
        if not self.interleaving or searcher is not self.searcher or mode not in (None, "", self.config.search_mode):
            return answer
        if self._rng.random() >= self.config.interleave_share:
            return answer
        if self.rival is not None:
            other = self.rival.search_text(query, k, min_score, filters, None, keyword_weight)
        else:
            other = searcher.search_text(query, k, min_score, filters, self.rival_mode, keyword_weight)
        size = max(len(answer), len(other))
        ids, teams = team_draft([r.item_id for r in answer], [r.item_id for r in other], size, self._rng)
        found = {r.item_id: r for r in other} | {r.item_id: r for r in answer}
        merged = Answer(
            [found[i] for i in ids],
            answer.mode,
            answer.kind,
            answer.match,
            answer.standing,
            answer.affinity,
            answer.coverage,
        )
        merged.teams = teams
        return merged

    def record(self, answer: Answer, query: str | None, source: str, client: str | None, started: float) -> str:
        """Gives ``answer`` its query_id and logs it (behind the request: see store/searchlog.py)."""
        answer.query_id = new_query_id()
        took_ms = round(1000 * (time.perf_counter() - started), 2)
        match = answer.match if len(answer) else "empty"
        monitoring.ANSWERS.labels(match).inc()
        if self.log is not None:
            self.log.searched(
                Search(
                    answer.query_id,
                    time.time(),
                    query.strip() if isinstance(query, str) and query.strip() else None,
                    answer.kind,
                    answer.mode,
                    self.searcher.encoder.model_id,
                    match,
                    tuple(r.item_id for r in answer),
                    took_ms,
                    self.client_id(client),
                    source,
                    None if answer.teams is None else tuple(answer.teams),
                )
            )
        return answer.query_id

    def event(self, query_id: str, item_id: str, position: int, action: str, client: str | None) -> Event:
        """An event on a result, checked against its answer and queued (store/searchlog.py): every way in (REST, a
        click in the gallery) comes here. Raises EventError (UnknownQuery) with a message for people."""
        if self.log is None:
            raise Refusal(409, NOT_RECORDING, "off")
        event = self.log.event(query_id, item_id, position, action, self.client_id(client))
        monitoring.count_event(action)
        return event

    def judge(self, query: object, item_id: object, grade: object, rater: str) -> Judgment:
        """Keeps one grade, committed before it returns (REST answers 201 after it, the Judge tab shows the next
        result after it): JudgmentError for a bad field, ItemNotFound for an item no loaded index holds."""
        kept = checked(query, item_id, grade, rater)
        if not any(kept.item_id in s.snapshot.index for s in self.searchers):
            raise ItemNotFound(f"No item {kept.item_id!r} in this server's index.")
        self.judgments.add([kept])
        monitoring.JUDGMENTS.inc()
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
