"""Which vector index for which catalog: one module per kind (flat.py, hnsw.py, ivfpq.py, each an ``IndexKind``
object with its parameters, how it is made, searched, changed and sized), and the rules that choose one kept as data
beside each kind (``order`` and ``when``, in the spirit of autofaiss). A module added here is a kind ``--index-kind``
takes and ``auto`` may choose; docs/layout.md shows which to copy.
"""

from __future__ import annotations

import os

import numpy as np

from mmsearch.index.kinds._base import EXACT_FILTER_MAX, FaissKind, IndexKind
from mmsearch.plugins import discover

__all__ = ["EXACT_FILTER_MAX", "FaissKind", "IndexKind", "choose", "exact_top", "kind", "kinds", "memory_budget"]
COMPACT_AT = 0.2  # masked (hnsw) or dropped (vectors file) slots above this share trigger a rebuild


def kinds() -> dict[str, IndexKind]:
    """Every kind, by name, in the order the rules try them."""
    found = sorted((m.KIND for m in discover(__name__)), key=lambda k: k.order)
    return {k.name: k for k in found}


def kind(name: str) -> IndexKind:
    known = kinds()
    if name not in known:
        raise ValueError(f"unknown index kind {name!r}; use one of auto, {', '.join(known)}")
    return known[name]


def memory_budget(gb: float = 0.0) -> int:
    """Bytes an in-memory index may take: ``gb`` (--index-memory-gb) when set, else a quarter of this machine's RAM."""
    if gb > 0:
        return int(gb * 2**30)
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // 4
    except (ValueError, OSError):
        return 4 * 2**30


def choose(n: int, dim: int, requested: str = "auto", budget: int | None = None) -> tuple[str, str]:
    """(kind, the rule that chose it): the one asked for, or the first kind whose rule holds."""
    if requested != "auto":
        return kind(requested).name, "asked for with --index-kind"
    budget = memory_budget() if budget is None else budget
    for candidate in kinds().values():
        rule = candidate.when
        if "max_items" in rule and n > rule["max_items"]:
            continue
        if rule.get("fits_budget") and candidate.bytes(n, dim) > budget:
            continue
        return candidate.name, candidate.describe(n, dim, budget)
    raise ValueError(f"no index kind's rule admits {n:,} items of dimension {dim}")


def exact_top(vectors: np.ndarray, slots: np.ndarray, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Exact top-k among ``slots`` (scores, slots), -1 padded; the vectors are gathered from the (mapped) file."""
    k_eff = min(k, len(slots))
    scores_out = np.full((len(queries), k), -np.inf, dtype=np.float32)
    slots_out = np.full((len(queries), k), -1, dtype=np.int64)
    if k_eff == 0:
        return scores_out, slots_out
    order = np.sort(slots)  # sorted reads are sequential in the mapped file
    scores = queries @ np.asarray(vectors[order], dtype=np.float32).T
    top = np.argpartition(-scores, k_eff - 1, axis=1)[:, :k_eff]
    for q in range(len(queries)):
        best = top[q][np.argsort(-scores[q, top[q]], kind="stable")]
        scores_out[q, :k_eff], slots_out[q, :k_eff] = scores[q, best], order[best]
    return scores_out, slots_out
