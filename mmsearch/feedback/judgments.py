"""Judgments: raters' grades of (query, item) pairs, 0 irrelevant, 1 related, 2 relevant, 3 perfect.

A grade is committed before the server answers 201. One grade per rater and pair (a second grade replaces the first).
The grade of a pair is the median of its raters' grades, the lower of the two middle ones when their count is even,
so a pair one rater calls relevant and one irrelevant is not counted relevant. Topics are numbered in the order their
queries were first judged, stable as more are added. CSV (query, item_id, grade, rater) and TREC qrels
(``topic 0 item_id grade``) go in and out.
"""

from __future__ import annotations

import csv
import hashlib
import io
import time
from collections import defaultdict
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.engine import Engine

from mmsearch.feedback.records import MAX_ID, MAX_RATER, events, judgments, searches
from mmsearch.inputs import clean

GRADES = {0: "irrelevant", 1: "related", 2: "relevant", 3: "perfect"}
MAX_QUERY = 500


class JudgmentError(ValueError):
    """A grade that cannot be kept: the message says which field and why."""


@dataclass(frozen=True)
class Judgment:
    query: str
    item_id: str
    grade: int
    rater: str


def normalize_query(text: str) -> str:
    """The topic a query belongs to: "Red  T-Shirt " and "red t-shirt" are one (control characters dropped)."""
    return " ".join(clean(str(text)).lower().split())


def checked(query: object, item_id: object, grade: object, rater: object) -> Judgment:
    """A grade from any way in (REST's body is checked at its edge already; the Judge tab, the Gradio API and
    imported files come here raw)."""
    q = normalize_query(query) if isinstance(query, str) else ""
    if not q or len(q) > MAX_QUERY:
        raise JudgmentError(f"query must be text of 1 to {MAX_QUERY} characters")
    item_id = clean(item_id).strip() if isinstance(item_id, str) else ""
    if not item_id or len(item_id) > MAX_ID:
        raise JudgmentError(f"item_id must be an item's id (1 to {MAX_ID} characters)")
    if isinstance(grade, bool) or not isinstance(grade, int) or grade not in GRADES:
        raise JudgmentError(
            "grade must be 0, 1, 2 or 3 ("
            + ", ".join(f"{g} {name}" for g, name in GRADES.items())
            + f"), not {grade!r}"
        )
    name = " ".join(clean(rater).split()) if isinstance(rater, str) else ""
    if not name or len(name) > MAX_RATER:
        raise JudgmentError(f"rater must be a name of 1 to {MAX_RATER} characters")
    return Judgment(q, item_id, grade, name)


HALVES = ("train", "test")


def half_of(query: str) -> str:
    """Which half a judged query falls in, by a hash of its text: stable as judgments are added, the same in
    training (which learns from the train half) and evaluation (which measures on the test half)."""
    return HALVES[hashlib.blake2b(normalize_query(query).encode(), digest_size=4).digest()[0] % 2]


