"""Keyword retrieval: BM25 (bm25s, with Snowball stems) over the catalog's free-text fields, and its fusion with
vector results by reciprocal rank fusion.

The BM25 index lives in the index directory beside Faiss (``keyword/``), in index row order, so a filter's row set
serves both searches.
"""
from __future__ import annotations

import logging
from pathlib import Path

import bm25s
import numpy as np
import pandas as pd
import Stemmer

KEYWORD_DIR = "keyword"
RRF_K = 60  # the constant of Cormack et al. (2009); mmsearch's default (Config.rrf_k) is smaller, see there
_STEMMER = Stemmer.Stemmer("english")
logging.getLogger("bm25s").setLevel(logging.WARNING)  # its per-build debug lines are noise in a CLI


def tokenize(texts: list[str]) -> list[list[str]]:
    """Lower-cased word stems without English stop words: "Striped T-shirts" -> ["stripe", "shirt"]."""
    return bm25s.tokenize(texts, stopwords="en", stemmer=_STEMMER, return_ids=False, show_progress=False)


def item_texts(rows: list[dict] | pd.DataFrame, fields: list[str]) -> list[str]:
    """One text per item: the named fields that it has, joined. A DataFrame is read column by column (a dict per
    row of a million-item catalog would cost a gigabyte)."""
    if isinstance(rows, pd.DataFrame):
        columns = [rows[f].tolist() for f in fields if f in rows.columns]
        return [" ".join(str(v) for v in values if v not in (None, "") and v == v) for values in zip(*columns)] \
            if columns else [""] * len(rows)
    return [" ".join(str(r[f]) for f in fields if r.get(f) not in (None, "") and r.get(f) == r.get(f))
            for r in rows]


class KeywordIndex:
    def __init__(self, retriever: bm25s.BM25, size: int):
        self.retriever, self.size = retriever, size

    @classmethod
    def build(cls, texts: list[str]) -> "KeywordIndex":
        retriever = bm25s.BM25()
        # An item with no text still takes its row, so rows line up with the vector index.
        retriever.index([t or ["<empty>"] for t in tokenize(texts)], show_progress=False)
        return cls(retriever, len(texts))

    def save(self, directory: Path) -> None:
        self.retriever.save(str(directory), show_progress=False)

    @classmethod
    def load(cls, directory: Path, size: int) -> "KeywordIndex":
        retriever = bm25s.BM25.load(str(directory), show_progress=False)
        return cls(retriever, size)

    def rows_with(self, words: list[str]) -> np.ndarray:
        """Rows whose text has any of ``words`` (after stemming): what a negated word removes."""
        indptr, indices = self.retriever.scores["indptr"], self.retriever.scores["indices"]
        found = [indices[indptr[t]:indptr[t + 1]] for t in
                 (self.retriever.vocab_dict.get(s) for s in (tokenize(words)[0] if words else [])) if t is not None]
        return np.unique(np.concatenate(found)).astype(np.int64) if found else np.empty(0, dtype=np.int64)

    def search(self, query: str, k: int, rows: np.ndarray | None = None) -> list[tuple[int, float]]:
        """Top-k (index row, BM25 score) with a score above zero; ``rows`` limits the search to those rows."""
        stems = [s for s in tokenize([query])[0] if s in self.retriever.vocab_dict]
        if not stems or k <= 0:
            return []
        mask = None  # no mask without a filter: a million-long array per query is not free
        if rows is not None:
            mask = np.zeros(self.size, dtype=np.float32)
            mask[np.asarray(rows, dtype=np.int64)] = 1.0
        scores = self.retriever.get_scores(stems, weight_mask=mask)
        # Top-k among the rows that score at all: most of a large catalog scores zero, and a partition over a
        # million mostly-equal values is ten times slower than one over the few thousand that matter.
        hits = np.flatnonzero(scores > 0)
        if len(hits) > k:
            hits = hits[np.argpartition(-scores[hits], k - 1)[:k]]
        hits = hits[np.lexsort((hits, -scores[hits]))]  # best first; ties by row, so answers are stable
        return [(int(r), float(scores[r])) for r in hits]


def reciprocal_rank_fusion(vector_rows: list[int], keyword_rows: list[int], keyword_weight: float,
                           k: int = RRF_K) -> list[tuple[int, float]]:
    """Rows ranked by (1 - w) / (k + vector rank) + w / (k + keyword rank), ranks from 1; a row missing from a list
    gets nothing from it. w = 0 is vector order, w = 1 keyword order (then vector-only rows follow)."""
    if not 0.0 <= keyword_weight <= 1.0:
        raise ValueError(f"keyword weight must be between 0 and 1, not {keyword_weight}")
    fused: dict[int, float] = {}
    for weight, ranked in ((1.0 - keyword_weight, vector_rows), (keyword_weight, keyword_rows)):
        for rank, row in enumerate(ranked, start=1):
            fused[row] = fused.get(row, 0.0) + weight / (k + rank)
    # Ties (a weight of 0 or 1) keep the order of first appearance: vector list first.
    order = {row: i for i, row in enumerate(dict.fromkeys([*vector_rows, *keyword_rows]))}
    return sorted(fused.items(), key=lambda item: (-item[1], order[item[0]]))
