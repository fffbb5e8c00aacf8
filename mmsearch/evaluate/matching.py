"""How well an answer's ``match`` flag tells queries the catalog can answer from queries for things it does not have.

Labelled queries with judged results are the matched side; ``assets/unmatched-queries.csv`` (things neither bundled
catalog sells, written before any rule was chosen) is the unmatched side. The rule's thresholds are chosen on the dev
halves only (the best F1 of the ``weak`` flag), and precision/recall are reported on the test halves.
Many thresholds often tie on a small dev half; the first of them in grid order sits at the very edge of the dev
queries, so each threshold is then moved to the middle of its band of equally good values (the rule keeps the
widest margin to the dev queries on either side).
``python -m mmsearch.evaluate --match`` prints both and writes them into the index directory (``match.json``), where
the Evaluation tab shows them; a named catalog's build writes them once.
"""

from __future__ import annotations

import itertools
import json
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd

from mmsearch.atomic import atomic_write_text
from mmsearch.evaluate import quality
from mmsearch.ingest import datasets
from mmsearch.resources import ASSETS_DIR
from mmsearch.search.match import WEAK, MatchRule

UNMATCHED_FILE = ASSETS_DIR / "unmatched-queries.csv"
REPORT_FILE = "match.json"  # in the index directory, for the Evaluation tab
# Between the shares a short query can have (1/5, 1/4, 1/3, 2/5, 1/2, 3/5, 2/3, 3/4, 4/5, 1), so that no threshold
# sits on one of them (2/3 is 0.6667, under a threshold of 0.67); 1.01: the words never decide.
WORDS_GRID = (0.0, 0.1, 0.22, 0.3, 0.37, 0.45, 0.55, 0.63, 0.7, 0.77, 0.9, 1.01)
STANDING_GRID = tuple(np.round(np.arange(1.5, 6.01, 0.1), 2))
AFFINITY_GRID = (*np.round(np.arange(-0.2, 0.61, 0.01), 2), 1.01)  # 1.01: the affinity never decides
SIMILARITY_GRID = (*np.round(np.arange(0.2, 0.81, 0.02), 2), 1.01)  # a zero-shot model's cosines: 0.2-0.75 here


@dataclass(frozen=True)
class Observed:
    """One query's figures: the best result's standing, the share of known words, and whether it is unmatched."""

    query: str
    split: str
    standing: float | None
    coverage: float
    unmatched: bool
    affinity: float | None = None
    similarity: float | None = None


def observe(searcher, matched: pd.DataFrame, unmatched: pd.DataFrame, mode: str | None = None) -> list[Observed]:
    """Runs both query sets once; thresholds are then tried on the figures, not by searching again."""
    out = []
    for table, is_unmatched in ((matched, False), (unmatched, True)):
        for row in table.itertuples(index=False):
            request = searcher.request(q=row.query, filters=getattr(row, "filters", ""), mode=mode)
            answer = searcher.search(request)
            coverage = 0.0 if answer.coverage is None else answer.coverage
            out.append(
                Observed(
                    row.query, row.split, answer.standing, coverage, is_unmatched, answer.affinity, answer.similarity
                )
            )
    return out


def scores(observed: list[Observed], rule: MatchRule) -> dict:
    """Precision and recall of the ``weak`` flag for unmatched queries, with the counts behind them."""
    flagged = [rule.decide(o.standing, o.coverage, o.affinity, o.similarity) == WEAK for o in observed]
    truth = [o.unmatched for o in observed]
    tp = sum(f and t for f, t in zip(flagged, truth))
    fp = sum(f and not t for f, t in zip(flagged, truth))
    fn = sum(t and not f for f, t in zip(flagged, truth))
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {
        "precision": round(precision, 4),
        "recall": round(recall, 4),
        "f1": round(f1, 4),
        "weak_flagged": int(sum(flagged)),
        "unmatched_queries": int(sum(truth)),
        "matched_queries": len(truth) - int(sum(truth)),
        "matched_flagged_weak": [o.query for o, f in zip(observed, flagged) if f and not o.unmatched],
        "unmatched_flagged_good": [o.query for o, f in zip(observed, flagged) if o.unmatched and not f],
    }


