"""Which Faiss index for which catalog, as explicit rules (in the spirit of autofaiss), and what each kind can do.

- ``flat``  exact inner product. Chosen up to FLAT_MAX items: exact, no training, and fast enough there.
- ``hnsw``  a graph over the full vectors, while the graph fits in the memory budget. Faiss's HNSW cannot remove
            vectors, so a removed or re-encoded item's slot is masked at search and the index rebuilds itself once
            masked slots pass COMPACT_AT of all slots.
- ``ivfpq`` OPQ rotation, inverted lists and product-quantised codes: 64 bytes a vector at any dimension, readable
            memory-mapped, for catalogs past the memory budget. Top candidates are re-ranked with the exact vectors.

Every kind stores vectors under slot ids (``add_with_ids``), so an update adds and removes slots without renumbering.
"""

from __future__ import annotations

import math
import os

import faiss
import numpy as np

from mmsearch.config import INDEX_KINDS

KINDS = INDEX_KINDS  # the --index-kind choices
FLAT_MAX = 50_000  # exact search costs ~n*d/1e9 s a query: about 5 ms at 50k x 512 on 2 cores
HNSW_M, HNSW_EF_CONSTRUCTION, HNSW_EF_SEARCH = 32, 80, 96
IVF_NPROBE, RERANK_DEPTH = 48, 200
COMPACT_AT = 0.2  # masked (hnsw) or dropped (vectors file) slots above this share trigger a rebuild
EXACT_FILTER_MAX = 20_000  # a filter allowing at most this many rows is answered exactly from the vectors
TRAIN_MAX = 65_536  # training sample for IVF centroids and product quantisers
OPQ_ROUNDS, OPQ_TRAIN_MAX = 8, 16_384


def memory_budget(gb: float = 0.0) -> int:
    """Bytes an in-memory index may take: ``gb`` (--index-memory-gb) when set, else a quarter of this machine's RAM."""
    if gb > 0:
        return int(gb * 2**30)
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // 4
    except (ValueError, OSError):
        return 4 * 2**30


def hnsw_bytes(n: int, dim: int) -> int:
    return int(n * (dim * 4 + HNSW_M * 2 * 4) * 1.1)


def choose(n: int, dim: int, requested: str = "auto", budget: int | None = None) -> tuple[str, str]:
    """(kind, the rule that chose it)."""
    if requested not in KINDS:
        raise ValueError(f"unknown index kind {requested!r}; use one of {', '.join(KINDS)}")
    if requested != "auto":
        return requested, "asked for with --index-kind"
    budget = memory_budget() if budget is None else budget
    if n <= FLAT_MAX:
        return "flat", f"{n:,} items <= {FLAT_MAX:,}: exact search is fast enough"
    if hnsw_bytes(n, dim) <= budget:
        return "hnsw", f"HNSW needs ~{hnsw_bytes(n, dim) / 2**30:.1f} GiB <= the {budget / 2**30:.1f} GiB budget"
    return "ivfpq", (
        f"HNSW would need ~{hnsw_bytes(n, dim) / 2**30:.1f} GiB > the {budget / 2**30:.1f} GiB budget: "
        "quantised codes with exact re-ranking"
    )


def params(kind: str, n: int, dim: int) -> dict:
    if kind == "hnsw":
        return {"M": HNSW_M, "efConstruction": HNSW_EF_CONSTRUCTION, "efSearch": HNSW_EF_SEARCH}
    if kind == "ivfpq":
        nlist = max(1, min(int(4 * math.sqrt(n)), n // 39))  # >= 39 training points per centroid
        m = next(s for s in range(min(64, max(1, dim // 8)), 0, -1) if dim % s == 0)  # ~8 dimensions a code
        nbits = 8 if n >= 256 * 39 else 4  # fewer codes for small catalogs, so each has training points
        return {
            "nlist": nlist,
            "pq_m": m,
            "pq_nbits": nbits,
            "opq": True,
            "nprobe": min(IVF_NPROBE, nlist),
            "rerank_depth": RERANK_DEPTH,
            "trained_on": min(n, TRAIN_MAX),
        }
    return {}


def make(kind: str, dim: int, p: dict, train: np.ndarray | None = None) -> faiss.Index:
    if kind == "flat":
        return faiss.IndexIDMap2(faiss.IndexFlatIP(dim))
    if kind == "hnsw":
        graph = faiss.IndexHNSWFlat(dim, p["M"], faiss.METRIC_INNER_PRODUCT)
        graph.hnsw.efConstruction = p["efConstruction"]
        return faiss.IndexIDMap2(graph)
    if kind == "ivfpq":
        opq = f"OPQ{p['pq_m']}," if p.get("opq") else ""
        index = faiss.index_factory(
            dim, f"{opq}IVF{p['nlist']},PQ{p['pq_m']}x{p['pq_nbits']}", faiss.METRIC_INNER_PRODUCT
        )
        if p.get("opq"):  # Faiss's default of 50 rotation rounds costs minutes and gains little after a few
            opq = faiss.downcast_VectorTransform(index.chain.at(0))
            opq.niter, opq.max_train_points = OPQ_ROUNDS, OPQ_TRAIN_MAX
        faiss.extract_index_ivf(index).cp.max_points_per_centroid = 64
        rng = np.random.default_rng(0)
        sample = train if len(train) <= TRAIN_MAX else train[np.sort(rng.choice(len(train), TRAIN_MAX, replace=False))]
        index.train(np.ascontiguousarray(sample, dtype=np.float32))
        return index
    raise ValueError(f"unknown index kind {kind!r}")


def resident_vectors(index: faiss.Index, slots: int) -> np.ndarray | None:
    """The vectors a flat or HNSW index already holds in memory, as a [slots, dim] view indexed by slot, or None.

    Exact search over a filter's rows reads them from here rather than from the memory-mapped file, whose pages come
    from disk after a build or under memory pressure (at a million items with the page cache dropped, a 1% filter's
    exact search: 8.9 ms p50 / 27 ms p95 from the file, 7.4 / 9.3 ms from here). Only when the index's ids are its
    insertion order, as builds and updates of these kinds make them; else None."""
    if not isinstance(index, faiss.IndexIDMap2) or index.ntotal != slots or slots == 0:
        return None
    inner = faiss.downcast_index(index.index)
    flat = faiss.downcast_index(inner.storage) if isinstance(inner, faiss.IndexHNSWFlat) else inner
    if not isinstance(flat, faiss.IndexFlat) or flat.metric_type != faiss.METRIC_INNER_PRODUCT:
        return None
    if not np.array_equal(faiss.vector_to_array(index.id_map), np.arange(slots)):
        return None
    return faiss.rev_swig_ptr(flat.get_xb(), slots * flat.d).reshape(slots, flat.d)


def search_params(kind: str, p: dict, selector: faiss.IDSelector | None, k: int):
    if kind == "hnsw":
        return faiss.SearchParametersHNSW(sel=selector, efSearch=max(p["efSearch"], 2 * k))
    if kind == "ivfpq":
        return (
            faiss.SearchParametersPreTransform(index_params=faiss.SearchParametersIVF(sel=selector, nprobe=p["nprobe"]))
            if p.get("opq")
            else faiss.SearchParametersIVF(sel=selector, nprobe=p["nprobe"])
        )
    return faiss.SearchParameters(sel=selector) if selector is not None else None


def can_remove(kind: str) -> bool:
    return kind in ("flat", "ivfpq")


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