def lower_median(grades: list[int]) -> int:
    ordered = sorted(grades)
    return ordered[(len(ordered) - 1) // 2]


def upsert(dialect: str):
    """The insert that replaces a rater's grade of a pair, in the dialect's words (the two databases
    ``open_database`` accepts both have ON CONFLICT)."""
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    statement = insert(judgments)
    key = [judgments.c.query, judgments.c.item_id, judgments.c.rater]
    return statement.on_conflict_do_update(
        index_elements=key, set_={"grade": statement.excluded.grade, "at": statement.excluded.at}
    )


class Judgments:
    def __init__(self, engine: Engine):
        self.engine = engine

    def add(self, many: list[Judgment]) -> int:
        """Keeps ``many`` in one transaction, each replacing that rater's earlier grade of the pair.

        One statement per batch, ``INSERT ... ON CONFLICT (query, item_id, rater) DO UPDATE``: a delete followed by an
        insert let two requests of one rater race on PostgreSQL (47 of 200 concurrent grades failed on the unique
        constraint); an upsert cannot. Within a batch the last grade of a pair wins."""
        now = time.time()
        last = {(j.query, j.item_id, j.rater): vars(j) | {"at": now} for j in many}
        if last:
            with self.engine.begin() as c:
                c.execute(upsert(c.dialect.name), list(last.values()))
        return len(many)

    def all(self) -> list[dict]:
        with self.engine.connect() as c:
            rows = c.execute(select(judgments).order_by(judgments.c.id)).mappings().all()
        return [dict(r) for r in rows]

    def count(self) -> int:
        with self.engine.connect() as c:
            return int(c.execute(select(func.count()).select_from(judgments)).scalar_one())

    def of_query(self, query: str, rater: str | None = None) -> dict[str, int]:
        """item -> grade for one query: ``rater``'s own grades, or the pairs' median grades."""
        q = normalize_query(query)
        cond = judgments.c.query == q
        if rater is not None:
            cond &= judgments.c.rater == rater
        with self.engine.connect() as c:
            rows = c.execute(select(judgments.c.item_id, judgments.c.grade).where(cond)).all()
        grades: dict[str, list[int]] = defaultdict(list)
        for item, grade in rows:
            grades[item].append(grade)
        return {item: lower_median(g) for item, g in grades.items()}

    def queries_judged(self, rater: str) -> int:
        """How many queries ``rater`` has graded at least one result of."""
        with self.engine.connect() as c:
            found = select(func.count(func.distinct(judgments.c.query))).where(judgments.c.rater == rater)
            return int(c.execute(found).scalar_one())

    def topics(self) -> dict[str, int]:
        """query -> topic number, in the order queries were first judged (1, 2, ...)."""
        with self.engine.connect() as c:
            rows = c.execute(
                select(judgments.c.query, func.min(judgments.c.id).label("first"))
                .group_by(judgments.c.query)
                .order_by("first")
            ).all()
        return {q: i for i, (q, _) in enumerate(rows, start=1)}

    def qrels(self, half: str = "all") -> dict[str, dict[str, int]]:
        """query -> item -> the median grade of its raters; ``half``: only the queries of that half (``half_of``)."""
        grades: dict[str, dict[str, list[int]]] = defaultdict(lambda: defaultdict(list))
        for row in self.all():
            if half == "all" or half_of(row["query"]) == half:
                grades[row["query"]][row["item_id"]].append(row["grade"])
        return {q: {item: lower_median(g) for item, g in items.items()} for q, items in grades.items()}

    def qrels_text(self) -> str:
        """TREC qrels: ``topic 0 item_id grade`` per judged pair, topics numbered as ``topics()``."""
        topics, lines = self.topics(), []
        for query, items in sorted(self.qrels().items(), key=lambda kv: topics[kv[0]]):
            lines += [f"{topics[query]} 0 {item} {grade}" for item, grade in sorted(items.items())]
        return "\n".join(lines) + ("\n" if lines else "")

    def queue(self, rater: str | None = None, limit: int = 50, days: float = 90) -> list[dict]:
        """Queries to judge next: typed text queries of the last ``days`` that ``rater`` (or anyone, when None) has
        not judged, the most searched first, each saying whether it found nothing, only weak matches, or no click."""
        cutoff = time.time() - days * 86400
        with self.engine.connect() as c:
            rows = c.execute(
                select(searches.c.query_id, searches.c.query, searches.c.match).where(
                    (searches.c.at >= cutoff) & searches.c.query.is_not(None)
                )
            ).all()
            clicked = {q for (q,) in c.execute(select(events.c.query_id).where(events.c.action == "click")).all()}
            cond = True if rater is None else judgments.c.rater == rater
            judged = {q for (q,) in c.execute(select(judgments.c.query).where(cond).distinct()).all()}
        stats: dict[str, dict] = {}
        for query_id, query, match in rows:
            q = normalize_query(query)
            if not q or q in judged:
                continue
            s = stats.setdefault(q, {"query": q, "searches": 0, "empty": 0, "weak": 0, "clicked": 0})
            s["searches"] += 1
            s["empty"] += match == "empty"
            s["weak"] += match == "weak"
            s["clicked"] += query_id in clicked
        out = sorted(stats.values(), key=lambda s: (-s["searches"], s["query"]))[:limit]
        for s in out:
            s["why"] = (
                "no results" if s["empty"] else "weak match" if s["weak"] else "no clicks" if not s["clicked"] else ""
            )
        return out

    def csv_text(self) -> str:
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(["query", "item_id", "grade", "rater"])
        for row in self.all():
            writer.writerow([row["query"], row["item_id"], row["grade"], row["rater"]])
        return out.getvalue()


def read_csv(text: str, rater: str | None = None) -> list[Judgment]:
    """Judgments from CSV with columns query, item_id, grade and rater (``rater`` fills a missing column)."""
    reader = csv.DictReader(io.StringIO(text))
    need = {"query", "item_id", "grade"} | (set() if rater else {"rater"})
    missing = need - set(reader.fieldnames or [])
    if missing:
        raise JudgmentError(
            f"the CSV needs the columns {', '.join(sorted(need))}; missing {', '.join(sorted(missing))}"
        )
    out = []
    for line, row in enumerate(reader, start=2):
        try:
            grade = int(str(row["grade"]).strip())
        except ValueError:
            raise JudgmentError(f"line {line}: grade must be 0, 1, 2 or 3, not {row['grade']!r}") from None
        try:
            out.append(checked(row["query"], row["item_id"], grade, row.get("rater") or rater))
        except JudgmentError as exc:
            raise JudgmentError(f"line {line}: {exc}") from None
    return out


def read_qrels(text: str, topics: dict[str, str], rater: str) -> list[Judgment]:
    """Judgments from TREC qrels, with ``topics`` (topic -> query text) saying what each topic asked."""
    out = []
    for line, raw in enumerate(text.splitlines(), start=1):
        parts = raw.split()
        if not parts:
            continue
        if len(parts) != 4:
            raise JudgmentError(f"line {line}: a qrels line is 'topic 0 item_id grade', not {raw[:80]!r}")
        topic, _, item, grade = parts
        if topic not in topics:
            raise JudgmentError(f"line {line}: topic {topic} is not in the topics file")
        try:
            out.append(checked(topics[topic], item, int(grade), rater))
        except (ValueError, JudgmentError) as exc:
            raise JudgmentError(f"line {line}: {exc}") from None
    return out