def calibrate(observed: list[Observed], image_standing: float, similarity: bool = False) -> MatchRule:
    """The rule with the best F1 of the weak flag on the dev half, each threshold in the middle of its band; the
    best result's similarity is weighed only where it means the same on every catalog (``similarity``: a zero-shot
    model's)."""
    dev = [o for o in observed if o.split == "dev"]
    best, best_f1 = None, -1.0
    affinities = AFFINITY_GRID if any(o.affinity is not None for o in dev) else (1.01,)
    similarities = SIMILARITY_GRID if similarity else (1.01,)
    grid = itertools.product(reversed(affinities), reversed(similarities), WORDS_GRID, STANDING_GRID)
    for affinity, cosine, words, standing in grid:
        rule = MatchRule(words, float(standing), image_standing, float(affinity), float(cosine))
        f1 = scores(dev, rule)["f1"]
        if f1 > best_f1:
            best, best_f1 = rule, f1
    grids = {"affinity": affinities, "similarity": similarities, "standing": STANDING_GRID, "words": WORDS_GRID}
    for name, values in grids.items():
        kept = [float(v) for v in values if v <= 1.0 or name not in ("affinity", "similarity")]
        best = _middle_of_band(dev, best, name, kept, best_f1)
    return best


def _middle_of_band(dev: list[Observed], rule: MatchRule, name: str, grid: list[float], f1: float) -> MatchRule:
    """``rule`` with threshold ``name`` moved to the middle of the run of grid values around it that keep ``f1``
    (a threshold that never decides, such as an affinity above 1, stays where it is)."""
    current = getattr(rule, name)
    if current not in grid:
        return rule
    good = [scores(dev, replace(rule, **{name: value}))["f1"] >= f1 for value in grid]
    at = grid.index(current)
    low, high = at, at
    while low > 0 and good[low - 1]:
        low -= 1
    while high < len(grid) - 1 and good[high + 1]:
        high += 1
    return replace(rule, **{name: grid[(low + high) // 2]})


def report(observed: list[Observed], configured: MatchRule) -> dict:
    """The rule chosen on dev, and both it and the configured rule scored on test."""
    chosen = calibrate(observed, configured.image_standing, configured.similarity <= 1)
    test = [o for o in observed if o.split == "test"]
    dev = [o for o in observed if o.split == "dev"]
    return {
        "chosen_on_dev": asdict(chosen),
        "dev": scores(dev, chosen),
        "test_with_chosen": scores(test, chosen),
        "configured": asdict(configured),
        "test_with_configured": scores(test, configured),
    }


def load_unmatched(path=UNMATCHED_FILE) -> pd.DataFrame:
    table = pd.read_csv(path, dtype=str, keep_default_na=False)
    if "query" not in table.columns:
        raise ValueError(f"{path} needs a 'query' column (and a split column, dev or test)")
    if "split" not in table.columns:
        table["split"] = "test"
    return table


def query_sets(catalog: str, queries: str | None = None, qrels: Path | None = None):
    """(the matched sets' names, the matched queries, the unmatched ones) for ``catalog``: its bundled labelled sets
    (or ``queries`` with ``qrels``) against its own list of things it lacks, or else the bundled one."""
    names = [queries] if queries else list(quality.sets_for(catalog))
    if not names:
        raise ValueError(f"no bundled query sets label {catalog}: pass --queries FILE --qrels FILE")
    if queries and queries not in quality.SETS:
        matched = quality.load_set(queries, qrels)[0]
    else:
        matched = pd.concat([quality.load_set(n)[0] for n in names], ignore_index=True)
    named = datasets.find(catalog)
    return names, matched, load_unmatched(named.unmatched if named and named.unmatched else UNMATCHED_FILE)


def evaluate(searcher, sets: tuple | None = None) -> dict:
    """The match flag's report for the searcher's catalog in its configured mode, written into its index directory;
    ``sets`` as query_sets answers them (by default the catalog's own)."""
    names, matched, unmatched = sets or query_sets(searcher.config.catalog)
    result = {"mode": searcher.config.search_mode, "matched_sets": names}
    result |= report(observe(searcher, matched, unmatched), searcher.match_rule)
    result |= {"model": searcher.encoder.model_id, "generated": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")}
    if searcher.index.path is not None:
        atomic_write_text(Path(searcher.index.path) / REPORT_FILE, json.dumps(result, indent=2))
    return result


def saved(directory: Path | None) -> dict | None:
    path = Path(directory) / REPORT_FILE if directory else None
    return json.loads(path.read_text()) if path is not None and path.exists() else None
