"""``hnsw``: a graph over the full vectors, while the graph fits in the memory budget. Faiss's HNSW cannot remove
vectors, so a removed or re-encoded item's slot is masked at search and the index is rebuilt once masked slots pass
COMPACT_AT of all slots (vectors.py)."""

from __future__ import annotations

import faiss

from mmsearch.index.kinds._base import FaissKind
from mmsearch.index.kinds._storage import resident_vectors

HNSW_M, HNSW_EF_CONSTRUCTION, HNSW_EF_SEARCH = 32, 80, 96


class HNSW(FaissKind):
    name, order, when = "hnsw", 1, {"fits_budget": True}
    removes = False

    def params(self, n: int, dim: int) -> dict:
        return {"M": HNSW_M, "efConstruction": HNSW_EF_CONSTRUCTION, "efSearch": HNSW_EF_SEARCH}

    def make(self, dim: int, params: dict, train=None, table=None):
        graph = faiss.IndexHNSWFlat(dim, params["M"], faiss.METRIC_INNER_PRODUCT)
        graph.hnsw.efConstruction = params["efConstruction"]
        return faiss.IndexIDMap2(graph)

    def bytes(self, n: int, dim: int) -> int:
        return int(n * (dim * 4 + HNSW_M * 2 * 4) * 1.1)

    def search_params(self, params: dict, selector, k: int):
        return faiss.SearchParametersHNSW(sel=selector, efSearch=max(params["efSearch"], 2 * k))

    def resident(self, index, slots: int):
        return resident_vectors(index, slots)

    def describe(self, n: int, dim: int, budget: int) -> str:
        return f"HNSW needs ~{self.bytes(n, dim) / 2**30:.1f} GiB <= the {budget / 2**30:.1f} GiB budget"


KIND = HNSW()
