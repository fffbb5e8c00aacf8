"""Query time: encode the query, search Faiss, and dress each hit with its metadata from the Feast online store."""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

from . import index as vindex
from .catalog import ImageError, load_image
from .config import Config
from .encoders import Encoder, encode_images, load_encoder
from .features import FeatureStore
from .filters import FilterError, matching_rows, parse_filters, split_terms

MAX_K = 100
NEGATIVE_WEIGHT = 0.7  # how far a '-term' pushes the query away from what it names


class QueryError(ValueError):
    """A query the searcher refuses; the message is meant for the person who typed or uploaded it."""


@dataclass
class Result:
    item_id: str
    score: float
    title: str
    image: str
    price: float | None = None
    category: str = ""
    description: str = ""
    metadata: dict = field(default_factory=dict)

    def caption(self) -> str:
        # Score first: the gallery cuts long captions at the end, and the score is what a judge compares.
        price = f" · ${self.price:.2f}" if self.price is not None and self.price == self.price else ""
        return f"{self.score:.3f} · {self.title}{price}"

    def to_dict(self) -> dict:
        return asdict(self)


class Searcher:
    def __init__(self, encoder: Encoder, index: vindex.VectorIndex, store: FeatureStore, config: Config):
        if index.model_id != encoder.model_id:
            raise vindex.IndexLoadError(f"index built with {index.model_id!r} but the model is {encoder.model_id!r}")
        self.encoder, self.index, self.store, self.config = encoder, index, store, config
        self._table: pd.DataFrame | None = None
        self._group = duplicate_groups(index.path)  # item -> the first item of its near-duplicate group
        # Repeated text queries skip the encoder; keyed by model id and normalised text.
        self._encode_query = lru_cache(maxsize=config.query_cache)(self._encode_query_uncached)

    @classmethod
    def open(cls, config: Config, encoder: Encoder | None = None) -> "Searcher":
        encoder = encoder or load_encoder(config.model, config.device)
        index = vindex.load(config.resolved_index(encoder.model_id), expect_model_id=encoder.model_id)
        data_dir = Path(index.manifest.get("data_dir", config.data_dir))
        return cls(encoder, index, FeatureStore(data_dir), config)

    def _k(self, k: int | float | None) -> int:
        k = self.config.top_k if k is None else int(k)
        if not 1 <= k <= MAX_K:
            raise QueryError(f"k must be between 1 and {MAX_K}, not {k}")
        return k

    def check_text(self, query: str | None) -> str:
        query = (query or "").strip()
        if not query:
            raise QueryError("Type something to search for, e.g. 'red striped t-shirt'.")
        if len(query) > self.config.max_query_chars:
            raise QueryError(f"The query is {len(query):,} characters long; the limit is "
                             f"{self.config.max_query_chars}. Shorten it to the words that matter.")
        return query

    def _encode_query_uncached(self, model_id: str, normalised: str) -> np.ndarray:
        vector = self.encoder.encode_text([normalised])[0]
        vector.setflags(write=False)  # shared by every later hit of the cache
        return vector

    def search_text(self, query: str, k: int | None = None, min_score: float | None = None,
                    filters: str | None = None) -> list[Result]:
        """Text search; words starting with '-' push results away from what they name ("sneaker -white")."""
        positive, negative = split_terms(self.check_text(query))
        if not positive:
            raise QueryError("Say what you want as well as what you don't, e.g. 'sneaker -white'.")
        vector = self._encode_query(self.encoder.model_id, " ".join(positive.lower().split()))
        if negative:
            away = np.mean([self._encode_query(self.encoder.model_id, w.lower()) for w in negative], axis=0)
            vector = vector - NEGATIVE_WEIGHT * away
            vector = vector / np.linalg.norm(vector)
        return self.search_vector(vector, self._k(k), min_score, filters)

    def more_like_this(self, item_id: str, k: int | None = None, min_score: float | None = None,
                       filters: str | None = None) -> list[Result]:
        """Searches with an indexed item's stored embedding: no image is decoded or encoded again."""
        item_id = (item_id or "").strip()
        if item_id not in self.index:
            raise QueryError(f"No item {item_id!r} in this index.")
        return self.search_vector(self.index.vector(item_id), self._k(k), min_score, filters)

    def search_image(self, image: str | Path | Image.Image | None, k: int | None = None,
                     min_score: float | None = None, filters: str | None = None) -> list[Result]:
        if image is None or image == "":
            raise QueryError("Upload an image to search with.")
        try:
            picture = load_image(image, self.config.max_upload_pixels)
        except ImageError as exc:
            raise QueryError(f"That upload cannot be used as an image: {exc}.") from exc
        return self.search_vector(encode_images(self.encoder, [picture])[0], self._k(k), min_score, filters)

    def _collapse(self, hits: list[tuple[str, float]], k: int) -> list[tuple[str, float]]:
        seen, out = set(), []
        for item_id, score in hits:
            group = self._group.get(item_id, item_id)
            if group not in seen:
                seen.add(group)
                out.append((item_id, score))
                if len(out) == k:
                    break
        return out

    def metadata_table(self) -> pd.DataFrame:
        """Every indexed item's metadata from the Feast online store, in index order; read once, on first need."""
        if self._table is None:
            self._table = pd.DataFrame(self.store.metadata(self.index.ids))
        return self._table

    def search_vector(self, vector: np.ndarray, k: int, min_score: float | None = None,
                      filters: str | None = None, collapse: bool = True) -> list[Result]:
        """Top-k by cosine; with ``min_score``, hits below it are dropped (callers report how many of k were);
        with ``filters``, only matching items are searched; near-duplicates count once unless ``collapse=False``."""
        rows = None
        if filters and filters.strip():
            try:
                rows = matching_rows(self.metadata_table(), parse_filters(filters))
            except FilterError as exc:
                raise QueryError(str(exc)) from exc
        hits = self.index.search(vector, k, rows)[0]
        available = len(self.index) if rows is None else len(rows)
        fetch = k
        while collapse and self._group:
            unique = self._collapse(hits, k)
            if len(unique) >= k or fetch >= available:
                hits = unique
                break
            fetch = min(available, fetch * 2)  # duplicates used up places: look further down the list
            hits = self.index.search(vector, fetch, rows)[0]
        if min_score is not None:
            hits = [(item_id, score) for item_id, score in hits if score >= min_score]
        meta = self.store.metadata([item_id for item_id, _ in hits])
        results = []
        for (item_id, score), rec in zip(hits, meta):
            core = {f: rec.get(f) for f in ("title", "image", "price", "category", "description")}
            extra = {k: v for k, v in rec.items() if k not in core and k != "item_id"}
            results.append(Result(item_id=item_id, score=round(score, 4), title=core["title"] or item_id,
                                  image=core["image"] or "", price=core["price"], category=core["category"] or "",
                                  description=core["description"] or "", metadata=extra))
        return results


def duplicate_groups(index_dir: Path | None) -> dict[str, str]:
    """Near-duplicate pairs from the build, joined into groups (a ~ b, b ~ c: one group); item -> group id."""
    if index_dir is None or not (Path(index_dir) / vindex.DUPLICATES_FILE).exists():
        return {}
    parent: dict[str, str] = {}

    def root(x: str) -> str:
        while parent.get(x, x) != x:
            x = parent[x]
        return x

    for a, b in pd.read_csv(Path(index_dir) / vindex.DUPLICATES_FILE, dtype=str)[["item_id", "duplicate_of"]].itertuples(index=False):
        ra, rb = root(a), root(b)
        if ra != rb:
            parent[max(ra, rb)] = min(ra, rb)
    return {x: root(x) for x in parent}  # a group's root is absent and stands for itself (see _collapse)
