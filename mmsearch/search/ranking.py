"""The ranked lists a search answers from, over one snapshot: by embedding (filtered, near-duplicates counted once),
by keywords (BM25), and both fused by reciprocal rank fusion; the hits dressed with their listings.

A filter selects rows before the vector search, so a filtered query returns k hits whenever k items match; a
near-duplicate group takes one place, and when duplicates used up places the list is searched deeper.
"""

from __future__ import annotations

import numpy as np

from mmsearch.index import keyword as kw
from mmsearch.index.filters import Clause, FilterError, matching_rows, parse_filters
from mmsearch.search.listings import dress
from mmsearch.search.results import Hit, QueryError
from mmsearch.search.snapshot import Snapshot
from mmsearch.search.stages import stage
from mmsearch.store.features import FeatureStore

FUSION_DEPTH = 100  # candidates taken from each list before fusing; deeper ranks add almost nothing under RRF


def filter_rows(snap: Snapshot, filters: str | None) -> tuple[np.ndarray | None, list[Clause]]:
    """The index rows a filter allows (None: every row), and its clauses (an engine that holds the catalog's
    columns applies them itself)."""
    if not (filters and filters.strip()):
        return None, []
    try:
        clauses = parse_filters(filters)
        return matching_rows(snap.columns, clauses), clauses
    except FilterError as exc:
        raise QueryError(str(exc)) from exc


def collapse(snap: Snapshot, hits: list[tuple[str, float]], k: int) -> list[tuple[str, float]]:
    """The first ``k`` hits with one per near-duplicate group."""
    seen, out = set(), []
    for item_id, score in hits:
        group = snap.groups.get(item_id, item_id)
        if group not in seen:
            seen.add(group)
            out.append((item_id, score))
            if len(out) == k:
                break
    return out


def closest(lists: list[list[tuple[str, float]]], k: int) -> list[tuple[str, float]]:
    """Several queries' top lists as one: each item at its best score, best first, k of them."""
    if len(lists) == 1:
        return lists[0]
    best: dict[str, float] = {}
    for hits in lists:
        for item_id, score in hits:
            if score > best.get(item_id, -np.inf):
                best[item_id] = score
    return sorted(best.items(), key=lambda hit: -hit[1])[:k]


