"""The log of answered searches and of the events on their results, written behind the requests.

A search gets its ``query_id`` at once and is remembered in memory (the last ``RECENT`` of them), so an event can be
checked against the answer it names (the item at that position) without a database read. Both searches and events
wait in memory and a background thread writes them in one transaction every ``flush_s`` seconds: a search never
waits on the disk. A clean stop writes what waits; a crash (``kill -9``) loses at most the last ``flush_s`` seconds
(docs/feedback.md). Judgments are not written here: they are committed before the server answers (judgments.py).
"""

from __future__ import annotations

import json
import logging
import threading
import time
import uuid
from collections import OrderedDict
from dataclasses import asdict, dataclass

from sqlalchemy import delete, insert, select
from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError

from mmsearch.store.records import MAX_ACTION, MAX_ID, events, searches

log = logging.getLogger("mmsearch.searchlog")
RECENT = 100_000  # answers kept in memory for checking events: ~40 MB at 10 results each
MAX_PENDING = 50_000  # rows waiting for the writer; past this a burst is dropped (and counted), not the server
ACTIONS_BUILT_IN = ("click", "view")
PRUNE_EVERY_S = 3600  # retention is checked at start and hourly


class EventError(ValueError):
    """An event that names no answer this server gave, or a position or item that answer did not have."""


class UnknownQuery(EventError):
    """An event naming a query_id this server never gave (or whose search has passed the retention)."""


@dataclass(frozen=True)
class Search:
    query_id: str
    at: float
    query: str | None
    kind: str
    mode: str
    model: str
    match: str
    results: tuple[str, ...]
    took_ms: float
    client_id: str | None
    source: str
    teams: tuple[str, ...] | None = None

    def row(self) -> dict:
        row = asdict(self)
        row["results"] = json.dumps(list(self.results))
        row["teams"] = None if self.teams is None else json.dumps(list(self.teams))
        return row


@dataclass(frozen=True)
class Event:
    query_id: str
    item_id: str
    position: int
    action: str
    client_id: str | None
    at: float


def new_query_id() -> str:
    return uuid.uuid4().hex


class SearchLog:
    def __init__(self, engine: Engine, flush_s: float = 1.0, keep_days: float = 0):
        self.engine, self.flush_s, self.keep_days = engine, flush_s, keep_days
        self._pruned_at = 0.0
        self._recent: OrderedDict[str, Search] = OrderedDict()
        self._searches: list[dict] = []
        self._events: list[dict] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self.dropped = 0
        self.written = {"searches": 0, "events": 0}
        self._thread = threading.Thread(target=self._run, name="mmsearch-searchlog", daemon=True)
        self._thread.start()

    def searched(self, search: Search) -> None:
        with self._lock:
            self._recent[search.query_id] = search
            if len(self._recent) > RECENT:
                self._recent.popitem(last=False)
            self._queue(self._searches, search.row())

    def answer(self, query_id: str) -> Search | None:
        """The search ``query_id`` answered: from memory, else from the database (an older or another replica's)."""
        with self._lock:
            found = self._recent.get(query_id)
        if found is not None:
            return found
        with self.engine.connect() as c:
            row = c.execute(select(searches).where(searches.c.query_id == query_id)).mappings().first()
        if row is None:
            return None
        row = dict(row)
        row["results"] = tuple(json.loads(row["results"]))
        row["teams"] = None if row["teams"] is None else tuple(json.loads(row["teams"]))
        return Search(**row)

    def event(self, query_id: str, item_id: str, position: int, action: str, client_id: str | None) -> Event:
        """Checks an event against its answer and queues it; raises EventError with a message for people."""
        action = (action or "").strip()
        if not action or len(action) > MAX_ACTION or not all(c.isalnum() or c in "_-." for c in action):
            raise EventError(
                f"action must be a name of 1 to {MAX_ACTION} letters, digits, '_', '-' or '.' "
                f"(such as {', '.join(ACTIONS_BUILT_IN)} or add_to_cart), not {action[:80]!r}"
            )
        if not isinstance(query_id, str) or not query_id or len(query_id) > 32:
            raise EventError("query_id must be the query_id of an answer from this server")
        search = self.answer(query_id)
        if search is None:
            raise UnknownQuery(f"no search with query_id {query_id!r}: send the query_id of an answer from this server")
        if not 1 <= position <= len(search.results):
            raise EventError(
                f"position {position} is outside that answer: it had {len(search.results)} results "
                "(position 1 is the first)"
            )
        if search.results[position - 1] != item_id:
            raise EventError(f"item {item_id[:MAX_ID]!r} was not at position {position} of that answer")
        event = Event(query_id, item_id, position, action, client_id, time.time())
        with self._lock:
            self._queue(self._events, asdict(event))
        return event

    def _queue(self, pending: list[dict], row: dict) -> None:
        if len(self._searches) + len(self._events) >= MAX_PENDING:
            self.dropped += 1
            return
        pending.append(row)

    def flush(self) -> None:
        """Writes what waits, in one transaction; on failure it waits for the next turn (and is logged)."""
        with self._lock:
            found, happened = self._searches, self._events
            self._searches, self._events = [], []
        if not found and not happened:
            return
        try:
            with self.engine.begin() as c:
                if found:
                    c.execute(insert(searches), found)
                if happened:
                    c.execute(insert(events), happened)
        except SQLAlchemyError:
            log.exception("could not write %d searches and %d events; retrying", len(found), len(happened))
            with self._lock:
                self._searches[:0], self._events[:0] = found, happened
            return
        self.written["searches"] += len(found)
        self.written["events"] += len(happened)

    def prune(self, days: float) -> int:
        """Deletes searches and events older than ``days``; returns how many rows went."""
        cutoff = time.time() - days * 86400
        with self._lock:
            for query_id in [q for q, s in self._recent.items() if s.at < cutoff]:
                del self._recent[query_id]
        with self.engine.begin() as c:
            gone = c.execute(delete(events).where(events.c.at < cutoff)).rowcount
            gone += c.execute(delete(searches).where(searches.c.at < cutoff)).rowcount
        return gone

    def _run(self) -> None:
        while True:
            if self.keep_days > 0 and time.time() - self._pruned_at > PRUNE_EVERY_S:
                self._pruned_at = time.time()
                try:
                    self.prune(self.keep_days)
                except SQLAlchemyError:
                    log.exception("could not delete searches older than %s days", self.keep_days)
            if self._stop.wait(self.flush_s):
                return
            self.flush()

    def close(self) -> None:
        """Stops the writer and writes what waits (a clean stop loses nothing)."""
        self._stop.set()
        self._thread.join(timeout=10)
        self.flush()
