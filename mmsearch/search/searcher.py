"""Query time: encode the query, search Faiss, and dress each hit with its metadata from the Feast online store."""

from __future__ import annotations

import logging
import math
import threading
import time
from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

from mmsearch.config import Config
from mmsearch.encode.encoders import Encoder, encode_images, load_encoder
from mmsearch.index import keyword as kw
from mmsearch.index import vectors as vindex
from mmsearch.index.filters import FilterError, matching_rows, parse_filters, split_terms
from mmsearch.ingest.images import ImageError, load_image
from mmsearch.ingest.phrasing import normalize
from mmsearch.search.results import Answer, ItemNotFound, QueryError, Result, check_fraction, check_text_type
from mmsearch.search.snapshot import Live, stamp_of
from mmsearch.search.stages import stage
from mmsearch.store.features import FeatureStore

MAX_K = 100
NEGATIVE_WEIGHT = 0.7  # how far a '-term' pushes the query away from what it names
MODES = ("vector", "keyword", "hybrid")
FUSION_DEPTH = 100  # candidates taken from each list before fusing; deeper ranks add almost nothing under RRF
log = logging.getLogger("mmsearch.search")


class Searcher:
    def __init__(self, encoder: Encoder, index: vindex.VectorIndex, store: FeatureStore, config: Config):
        if index.model_id != encoder.model_id:
            raise vindex.IndexLoadError(f"index built with {index.model_id!r} but the model is {encoder.model_id!r}")
        self.encoder, self.store, self.config = encoder, store, config
        self.live = Live.of(index, config)
        self.reloads = 0
        self._reload_lock = threading.Lock()
        self._watcher: threading.Thread | None = None
        # Repeated text queries skip the encoder; keyed by model id and normalised text.
        self._encode_query = lru_cache(maxsize=config.query_cache)(self._encode_query_uncached)

    @classmethod
    def open(cls, config: Config, encoder: Encoder | None = None) -> Searcher:
        encoder = encoder or load_encoder(config.model, config.device)
        index = vindex.load(config.resolved_index(encoder.model_id), expect_model_id=encoder.model_id)
        data_dir = Path(index.manifest.get("data_dir", config.data_dir))
        return cls(
            encoder,
            index,
            FeatureStore(data_dir, index.manifest.get("online_store", config.online_store), config.listing_cache),
            config,
        )

    @property
    def index(self) -> vindex.VectorIndex:
        return self.live.index

    def query_cache_info(self):
        """Hits and misses of the text-query embedding cache (for /metrics)."""
        return self._encode_query.cache_info()

    def reload_if_changed(self) -> bool:
        """Swaps in the index directory's newer build, if there is one; queries in flight finish on the old one.
        A directory that cannot be read (a build swapping it this instant, a damaged one) keeps the old index."""
        path = self.live.index.path
        with self._reload_lock:
            try:
                if stamp_of(path) == self.live.stamp:
                    return False
                fresh = Live.open(path, self.encoder.model_id, self.config)
            except (OSError, vindex.IndexLoadError) as exc:
                log.warning("keeping the loaded index: %s", exc)
                return False
            self.live = fresh  # one reference assignment: atomic for every reader
            self.reloads += 1
            log.info(
                "swapped in the index built at %s (%d items)", fresh.index.manifest.get("built_at"), len(fresh.index)
            )
            return True

    def watch(self, interval: float | None = None) -> None:
        """Checks the index directory every ``interval`` seconds in a daemon thread (the app's hot reload)."""
        interval = self.config.reload_interval if interval is None else interval
        if interval <= 0 or self._watcher is not None:
            return

        def loop() -> None:
            while True:
                time.sleep(interval)
                self.reload_if_changed()

        self._watcher = threading.Thread(target=loop, name="mmsearch-index-watch", daemon=True)
        self._watcher.start()

    def _k(self, k: int | float | None) -> int:
        if k is None:
            return self.config.top_k
        try:
            whole = int(k)
        except (TypeError, ValueError, OverflowError):
            whole = 0
        if isinstance(k, bool) or whole != k or not 1 <= whole <= MAX_K:
            raise QueryError(f"k must be between 1 and {MAX_K}, not {k!r}")
        return whole

    def check_text(self, query: str | None) -> str:
        query = check_text_type(query, "The query").strip()
        if not query:
            raise QueryError("Type something to search for, e.g. 'red striped t-shirt'.")
        if len(query) > self.config.max_query_chars:
            raise QueryError(
                f"The query is {len(query):,} characters long; the limit is "
                f"{self.config.max_query_chars}. Shorten it to the words that matter."
            )
        return query

    def _encode_query_uncached(self, model_id: str, normalised: str) -> np.ndarray:
        vector = self.encoder.encode_text([normalised])[0]
        vector.setflags(write=False)  # shared by every later hit of the cache
        return vector

    def query_vector(
        self, query: str | None = None, image: str | Path | Image.Image | None = None, image_weight: float = 0.5
    ) -> tuple[np.ndarray, str, list[str]]:
        """The query's embedding, its positive words and its negated words. Text and image together blend as
        (1 - image_weight) * text + image_weight * image; words starting with '-' push away from what they name."""
        has_text, has_image = bool(check_text_type(query, "The query").strip()), image is not None and image != ""
        if not has_text and not has_image:
            raise QueryError("Type something to search for, e.g. 'red striped t-shirt', or upload an image.")
        positive, negative, vector = "", [], None
        if has_text:
            positive, negative = split_terms(self.check_text(query))
            if not positive:
                raise QueryError("Say what you want as well as what you don't, e.g. 'sneaker -white'.")
            with stage("encode"):
                vector = self._encode_query(self.encoder.model_id, normalize(positive))
                if negative:
                    away = np.mean([self._encode_query(self.encoder.model_id, w.lower()) for w in negative], axis=0)
                    vector = vector - NEGATIVE_WEIGHT * away
        if has_image:
            image_weight = check_fraction(image_weight, "image weight")
            try:
                picture = load_image(image, self.config.max_upload_pixels)
            except ImageError as exc:
                raise QueryError(f"That upload cannot be used as an image: {exc}.") from exc
            with stage("encode"):
                pixels = encode_images(self.encoder, [picture])[0]
            vector = (
                pixels
                if vector is None
                else (1 - image_weight) * vector / np.linalg.norm(vector) + image_weight * pixels
            )
        return vector / np.linalg.norm(vector), positive, negative

    def search(
        self,
        query: str | None = None,
        image: str | Path | Image.Image | None = None,
        k: int | None = None,
        min_score: float | None = None,
        filters: str | None = None,
        mode: str | None = None,
        keyword_weight: float | None = None,
        image_weight: float | None = None,
    ) -> Answer:
        """Text, image, or both; ``mode`` vector, keyword (BM25 over the catalog's text) or hybrid (both fused by
        reciprocal rank fusion, ``keyword_weight`` of 0..1 for the keyword side, scaled by the text's share when an
        image comes too). Keyword needs words: an image-only query is a vector search in any mode."""
        mode = check_text_type(mode or self.config.search_mode, "The mode").strip().lower()
        if mode not in MODES:
            raise QueryError(f"Unknown search mode {mode!r}; use one of {', '.join(MODES)}.")
        weight = check_fraction(
            self.config.keyword_weight if keyword_weight is None else keyword_weight, "keyword weight"
        )
        k = self._k(k)
        share = check_fraction(self.config.image_weight if image_weight is None else image_weight, "image weight")
        vector, words, negative = self.query_vector(query, image, share)
        if image is not None and image != "":
            weight *= 1.0 - share  # the words' side of the fusion shrinks with the image's share of the query
        has_image = image is not None and image != ""
        kind = "text+image" if words and has_image else ("text" if words else "image")
        live = self.live
        if not words or mode == "vector":
            if mode == "keyword":
                raise QueryError("Keyword search needs words: type some, or switch the mode to vector or hybrid.")
            return Answer(self._search_vector(live, vector, k, min_score, filters), "vector", kind)
        return Answer(
            self._search_words(live, vector, words, negative, k, min_score, filters, mode, weight), mode, kind
        )

    def search_text(
        self,
        query: str,
        k: int | None = None,
        min_score: float | None = None,
        filters: str | None = None,
        mode: str | None = None,
        keyword_weight: float | None = None,
    ) -> Answer:
        """Text search in the configured mode unless ``mode`` names another."""
        if not check_text_type(query, "The query").strip():
            self.check_text(query)
        return self.search(query, None, k, min_score, filters, mode, keyword_weight)

    def more_like_this(
        self, item_id: str, k: int | None = None, min_score: float | None = None, filters: str | None = None
    ) -> Answer:
        """Searches with an indexed item's stored embedding: no image is decoded or encoded again."""
        item_id = check_text_type(item_id, "The item id").strip()
        live = self.live
        if item_id not in live.index:
            raise ItemNotFound(f"No item {item_id!r} in this index.")
        return Answer(
            self._search_vector(live, live.index.vector(item_id), self._k(k), min_score, filters), "vector", "similar"
        )

    def item(self, item_id: str) -> Result:
        """An indexed item's listing (its score is 1: it is itself)."""
        item_id = check_text_type(item_id, "The item id").strip()
        live = self.live
        if item_id not in live.index:
            raise ItemNotFound(f"No item {item_id!r} in this index.")
        return self._results(live, [(item_id, 1.0)], None)[0]

    def search_image(
        self,
        image: str | Path | Image.Image | None,
        k: int | None = None,
        min_score: float | None = None,
        filters: str | None = None,
    ) -> Answer:
        if image is None or image == "":
            raise QueryError("Upload an image to search with.")
        return self.search(None, image, k, min_score, filters, mode="vector")

    @staticmethod
    def _collapse(live: Live, hits: list[tuple[str, float]], k: int) -> list[tuple[str, float]]:
        seen, out = set(), []
        for item_id, score in hits:
            group = live.groups.get(item_id, item_id)
            if group not in seen:
                seen.add(group)
                out.append((item_id, score))
                if len(out) == k:
                    break
        return out

    def keyword_index(self) -> kw.KeywordIndex:
        """The BM25 index saved with the vector index, in its row order."""
        return self.live.keyword

    def metadata_table(self) -> pd.DataFrame:
        """Every indexed item's catalog columns in index order, from the index's columnar file."""
        return self.live.table

    @staticmethod
    def _filter_rows(live: Live, filters: str | None) -> np.ndarray | None:
        if not (filters and filters.strip()):
            return None
        try:
            return matching_rows(live.columns, parse_filters(filters))
        except FilterError as exc:
            raise QueryError(str(exc)) from exc

    def _word_rows(self, live: Live, filters: str | None, negative: list[str]) -> np.ndarray | None:
        """The rows a word query may return: the filter's, less every item whose text says a negated word."""
        rows = self._filter_rows(live, filters)
        if negative:
            rows = np.setdiff1d(np.arange(len(live.index)) if rows is None else rows, live.keyword.rows_with(negative))
        return rows

    def candidates(
        self, query: str, filters: str | None = None, depth: int = FUSION_DEPTH
    ) -> tuple[list[int], list[tuple[int, float]]]:
        """The two lists hybrid search fuses, as index rows: by embedding, and (row, BM25) by keywords."""
        vector, words, negative = self.query_vector(query)
        live = self.live
        return self._lists(live, vector, words, self._word_rows(live, filters, negative), depth)

    @staticmethod
    def _lists(
        live: Live, vector: np.ndarray | None, words: str, rows: np.ndarray | None, depth: int
    ) -> tuple[list[int], list[tuple[int, float]]]:
        """Top-``depth`` rows by embedding (none when ``vector`` is None) and (row, BM25) by keywords."""
        by_vector = []
        if vector is not None:
            with stage("vector_search"):
                by_vector = [live.index.row(i) for i, _ in live.index.search(vector, depth, rows)[0]]
        with stage("keyword"):
            return by_vector, live.keyword.search(words, depth, rows)

    def _search_words(
        self,
        live: Live,
        vector: np.ndarray,
        words: str,
        negative: list[str],
        k: int,
        min_score: float | None,
        filters: str | None,
        mode: str,
        weight: float,
    ) -> list[Result]:
        rows = self._word_rows(live, filters, negative)
        available = len(live.index) if rows is None else len(rows)
        depth = min(available, max(FUSION_DEPTH, 2 * k))
        rrf_k = self.config.rrf_k
        while True:
            by_vector, by_keyword = self._lists(live, None if mode == "keyword" else vector, words, rows, depth)
            with stage("fusion"):
                ranked = (
                    by_keyword
                    if mode == "keyword"
                    else kw.reciprocal_rank_fusion(by_vector, [r for r, _ in by_keyword], weight, rrf_k)
                )
                picked = self._collapse(live, [(live.index.ids[r], s) for r, s in ranked], k)
            if len(picked) >= k or depth >= available or (mode == "keyword" and len(by_keyword) < depth):
                break
            depth = min(available, depth * 2)  # near-duplicates took places: look further down
        if mode == "hybrid":  # scaled so that 1.0 is first place in both lists
            picked = [(item_id, score * (rrf_k + 1)) for item_id, score in picked]
        results = self._results(live, picked, min_score)
        bm25 = {live.index.ids[r]: s for r, s in by_keyword}
        for r in results:
            r.similarity = round(float(live.index.vector(r.item_id) @ vector), 4)
            r.keyword_score = round(bm25[r.item_id], 4) if r.item_id in bm25 else None
        return results

    def search_vector(
        self,
        vector: np.ndarray,
        k: int,
        min_score: float | None = None,
        filters: str | None = None,
        collapse: bool = True,
    ) -> list[Result]:
        """Top-k by cosine; with ``min_score``, hits below it are dropped (callers report how many of k were);
        with ``filters``, only matching items are searched; near-duplicates count once unless ``collapse=False``."""
        return self._search_vector(self.live, vector, k, min_score, filters, collapse)

    def _search_vector(
        self,
        live: Live,
        vector: np.ndarray,
        k: int,
        min_score: float | None = None,
        filters: str | None = None,
        collapse: bool = True,
    ) -> list[Result]:
        rows = self._filter_rows(live, filters)
        with stage("vector_search"):
            hits = live.index.search(vector, k, rows)[0]
        available = len(live.index) if rows is None else len(rows)
        fetch = k
        while collapse and live.groups:
            unique = self._collapse(live, hits, k)
            if len(unique) >= k or fetch >= available:
                hits = unique
                break
            fetch = min(available, fetch * 2)  # duplicates used up places: look further down the list
            hits = live.index.search(vector, fetch, rows)[0]
        results = self._results(live, hits, min_score)
        for r in results:
            r.similarity = r.score
        return results

    def _results(self, live: Live, hits: list[tuple[str, float]], min_score: float | None) -> list[Result]:
        """Hits dressed with their listings from the Feast online store; those below ``min_score`` dropped."""
        if min_score is not None:
            if not math.isfinite(min_score):
                raise QueryError(f"The minimum score must be a number, not {min_score}.")
            hits = [(item_id, score) for item_id, score in hits if score >= min_score]
        ids = [item_id for item_id, _ in hits]
        revisions = [live.index.revisions[live.index.row(i)] for i in ids]
        with stage("feast_read"):
            meta = self.store.metadata(live.index.catalog_id, ids, revisions)
        results = []
        for (item_id, score), rec in zip(hits, meta):
            core = {f: rec.get(f) for f in ("title", "image", "price", "category", "description")}
            extra = {k: v for k, v in rec.items() if k not in core and k != "item_id"}
            results.append(
                Result(
                    item_id=item_id,
                    score=round(score, 4),
                    title=core["title"] or item_id,
                    image=core["image"] or "",
                    price=core["price"],
                    category=core["category"] or "",
                    description=core["description"] or "",
                    metadata=extra,
                )
            )
        return results
