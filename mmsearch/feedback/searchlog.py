"""The log of answered searches and of the events on their results, written behind the requests.

A search gets its ``query_id`` at once and is remembered in memory (the last ``RECENT`` of them), so an event can be
checked against the answer it names (the item at that position) without a database read. Searches wait in memory and
a background thread writes them in one transaction every ``flush_s`` seconds: a search never waits on the disk. An
event is written before it is acknowledged (with the searches waiting then, in the same transaction), so a 202
survives ``kill -9`` of the server or of one replica; while the database is out of reach it waits in memory with
the searches, and only then can a crash lose it. A clean stop writes what waits; a crash loses at most the last
``flush_s`` seconds of searches (docs/feedback.md). Judgments are committed before the server answers too
(judgments.py).
"""

from __future__ import annotations

import json
import logging
import re
import threading
import time
import uuid
from collections import OrderedDict
from dataclasses import asdict, dataclass

from sqlalchemy import Table, delete, insert, select
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DataError, DBAPIError, IntegrityError, SQLAlchemyError, StatementError

from mmsearch.feedback import metrics
from mmsearch.feedback.records import MAX_ACTION, MAX_ID, events, searches
from mmsearch.outage import Outage

log = logging.getLogger("mmsearch.searchlog")
RECENT = 100_000  # answers kept in memory for checking events: ~40 MB at 10 results each
MAX_PENDING = 50_000  # rows waiting for the writer; past this a burst is dropped (and counted), not the server
ACTIONS_BUILT_IN = ("click", "view")
QUERY_ID = re.compile(r"[0-9a-f]{32}")
PRUNE_EVERY_S = 3600  # retention is checked at start and hourly


class EventError(ValueError):
    """An event that names no answer this server gave, or a position or item that answer did not have."""


class NotInAnswer(EventError):
    """An event naming a position or an item that the answer it names did not have: the event conflicts with what
    was answered (REST answers 409)."""


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


def refused(exc: SQLAlchemyError) -> bool:
    """Whether the database refused the data (a value it cannot store, a broken constraint), rather than being out
    of reach: the first is about rows, and waiting will not change it."""
    if isinstance(exc, (DataError, IntegrityError)):
        return True
    return isinstance(exc, StatementError) and not isinstance(exc, DBAPIError)  # the driver could not send a value


class SearchLog:
    def __init__(self, engine: Engine, flush_s: float = 1.0, keep_days: float = 0, shared: bool = False):
        self.engine, self.flush_s, self.keep_days = engine, flush_s, keep_days
        # Replicas share the database: an event may come through one replica for an answer another gave a moment
        # ago, still waiting for that replica's batch; a query_id not found is then looked for until it could be in.
        self.settle_s = flush_s + 1.0 if shared else 0.0
        self._pruned_at = 0.0
        self._recent: OrderedDict[str, Search] = OrderedDict()
        self._searches: list[dict] = []
        self._events: list[dict] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self.dropped = 0
        self.written = {"searches": 0, "events": 0}
        self.outage = Outage("the database", log)
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
        deadline = time.monotonic() + self.settle_s
        while (row := self._logged(query_id)) is None and time.monotonic() < deadline:
            time.sleep(0.1)
        if row is None:
            return None
        row = dict(row)
        row["results"] = tuple(json.loads(row["results"]))
        row["teams"] = None if row["teams"] is None else tuple(json.loads(row["teams"]))
        return Search(**row)

    def _logged(self, query_id: str) -> dict | None:
        with self.engine.connect() as c:
            return c.execute(select(searches).where(searches.c.query_id == query_id)).mappings().first()

    def event(self, query_id: str, item_id: str, position: int, action: str, client_id: str | None) -> Event:
        """Checks an event against its answer and queues it; raises EventError with a message for people."""
        action = (action or "").strip()
        if not action or len(action) > MAX_ACTION or not all(c.isalnum() or c in "_-." for c in action):
            raise EventError(
                f"action must be a name of 1 to {MAX_ACTION} letters, digits, '_', '-' or '.' "
                f"(such as {', '.join(ACTIONS_BUILT_IN)} or add_to_cart), not {action[:80]!r}"
            )
        if not isinstance(query_id, str) or not QUERY_ID.fullmatch(query_id):
            raise UnknownQuery(
                f"no search with query_id {query_id[:40]!r}: send the query_id of an answer from this server"
            )
        search = self.answer(query_id)
        if search is None:
            raise UnknownQuery(f"no search with query_id {query_id!r}: send the query_id of an answer from this server")
        if not 1 <= position <= len(search.results):
            raise NotInAnswer(
                f"position {position} is outside that answer: it had {len(search.results)} results "
                "(position 1 is the first)"
            )
        if search.results[position - 1] != item_id:
            raise NotInAnswer(f"item {item_id[:MAX_ID]!r} was not at position {position} of that answer")
        event = Event(query_id, item_id, position, action, client_id, time.time())
        with self._lock:
            self._queue(self._events, asdict(event))
        self.flush()  # written before it is acknowledged (its answer with it): a 202 is on disk, not in memory
        return event

    @property
    def waiting(self) -> int:
        """Searches and events not written yet (for /metrics)."""
        return len(self._searches) + len(self._events)

    def _queue(self, pending: list[dict], row: dict) -> None:
        if len(self._searches) + len(self._events) >= MAX_PENDING:
            self.dropped += 1
            metrics.LOG_DROPPED.labels("searches" if pending is self._searches else "events", "queue_full").inc()
            return
        pending.append(row)

    def flush(self) -> None:
        """Writes what waits, in one transaction. A database that is out of reach keeps it waiting for the next
        turn; a batch the database refuses is split until the rows it refuses are found, and only those are
        dropped (logged and counted in /metrics), so one bad row never holds back the others."""
        with self._lock:
            found, happened = self._searches, self._events
            self._searches, self._events = [], []
        if not found and not happened:
            return
        try:
            self._write([(searches, found), (events, happened)])
        except SQLAlchemyError as exc:
            if not refused(exc):
                waiting = f"{len(found) + len(happened):,} searches and events wait (at most {MAX_PENDING:,})"
                self.outage.failed(exc, f"{waiting}; retried every {self.flush_s:g} s")
                with self._lock:
                    self._searches[:0], self._events[:0] = found, happened
                return
            for table, rows in ((searches, found), (events, happened)):
                self._write_apart(table, rows)
            return
        self.outage.worked(f"wrote the {len(found) + len(happened):,} searches and events that waited")
        self.written["searches"] += len(found)
        self.written["events"] += len(happened)

    def _write(self, batches: list[tuple[Table, list[dict]]]) -> None:
        with self.engine.begin() as c:
            for table, rows in batches:
                if rows:
                    c.execute(insert(table), rows)

    def _write_apart(self, table: Table, rows: list[dict]) -> None:
        """``rows`` written in halves until the refused ones stand alone; those are dropped. An outage meanwhile
        puts what is left back in line."""
        if not rows:
            return
        try:
            self._write([(table, rows)])
        except SQLAlchemyError as exc:
            if not refused(exc):
                with self._lock:
                    (self._searches if table is searches else self._events)[:0] = rows
                return
            if len(rows) == 1:
                log.error("dropped a row of %s that the database refuses: %s", table.name, exc.orig or exc)
                metrics.LOG_DROPPED.labels(table.name, "refused").inc()
                return
            half = len(rows) // 2
            self._write_apart(table, rows[:half])
            self._write_apart(table, rows[half:])
            return
        self.written[table.name] += len(rows)

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
