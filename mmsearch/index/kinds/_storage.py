"""The vectors a flat or HNSW index already holds in memory, read where they lie."""

from __future__ import annotations

import faiss
import numpy as np


def resident_vectors(index: faiss.Index, slots: int) -> np.ndarray | None:
    """The vectors as a [slots, dim] view indexed by slot, or None.

    Exact search over a filter's rows reads them from here rather than from the memory-mapped file, whose pages come
    from disk after a build or under memory pressure (docs/large-catalogs.md has the figures). Only when the index's
    ids are its insertion order, as builds and updates of these kinds make them."""
    if not isinstance(index, faiss.IndexIDMap2) or index.ntotal != slots or slots == 0:
        return None
    inner = faiss.downcast_index(index.index)
    flat = faiss.downcast_index(inner.storage) if isinstance(inner, faiss.IndexHNSWFlat) else inner
    if not isinstance(flat, faiss.IndexFlat) or flat.metric_type != faiss.METRIC_INNER_PRODUCT:
        return None
    if not np.array_equal(faiss.vector_to_array(index.id_map), np.arange(slots)):
        return None
    return faiss.rev_swig_ptr(flat.get_xb(), slots * flat.d).reshape(slots, flat.d)
