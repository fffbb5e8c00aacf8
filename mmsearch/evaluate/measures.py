"""Ranking metrics through ir-measures (trec_eval's code, via pytrec_eval), and paired significance tests.

Grades are 0/1/2 (see quality.py). nDCG uses gains 2^grade - 1 (so 1 -> 1 and 2 -> 3), Recall, MRR and precision
count only fully relevant items (grade 2). "P@10 strict" is the share of the top 10 that is fully relevant, out of
what can be: hits / min(10, fully relevant items), so a query with 6 matching items scores 1.0 for finding all six.
"""

from __future__ import annotations

import ir_measures
import numpy as np
import pandas as pd
from ir_measures import RR, P, R, nDCG
from scipy import stats

K = 10
MEASURES = {"nDCG@10": nDCG(gains={0: 0, 1: 1, 2: 3}) @ K, "Recall@10": R(rel=2) @ K, "MRR@10": RR(rel=2) @ K}
METRICS = (*MEASURES, "P@10 strict")
ALPHA = 0.05


def per_query(ranked: dict[str, list[str]], labels: dict[str, dict[str, int]]) -> pd.DataFrame:
    """One row per query of ``ranked`` (qid -> item ids, best first), one column per metric; a query with no
    results or no labels scores 0."""
    qrels = [
        ir_measures.Qrel(qid, item, grade)
        for qid, items in labels.items()
        if qid in ranked
        for item, grade in items.items()
    ]
    # trec_eval orders a run by score and breaks ties by document id, so each rank gets a score of its own.
    run = [
        ir_measures.ScoredDoc(qid, item, float(len(items) - i))
        for qid, items in ranked.items()
        for i, item in enumerate(dict.fromkeys(items))
    ]
    table = pd.DataFrame(0.0, index=pd.Index(list(ranked), name="qid"), columns=list(METRICS))
    hits = pd.Series(0.0, index=table.index)
    precision = P(rel=2) @ K
    name = {str(m): label for label, m in MEASURES.items()}
    # One pass of trec_eval for every measure; plain P@10 only feeds the strict one.
    for metric in ir_measures.iter_calc([*MEASURES.values(), precision], qrels, run):
        if str(metric.measure) == str(precision):
            hits[metric.query_id] = metric.value * K
        else:
            table.loc[metric.query_id, name[str(metric.measure)]] = float(metric.value)
    possible = pd.Series({qid: min(K, sum(g >= 2 for g in labels.get(qid, {}).values())) for qid in ranked})
    table["P@10 strict"] = (hits / possible.replace(0, np.nan)).fillna(0.0)
    return table


def paired_test(a: pd.Series, b: pd.Series) -> dict:
    """Is A better than B over the same queries? A two-sided paired t-test on the per-query differences."""
    a, b = a.align(b, join="inner")
    diff = (a - b).to_numpy(dtype=float)
    if len(diff) < 2 or np.allclose(diff, 0):
        p = 1.0
    else:
        p = float(stats.ttest_rel(a.to_numpy(dtype=float), b.to_numpy(dtype=float)).pvalue)
    return {
        "mean_a": round(float(a.mean()), 4),
        "mean_b": round(float(b.mean()), 4),
        "difference": round(float(diff.mean()), 4),
        "p_value": float(f"{p:.3g}"),
        "queries": len(diff),
        "wins": int((diff > 0).sum()),
        "losses": int((diff < 0).sum()),
        "significant": bool(p < ALPHA),
    }


def verdict(name_a: str, name_b: str, test: dict, metric: str) -> str:
    """'hybrid beats vector on nDCG@10 by +0.081 (p = 0.002, significant at 0.05)'."""
    d = test["difference"]
    if d == 0:
        return f"{name_a} and {name_b} tie on {metric} ({test['queries']} queries)"
    better, worse = (name_a, name_b) if d > 0 else (name_b, name_a)
    word = "significant" if test["significant"] else "not significant"
    return (
        f"{better} beats {worse} on {metric} by {abs(d):.3f} over {test['queries']} queries "
        f"(paired t-test p = {test['p_value']:.3g}, {word} at {ALPHA})"
    )
