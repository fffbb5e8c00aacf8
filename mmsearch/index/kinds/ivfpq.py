"""``ivfpq``: OPQ rotation, inverted lists and product-quantised codes, 64 bytes a vector at any dimension, read
memory-mapped, for catalogs past the memory budget. The codes rank candidates; the exact vectors order them."""

from __future__ import annotations

import math

import faiss
import numpy as np

from mmsearch.index.kinds._base import FaissKind

IVF_NPROBE, RERANK_DEPTH = 48, 200
TRAIN_MAX = 65_536  # training sample for IVF centroids and product quantisers
OPQ_ROUNDS, OPQ_TRAIN_MAX = 8, 16_384  # Faiss's default of 50 rotation rounds costs minutes and gains little after 8


class IVFPQ(FaissKind):
    name, order, when = "ivfpq", 2, {}
    mapped = True

    def params(self, n: int, dim: int) -> dict:
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

    def make(self, dim: int, params: dict, train: np.ndarray, table=None):
        opq = f"OPQ{params['pq_m']}," if params.get("opq") else ""
        description = f"{opq}IVF{params['nlist']},PQ{params['pq_m']}x{params['pq_nbits']}"
        index = faiss.index_factory(dim, description, faiss.METRIC_INNER_PRODUCT)
        if params.get("opq"):
            rotation = faiss.downcast_VectorTransform(index.chain.at(0))
            rotation.niter, rotation.max_train_points = OPQ_ROUNDS, OPQ_TRAIN_MAX
        faiss.extract_index_ivf(index).cp.max_points_per_centroid = 64
        rng = np.random.default_rng(0)
        sample = train if len(train) <= TRAIN_MAX else train[np.sort(rng.choice(len(train), TRAIN_MAX, replace=False))]
        index.train(np.ascontiguousarray(sample, dtype=np.float32))
        return index

    def bytes(self, n: int, dim: int) -> int:
        return n * 64

    def search_params(self, params: dict, selector, k: int):
        ivf = faiss.SearchParametersIVF(sel=selector, nprobe=params["nprobe"])
        return faiss.SearchParametersPreTransform(index_params=ivf) if params.get("opq") else ivf

    def ranked(self, engine, vectors, queries, k, selector, params, available):
        depth = min(max(k, params.get("rerank_depth", 0)), available)
        scores, slots = engine.search(queries, depth, params=self.search_params(params, selector, depth))
        return rerank(vectors, queries, slots, k)

    def describe(self, n: int, dim: int, budget: int) -> str:
        return (
            f"an in-memory index would not fit the {budget / 2**30:.1f} GiB budget: quantised codes, re-ranked exactly"
        )


def rerank(vectors: np.ndarray, queries: np.ndarray, slots: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The candidates ``slots`` ordered by their exact vectors' scores."""
    out_s = np.full((len(queries), max(k, slots.shape[1])), -np.inf, dtype=np.float32)
    out_i = np.full(out_s.shape, -1, dtype=np.int64)
    for q in range(len(queries)):
        candidates = np.sort(slots[q][slots[q] >= 0])  # sorted reads are sequential in the mapped file
        if len(candidates) == 0:
            continue
        exact = np.asarray(vectors[candidates], dtype=np.float32) @ queries[q]
        order = np.argsort(-exact, kind="stable")
        out_s[q, : len(candidates)], out_i[q, : len(candidates)] = exact[order], candidates[order]
    return out_s, out_i


KIND = IVFPQ()
