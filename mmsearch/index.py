"""The Faiss index and its directory: ``faiss.index``, ``ids.json``, ``skipped.csv`` and ``manifest.json``.

Vectors are L2-normalised, so inner product is cosine similarity. The index kind is chosen in ``make_faiss`` alone.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import faiss
import numpy as np

from .atomic import atomic_dir

FAISS_FILE, IDS_FILE, MANIFEST_FILE, REPORT_FILE = "faiss.index", "ids.json", "manifest.json", "skipped.csv"
DUPLICATES_FILE = "near_duplicates.csv"
INDEX_KINDS = {"flat": "exact inner-product search; fine up to about a million items on one machine"}


class IndexLoadError(RuntimeError):
    """An index directory that is missing, incomplete, or made for another model."""


def make_faiss(dim: int, kind: str = "flat") -> faiss.Index:
    if kind != "flat":
        raise ValueError(f"unknown index kind {kind!r}; available: {', '.join(INDEX_KINDS)}")
    return faiss.IndexFlatIP(dim)


@dataclass
class VectorIndex:
    faiss_index: faiss.Index
    ids: list[str]
    manifest: dict
    path: Path | None = None

    def __post_init__(self) -> None:
        self._row = {item_id: n for n, item_id in enumerate(self.ids)}

    def __len__(self) -> int:
        return len(self.ids)

    def __contains__(self, item_id: object) -> bool:
        return item_id in self._row

    @property
    def model_id(self) -> str:
        return self.manifest["model_id"]

    def search(self, queries: np.ndarray, k: int, rows: np.ndarray | None = None) -> list[list[tuple[str, float]]]:
        """Top-k (item_id, cosine score) for each query row; with ``rows``, among those index rows only."""
        queries = np.ascontiguousarray(np.atleast_2d(queries), dtype=np.float32)
        k = max(0, min(int(k), len(self.ids) if rows is None else len(rows)))
        if k == 0:
            return [[] for _ in range(len(queries))]
        params = None
        if rows is not None:  # searched inside the allowed set, so k matches come back whenever k exist
            params = faiss.SearchParameters(sel=faiss.IDSelectorBatch(np.asarray(rows, dtype=np.int64)))
        scores, rows = self.faiss_index.search(queries, k, params=params)
        return [[(self.ids[r], float(s)) for r, s in zip(rr, ss) if r >= 0] for rr, ss in zip(rows, scores)]

    def near_duplicates(self, threshold: float) -> list[tuple[str, str, float]]:
        """Pairs of items whose embeddings are at least ``threshold`` alike (Faiss range search over the index)."""
        vectors = self.faiss_index.reconstruct_n(0, len(self.ids))
        lims, scores, rows = self.faiss_index.range_search(vectors, threshold)
        pairs = []
        for i in range(len(self.ids)):
            for score, j in zip(scores[lims[i]:lims[i + 1]], rows[lims[i]:lims[i + 1]]):
                if j > i:
                    pairs.append((self.ids[i], self.ids[j], round(float(score), 4)))
        return pairs

    def row(self, item_id: str) -> int:
        return self._row[item_id]

    def vector(self, item_id: str) -> np.ndarray:
        return self.faiss_index.reconstruct(self._row[item_id])


def build(vectors: np.ndarray, ids: list[str], manifest: dict, kind: str = "flat") -> VectorIndex:
    if len(vectors) != len(ids):
        raise ValueError(f"{len(vectors)} vectors for {len(ids)} ids")
    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    index = make_faiss(vectors.shape[1], kind)
    index.add(vectors)
    return VectorIndex(index, list(ids), manifest | {"metric": "inner_product", "index_kind": kind,
                                                     "dimension": int(vectors.shape[1]), "item_count": len(ids)})


def write(index: VectorIndex, out_dir: Path, extra: Callable[[Path], None] | None = None) -> Path:
    """Writes the index directory atomically; ``extra`` may add files (the skipped-rows report) before the swap."""
    with atomic_dir(Path(out_dir)) as tmp:
        faiss.write_index(index.faiss_index, str(tmp / FAISS_FILE))
        (tmp / IDS_FILE).write_text(json.dumps(index.ids))
        if extra is not None:
            extra(tmp)
        # The manifest goes last: its presence marks a complete directory.
        (tmp / MANIFEST_FILE).write_text(json.dumps(index.manifest, indent=2, default=str))
    index.path = Path(out_dir)
    return Path(out_dir)


def load(path: Path, expect_model_id: str | None = None) -> VectorIndex:
    path = Path(path)
    if not (path / MANIFEST_FILE).exists():
        raise IndexLoadError(f"no index at {path} (build one with: python index_build.py --catalog ... --out {path})")
    manifest = json.loads((path / MANIFEST_FILE).read_text())
    if expect_model_id is not None and manifest.get("model_id") != expect_model_id:
        raise IndexLoadError(f"the index at {path} was built with {manifest.get('model_id')!r}, but the loaded model "
                             f"is {expect_model_id!r}; rebuild it with index_build.py --model, or load that model")
    try:
        faiss_index = faiss.read_index(str(path / FAISS_FILE))
        ids = json.loads((path / IDS_FILE).read_text())
    except (RuntimeError, OSError, ValueError) as exc:
        raise IndexLoadError(f"the index at {path} is damaged ({exc}); rebuild it with index_build.py") from exc
    if faiss_index.ntotal != len(ids):
        raise IndexLoadError(f"the index at {path} has {faiss_index.ntotal} vectors but {len(ids)} ids; rebuild it")
    return VectorIndex(faiss_index, ids, manifest, path)
