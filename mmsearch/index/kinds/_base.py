"""What an index kind is: how its index is made, searched, changed and sized, and the rule (as data) that chooses it.

Every kind stores vectors under slot ids (``add_with_ids``), so an update adds and removes slots without renumbering;
the exact vectors stay beside it in the index directory (vectors.npy), where filtered exact search, re-ranking, similar
items and updates read them. A kind that is not an in-process Faiss index (a vector database) implements the same
methods over its own client.
"""

from __future__ import annotations

import numpy as np

EXACT_FILTER_MAX = 20_000  # a filter allowing at most this many rows is answered exactly from the vectors


class IndexKind:
    """One kind of vector index. ``order`` and ``when`` are its choosing rule: kinds are tried in ``order`` and the
    first whose ``when`` holds for a catalog is chosen (``max_items``: at most that many items; ``fits_budget``: its
    ``bytes`` fit the memory budget; empty: always)."""

    name: str
    order: int
    when: dict
    removes = True  # vectors can be taken out; else a removed item's slot is masked until the next compaction
    exact_filters = False  # every filtered search is answered exactly from the vectors, whatever the filter's size
    mapped = False  # read memory-mapped from the index directory when only searched

    def params(self, n: int, dim: int) -> dict:
        """The parameters of an index of ``n`` vectors of ``dim`` dimensions (written into the manifest)."""
        return {}

    def make(self, dim: int, params: dict, train: np.ndarray):
        """An empty index, trained on ``train`` where the kind needs training."""
        raise NotImplementedError

    def bytes(self, n: int, dim: int) -> int:
        """Memory the index of ``n`` vectors takes."""
        raise NotImplementedError

    def search_params(self, params: dict, selector, k: int):
        """Faiss's search parameters: the allowed slots (``selector``) and the kind's own."""
        import faiss

        return faiss.SearchParameters(sel=selector) if selector is not None else None

    def search(self, index, vectors: np.ndarray, queries: np.ndarray, k: int, selector, params: dict, available: int):
        """(scores, slots) of the top ``k`` per query among the ``available`` allowed slots (``selector``); -1
        where the index ran out."""
        return index.search(queries, k, params=self.search_params(params, selector, k))

    def resident(self, index, slots: int) -> np.ndarray | None:
        """The vectors the index holds in memory as a [slots, dim] view indexed by slot, or None."""
        return None

    def describe(self, n: int, dim: int, budget: int) -> str:
        """Why the rule chose this kind, for the manifest and the build's output."""
        return f"{n:,} items"
