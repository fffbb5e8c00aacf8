"""How far raters agree: Cohen's kappa for each pair of raters on the pairs both graded (scikit-learn), and
Krippendorff's alpha over everyone (the ``krippendorff`` package; ordinal, since 0 < 1 < 2 < 3, and it takes any number
of raters and missing grades). Kappa is given plain and with quadratic weights (a 2 against a 3 is a smaller
disagreement than a 0 against a 3). The pairs raters disagree on are listed, the widest first, for a second look.
"""

from __future__ import annotations

import itertools
import math
from collections import defaultdict

import numpy as np

GRADE_LABELS = [0, 1, 2, 3]


def _kappa(a: list[int], b: list[int], weights: str | None) -> float | None:
    from sklearn.metrics import cohen_kappa_score

    if len(a) < 2 or (len(set(a)) == 1 and set(a) == set(b)):
        return None  # undefined: too few pairs, or both gave one and the same grade throughout
    value = cohen_kappa_score(a, b, labels=GRADE_LABELS, weights=weights)
    return None if math.isnan(value) else round(float(value), 4)


def agreement(rows: list[dict], limit: int = 100) -> dict:
    """``rows``: judgments with query, item_id, grade and rater."""
    import krippendorff

    grades: dict[tuple[str, str], dict[str, int]] = defaultdict(dict)
    for r in rows:
        grades[(r["query"], r["item_id"])][r["rater"]] = int(r["grade"])
    raters = sorted({r["rater"] for r in rows})
    pairs = []
    for first, second in itertools.combinations(raters, 2):
        shared = [g for g in grades.values() if first in g and second in g]
        a, b = [g[first] for g in shared], [g[second] for g in shared]
        pairs.append(
            {
                "raters": [first, second],
                "pairs_both_graded": len(shared),
                "agreed": sum(x == y for x, y in zip(a, b)),
                "cohen_kappa": _kappa(a, b, None),
                "cohen_kappa_quadratic": _kappa(a, b, "quadratic"),
            }
        )
    multi = [g for g in grades.values() if len(g) >= 2]
    alpha = None
    if len(raters) >= 2 and multi and len({v for g in multi for v in g.values()}) > 1:
        matrix = np.array([[g.get(r, np.nan) for g in multi] for r in raters], dtype=float)
        alpha = round(float(krippendorff.alpha(reliability_data=matrix, level_of_measurement="ordinal")), 4)
    disagreements = sorted(
        (
            {
                "query": q,
                "item_id": item,
                "grades": dict(sorted(g.items())),
                "spread": max(g.values()) - min(g.values()),
            }
            for (q, item), g in grades.items()
            if len(g) >= 2 and max(g.values()) != min(g.values())
        ),
        key=lambda d: (-d["spread"], d["query"], d["item_id"]),
    )
    return {
        "raters": raters,
        "judged_pairs": len(grades),
        "pairs_with_several_raters": len(multi),
        "krippendorff_alpha_ordinal": alpha,
        "pairwise": pairs,
        "disagreements": disagreements[:limit],
        "disagreement_count": len(disagreements),
    }
