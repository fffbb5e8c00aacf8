"""What an index kind is: how its index is made, filled, searched, changed, saved and sized, and the rule (as data)
that chooses it. ``IndexKind`` is the interface the index directory (vectors.py) uses, and all it uses: an engine that
is not an in-process Faiss index (a vector database) is one more subclass. ``FaissKind`` implements it for Faiss.

Every kind stores vectors under slot ids, so an update adds and removes slots without renumbering; the exact vectors
stay beside it in the index directory (vectors.npy), where filtered exact search, re-ranking, similar items and
updates read them.
"""

from __future__ import annotations

from contextlib import contextmanager, nullcontext
from pathlib import Path

import numpy as np

EXACT_FILTER_MAX = 20_000  # a filter allowing at most this many rows is answered exactly from the vectors
# A query or two at a time gain nothing from OpenMP threads: waking them cost more than the search at every size
# measured (2k x 256 flat: 58 us on one thread, 120-215 us on two; 50k x 512: 4.5 ms against 6.5-7.8 ms), and on a
# busy machine they wait for a core. OpenMP keeps the thread count per OS thread, so this touches no other search.
FEW_QUERIES = 4


class IndexKind:
    """One kind of vector index. ``order`` and ``when`` are its choosing rule: kinds are tried in ``order`` and the
    first whose ``when`` holds for a catalog is chosen (``max_items``: at most that many items; ``fits_budget``: its
    ``bytes`` fit the memory budget; empty: always). ``engine`` below is the kind's own index object."""

    name: str
    order: int
    when: dict
    removes = True  # vectors can be taken out; else a removed item's slot is masked until the next compaction
    exact_filters = False  # every filtered search is answered exactly from the vectors, whatever the filter's size
    mapped = False  # read memory-mapped from the index directory when only searched
    file = "faiss.index"  # the engine's file in the index directory
    shared = False  # the engine lives outside the index directory, and an update changes it in place

    def params(self, n: int, dim: int) -> dict:
        """The parameters of an index of ``n`` vectors of ``dim`` dimensions (written into the manifest)."""
        return {}

    def make(self, dim: int, params: dict, train: np.ndarray, table=None):
        """An empty engine, trained on ``train`` where the kind needs training; ``table``: the items' catalog
        columns, for an engine that holds the columns filters read."""
        raise NotImplementedError

    def add(self, engine, vectors: np.ndarray, slots: np.ndarray, table=None) -> None:
        """Adds ``vectors`` under ``slots`` (with their rows of ``table`` where the engine holds columns)."""
        raise NotImplementedError

    def relabel(self, engine, vectors, before, after, reused: np.ndarray) -> None:
        """After an update, rewrites what the engine holds of kept items whose catalog columns changed (``before``
        and ``after``: the previous and the new items table, ``reused``: each new row's slot, -1 for new ones);
        nothing for an engine that holds no columns."""

    def remove(self, engine, slots: np.ndarray) -> None:
        raise NotImplementedError

    def count(self, engine) -> int:
        """How many vectors the engine holds (a check against the manifest when it is loaded)."""
        raise NotImplementedError

    def save(self, engine, path: Path) -> None:
        raise NotImplementedError

    def load(self, path: Path, writable: bool):
        """The engine saved at ``path``; memory-mapped when the kind is and it will only be searched."""
        raise NotImplementedError

    def exclusion(self, present: np.ndarray, slots: int):
        """What keeps the slots of removed items out of searches, for a kind that cannot remove them (``present``:
        the slots still live, of ``slots``), made once per loaded index; None when nothing needs excluding."""
        return None

    def expresses(self, engine, clauses: list) -> bool:
        """Whether the engine applies these filter clauses itself (over columns it holds): such a filter is passed
        to ``search`` whatever its size, instead of being answered exactly here."""
        return False

    def search(self, engine, vectors, queries, k, allowed, excluded, params: dict, available: int, clauses=()):
        """(scores, slots) of the top ``k`` per query among the ``allowed`` slots (None: every slot not
        ``excluded``); -1 where the engine ran out. ``available``: how many slots are allowed; ``clauses``: the
        filter that allowed them, for an engine that ``expresses`` it."""
        raise NotImplementedError

    def bytes(self, n: int, dim: int) -> int:
        """Memory the index of ``n`` vectors takes."""
        raise NotImplementedError

    def resident(self, engine, slots: int) -> np.ndarray | None:
        """The vectors the engine holds in memory as a [slots, dim] view indexed by slot, or None."""
        return None

    def describe(self, n: int, dim: int, budget: int) -> str:
        """Why the rule chose this kind, for the manifest and the build's output."""
        return f"{n:,} items"

    def reachable(self, engine) -> bool:
        """Whether the engine answers (an engine in another process may not: /readyz asks)."""
        return True


class FaissKind(IndexKind):
    """A kind whose engine is a Faiss index in this process, with ids as slots."""

    def add(self, engine, vectors: np.ndarray, slots: np.ndarray, table=None) -> None:
        for start in range(0, len(vectors), 65_536):  # bounded temporary memory inside Faiss
            engine.add_with_ids(vectors[start : start + 65_536], slots[start : start + 65_536])

    def remove(self, engine, slots: np.ndarray) -> None:
        import faiss

        engine.remove_ids(faiss.IDSelectorBatch(slots))

    def count(self, engine) -> int:
        return int(engine.ntotal)

    def save(self, engine, path: Path) -> None:
        import faiss

        faiss.write_index(engine, str(path))

    def load(self, path: Path, writable: bool):
        import faiss

        return faiss.read_index(str(path), faiss.IO_FLAG_MMAP if self.mapped and not writable else 0)

    def exclusion(self, present: np.ndarray, slots: int):
        import faiss

        bits = np.zeros((slots + 7) // 8, dtype=np.uint8)
        np.bitwise_or.at(bits, present >> 3, (1 << (present & 7)).astype(np.uint8))
        selector = faiss.IDSelectorBitmap(slots, faiss.swig_ptr(bits))
        selector.bits_kept = bits  # the selector reads this buffer: it lives as long as the selector
        return selector

    def search_params(self, params: dict, selector, k: int):
        """Faiss's search parameters: the allowed slots (``selector``) and the kind's own."""
        import faiss

        return faiss.SearchParameters(sel=selector) if selector is not None else None

    def search(self, engine, vectors, queries, k, allowed, excluded, params: dict, available: int, clauses=()):
        import faiss

        selector = excluded if allowed is None else faiss.IDSelectorBatch(allowed)
        with one_thread() if len(queries) <= FEW_QUERIES else nullcontext():
            return self.ranked(engine, vectors, queries, k, selector, params, available)

    def ranked(self, engine, vectors, queries, k, selector, params: dict, available: int):
        """The engine's own search, with ``selector`` (``search`` chooses the threads and the selector)."""
        return engine.search(queries, k, params=self.search_params(params, selector, k))


@contextmanager
def one_thread():
    import faiss

    before = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(1)
    try:
        yield
    finally:
        faiss.omp_set_num_threads(before)