class Ranking:
    """The lists of one snapshot, dressed from ``store``; ``rrf_k`` is fusion's rank constant."""

    def __init__(self, snap: Snapshot, store: FeatureStore, rrf_k: int):
        self.snap, self.store, self.rrf_k = snap, store, rrf_k

    def by_vector(
        self, vector: np.ndarray, k: int, filters: str | None = None, min_score: float | None = None
    ) -> list[Hit]:
        """Top-k by cosine similarity, dressed; near-duplicates count once."""
        found = self.dressed(self.vector_ranked(vector, k, filters), min_score)
        for h in found:
            h.similarity = h.score
        return found

    def vector_ranked(self, vector: np.ndarray, k: int, filters: str | None = None) -> list[tuple[str, float]]:
        """Top-k (item id, cosine similarity); near-duplicates count once. Several query rows (a product's pictures,
        for its similar items) rank each item by its closest to any of them."""
        snap = self.snap
        rows, clauses = filter_rows(snap, filters)
        with stage("vector_search"):
            hits = closest(snap.index.search(vector, k, rows, clauses), k)
        available = len(snap.index) if rows is None else len(rows)
        fetch = k
        while snap.groups:
            unique = collapse(snap, hits, k)
            if len(unique) >= k or fetch >= available:
                hits = unique
                break
            fetch = min(available, fetch * 2)  # duplicates used up places: look further down the list
            hits = closest(snap.index.search(vector, fetch, rows, clauses), fetch)
        return hits

    def word_rows(self, filters: str | None, negative: list[str]) -> tuple[np.ndarray | None, list[Clause]]:
        """The rows a word query may return: the filter's, less every item whose text says a pushed-away word; and
        the filter's clauses while they still say exactly which rows those are."""
        rows, clauses = filter_rows(self.snap, filters)
        if negative:
            everything = np.arange(len(self.snap.index)) if rows is None else rows
            rows, clauses = np.setdiff1d(everything, self.snap.keyword.rows_with(negative)), []
        return rows, clauses

    def lists(
        self, vector: np.ndarray | None, words: str, rows: np.ndarray | None, depth: int, clauses: list[Clause] = ()
    ) -> tuple[list[int], list[tuple[int, float]]]:
        """Top-``depth`` rows by embedding (none when ``vector`` is None) and (row, BM25) by keywords."""
        snap, by_vector = self.snap, []
        if vector is not None:
            with stage("vector_search"):
                by_vector = [snap.index.row(i) for i, _ in snap.index.search(vector, depth, rows, list(clauses))[0]]
        with stage("keyword"):
            return by_vector, snap.keyword.search(words, depth, rows)

    def by_words(
        self,
        vector: np.ndarray,
        words: str,
        negative: list[str],
        k: int,
        mode: str,
        weight: float,
        filters: str | None = None,
        min_score: float | None = None,
    ) -> list[Hit]:
        """Keyword (BM25) or hybrid hits, dressed (``word_ranked``), with their similarity and BM25."""
        picked, bm25 = self.word_ranked(vector, words, negative, k, mode, weight, filters)
        found = self.dressed(picked, min_score)
        for h in found:
            self.scored(h, vector, bm25)
        return found

    def scored(self, hit: Hit, vector: np.ndarray, bm25: dict[str, float]) -> Hit:
        """A word search's hit with its cosine similarity to ``vector`` and its BM25 (None if not a keyword hit)."""
        hit.similarity = round(float(self.snap.index.vector(hit.item_id) @ vector), 4)
        hit.keyword_score = round(bm25[hit.item_id], 4) if hit.item_id in bm25 else None
        return hit

    def closest_picture(self, hit: Hit, vector: np.ndarray) -> Hit:
        """A product with several pictures: the one closest to ``vector`` becomes the hit's matched picture, and
        its cosine the hit's similarity (the product is ranked by it)."""
        index = self.snap.index
        positions = index.picture_slots(hit.item_id)
        if len(positions) > 1:
            cosines = np.asarray(index.vectors[[slot for _, slot in positions]], dtype=np.float32) @ vector
            best = int(np.argmax(cosines))
            hit.similarity = round(float(cosines[best]), 4)
            position = positions[best][0]
            if 0 < position < len(hit.image_urls):  # shown in its place in the gallery, served by its own route
                hit.matched_image_url = hit.image_urls[position]
                hit.image = index.picture_paths(hit.item_id)[position]
        return hit

    def word_ranked(
        self,
        vector: np.ndarray,
        words: str,
        negative: list[str],
        k: int,
        mode: str,
        weight: float,
        filters: str | None = None,
    ) -> tuple[list[tuple[str, float]], dict[str, float]]:
        """Keyword (BM25) or hybrid (item id, score), top k: the keyword list alone, or fused with the vector list
        (``weight``: the keyword list's share; scores scaled so that 1.0 is first place in both lists); and every
        keyword hit's BM25. The lists are at least FUSION_DEPTH deep, and as deep for every k up to it, so that a
        page of a longer answer is the same as a shorter answer."""
        snap = self.snap
        rows, clauses = self.word_rows(filters, negative)
        available = len(snap.index) if rows is None else len(rows)
        depth = min(available, max(FUSION_DEPTH, k))
        while True:
            by_vector, by_keyword = self.lists(None if mode == "keyword" else vector, words, rows, depth, clauses)
            with stage("fusion"):
                ranked = (
                    by_keyword
                    if mode == "keyword"
                    else kw.reciprocal_rank_fusion(by_vector, [r for r, _ in by_keyword], weight, self.rrf_k)
                )
                picked = collapse(snap, [(snap.index.ids[r], s) for r, s in ranked], k)
            if len(picked) >= k or depth >= available or (mode == "keyword" and len(by_keyword) < depth):
                break
            depth = min(available, depth * 2)  # near-duplicates took places: look further down
        if mode == "hybrid":
            picked = [(item_id, score * (self.rrf_k + 1)) for item_id, score in picked]
        return picked, {snap.index.ids[r]: s for r, s in by_keyword}

    def dressed(self, hits: list[tuple[str, float]], min_score: float | None = None) -> list[Hit]:
        """Hits with their listings; those below ``min_score`` dropped."""
        if min_score is not None:
            hits = [(item_id, score) for item_id, score in hits if score >= min_score]
        return dress(self.store, self.snap, hits)
