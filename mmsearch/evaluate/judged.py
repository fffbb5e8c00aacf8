"""Search quality on the raters' judgments (the Judge tab, POST /api/judgments): every judged query run in every mode,
and through both models when a second is loaded, scored with ir-measures on the grades 0-3 (the raters' lower
median), with paired tests between the systems.

Pools leave holes: a system may rank an item nobody graded. Unjudged results are neither counted right nor hidden:
each system's ``coverage`` says what share of its top 10 was judged, and the figures hold only as far as it is high.
"""

from __future__ import annotations

import itertools

import ir_measures
import pandas as pd
from ir_measures import P, nDCG

from mmsearch.evaluate.measures import paired_test
from mmsearch.search.searcher import MODES

K = 10
MEASURES = {"nDCG@10": nDCG(gains={0: 0, 1: 1, 2: 3, 3: 7}) @ K, "P@10": P(rel=2) @ K}


def run(searchers: list, qrels: dict[str, dict[str, int]]) -> dict:
    """``qrels``: query -> item -> grade. One system per (model, mode)."""
    if not qrels:
        raise ValueError("no judgments yet: grade some results in the Judge tab or POST /api/judgments first")
    indexed = set(searchers[0].index.ids)
    if not any(item in indexed for grades in qrels.values() for item in grades):
        raise ValueError(
            f"none of the judged items is in the index at {searchers[0].index.path}: the judgments were made for "
            "another catalog (pass its --catalog or --preset)"
        )
    queries = sorted(qrels)
    qids = {q: f"q{i}" for i, q in enumerate(queries, start=1)}
    judged = [ir_measures.Qrel(qids[q], item, grade) for q, items in qrels.items() for item, grade in items.items()]
    systems, per_query = [], {}
    for searcher in searchers:
        for mode in MODES:
            name = f"{mode}" if len(searchers) == 1 else f"{searcher.encoder.model_id} {mode}"
            ranked = {
                qids[q]: [h.item_id for h in searcher.search(searcher.request(q=q, k=K, mode=mode))] for q in queries
            }
            run_ = [
                ir_measures.ScoredDoc(qid, item, float(K - i))
                for qid, items in ranked.items()
                for i, item in enumerate(items)
            ]
            table = pd.DataFrame(0.0, index=list(ranked), columns=[*MEASURES, "coverage@10"])
            label = {str(m): n for n, m in MEASURES.items()}
            for metric in ir_measures.iter_calc(list(MEASURES.values()), judged, run_):
                table.loc[metric.query_id, label[str(metric.measure)]] = float(metric.value)
            for qid, items in ranked.items():
                grades = qrels[queries[int(qid[1:]) - 1]]
                table.loc[qid, "coverage@10"] = sum(i in grades for i in items) / len(items) if items else 0.0
            per_query[name] = table
            systems.append({"system": name} | {m: round(float(table[m].mean()), 4) for m in table.columns})
    tests = [
        {"a": a, "b": b, "metric": "nDCG@10"} | paired_test(per_query[a]["nDCG@10"], per_query[b]["nDCG@10"])
        for a, b in itertools.combinations(per_query, 2)
    ]
    return {"queries": len(queries), "judged_pairs": len(judged), "systems": systems, "significance": tests}
