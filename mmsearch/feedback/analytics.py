"""Search analytics from the log of answered searches and their events: what people search, what finds nothing or
only weak matches, what nobody clicks, click-through rate, click positions and latency; and the outcome of an
online comparison (team-draft interleaving: feedback/interleave.py) with a sign test.

Everything is computed from the database's rows (feedback/records.py) for the last ``days``; the UBI export writes the
same rows in the User Behavior Insights shape (``ubi_queries``, ``ubi_events``) for other tools.
"""

from __future__ import annotations

import json
import math
import time
from datetime import UTC, datetime

import pandas as pd
from sqlalchemy import select
from sqlalchemy.engine import Engine

from mmsearch.feedback.interleave import A, B, credit
from mmsearch.feedback.records import events, searches

TOP = 20
ALPHA = 0.05  # the sign test's level for "a decision"


def load(engine: Engine, days: float, now: float | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    cutoff = (now or time.time()) - days * 86400
    with engine.connect() as c:
        s = pd.DataFrame(c.execute(select(searches).where(searches.c.at >= cutoff)).mappings().all())
        e = pd.DataFrame(c.execute(select(events).where(events.c.at >= cutoff)).mappings().all())
    if s.empty:
        s = pd.DataFrame(columns=[col.name for col in searches.columns])
    if e.empty:
        e = pd.DataFrame(columns=[col.name for col in events.columns])
    return s, e


def _day(at: pd.Series) -> pd.Series:
    return pd.to_datetime(at.astype(float), unit="s", utc=True).dt.strftime("%Y-%m-%d")


def _top(frame: pd.DataFrame, column: str = "searches") -> list[dict]:
    return frame.sort_values([column, "query"], ascending=[False, True]).head(TOP).to_dict("records")


def summary(s: pd.DataFrame, e: pd.DataFrame, days: float) -> dict:
    clicks = e[e["action"] == "click"]
    clicked = set(clicks["query_id"])
    s = s.assign(clicked=s["query_id"].isin(clicked), empty=s["match"] == "empty")
    texts = s[s["query"].notna()].assign(query=lambda f: f["query"].str.lower().str.split().str.join(" "))
    per_query = (
        texts.groupby("query")
        .agg(searches=("query_id", "size"), clicked=("clicked", "sum"), empty=("empty", "sum"))
        .reset_index()
    )
    weak = texts[texts["match"] == "weak"].groupby("query").size().rename("searches").reset_index()
    latency = s["took_ms"].astype(float)
    per_day = s.assign(day=_day(s["at"])).groupby("day").size() if len(s) else pd.Series(dtype=int)
    return {
        "days": days,
        "searches": int(len(s)),
        "text_searches": int(len(texts)),
        "searches_per_day": [{"day": d, "searches": int(n)} for d, n in per_day.items()],
        "top_queries": [
            {"query": r["query"], "searches": int(r["searches"]), "clicked": int(r["clicked"])} for r in _top(per_query)
        ],
        "no_result_queries": [
            {"query": r["query"], "searches": int(r["empty"])} for r in _top(per_query[per_query["empty"] > 0], "empty")
        ],
        "weak_match_queries": [{"query": r["query"], "searches": int(r["searches"])} for r in _top(weak)],
        "no_click_queries": [
            {"query": r["query"], "searches": int(r["searches"])} for r in _top(per_query[per_query["clicked"] == 0])
        ],
        "click_through_rate": round(float(s["clicked"].mean()), 4) if len(s) else None,
        "clicks": int(len(clicks)),
        "mean_click_position": round(float(clicks["position"].astype(float).mean()), 3) if len(clicks) else None,
        "events_by_action": {str(a): int(n) for a, n in e.groupby("action").size().items()} if len(e) else {},
        "latency_ms": {
            f"p{q}": round(float(latency.quantile(q / 100)), 2) if len(latency) else None for q in (50, 95, 99)
        },
        "interleaving": interleaving(s, clicks),
    }


def interleaving(s: pd.DataFrame, clicks: pd.DataFrame) -> dict:
    """Per interleaved search, the team with more clicks wins (feedback/interleave.py); per query and overall, with
    a two-sided sign test on the searches one team won, and about how many more searches a decision at 5% needs if
    the share of wins stays as it is."""
    mixed = s[s["teams"].notna()]
    if mixed.empty:
        return {
            "searches": 0,
            "wins_a": 0,
            "wins_b": 0,
            "ties": 0,
            "p_value": None,
            "more_searches_needed": None,
            "per_query": [],
        }
    positions = clicks.groupby("query_id")["position"].apply(lambda p: {int(x) for x in p}).to_dict()
    outcome = [credit(json.loads(t), positions.get(q, set())) for q, t in zip(mixed["query_id"], mixed["teams"])]
    mixed = mixed.assign(outcome=outcome, query=mixed["query"].fillna("").str.lower().str.split().str.join(" "))
    a, b = int((mixed["outcome"] == A).sum()), int((mixed["outcome"] == B).sum())
    ties = int(len(mixed) - a - b)
    per_query = [
        {
            "query": q,
            "wins_a": int((g["outcome"] == A).sum()),
            "wins_b": int((g["outcome"] == B).sum()),
            "ties": int((g["outcome"] == "tie").sum()),
        }
        for q, g in mixed.groupby("query")
    ]
    per_query.sort(key=lambda r: (-(r["wins_a"] + r["wins_b"] + r["ties"]), r["query"]))
    return {
        "searches": int(len(mixed)),
        "wins_a": a,
        "wins_b": b,
        "ties": ties,
        "p_value": sign_test(a, b),
        "more_searches_needed": more_searches_needed(a, b, len(mixed)),
        "per_query": per_query[: TOP * 5],
    }


def sign_test(wins_a: int, wins_b: int) -> float | None:
    from scipy.stats import binomtest

    n = wins_a + wins_b
    return None if n == 0 else round(float(binomtest(wins_a, n, 0.5).pvalue), 6)


def more_searches_needed(wins_a: int, wins_b: int, searches: int, limit: int = 10_000_000) -> int | None:
    """How many more interleaved searches until the sign test reaches 5%, if the shares seen so far hold: 0 when it
    already has, None when nothing tells the rankers apart yet (no decided search, or exactly even)."""
    from scipy.stats import binomtest

    decided = wins_a + wins_b
    if decided == 0 or wins_a == wins_b:
        return None
    share = wins_a / decided

    def reached(n: int) -> bool:
        return binomtest(round(share * n), n, 0.5).pvalue < ALPHA

    if reached(decided):
        return 0
    high = decided
    while not reached(high):
        high *= 2
        if high > limit:
            return None
    low = high // 2  # not reached at low (or low is the current count), reached at high
    while high - low > 1:
        mid = (low + high) // 2
        low, high = (low, mid) if reached(mid) else (mid, high)
    return math.ceil((high - decided) * searches / decided)


def ubi_lines(s: pd.DataFrame, e: pd.DataFrame, application: str = "mmsearch") -> list[str]:
    """The rows as UBI JSON lines: one ``ubi_queries`` record per search, one ``ubi_events`` record per event
    (each with a ``"table"`` key saying which)."""

    def stamp(at: float) -> str:
        return datetime.fromtimestamp(float(at), UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")

    lines = []
    for r in s.sort_values("at").to_dict("records"):
        lines.append(
            {
                "table": "ubi_queries",
                "application": application,
                "query_id": r["query_id"],
                "client_id": r["client_id"],
                "user_query": r["query"] or "",
                "timestamp": stamp(r["at"]),
                "query_response_object_ids": json.loads(r["results"]),
                "query_attributes": {
                    "mode": r["mode"],
                    "kind": r["kind"],
                    "match": r["match"],
                    "model": r["model"],
                    "took_ms": r["took_ms"],
                    "source": r["source"],
                },
            }
        )
    for r in e.sort_values("at").to_dict("records"):
        lines.append(
            {
                "table": "ubi_events",
                "application": application,
                "action_name": r["action"],
                "query_id": r["query_id"],
                "client_id": r["client_id"],
                "timestamp": stamp(r["at"]),
                "event_attributes": {
                    "object": {"object_id": r["item_id"], "object_id_field": "item_id"},
                    "position": {"ordinal": int(r["position"])},
                },
            }
        )
    return [json.dumps(line, ensure_ascii=False) for line in lines]
