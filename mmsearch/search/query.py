"""A query's embedding: its words (with '-words' pushed away from what they name), a picture, or both blended, with
repeated texts answered from an LRU cache of embeddings so they skip the text encoder."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import numpy as np
from PIL import Image

from mmsearch.config import Config
from mmsearch.encode.encoders import Encoder, encode_images
from mmsearch.index.filters import split_terms
from mmsearch.ingest.images import ImageError, load_image
from mmsearch.ingest.phrasing import normalize
from mmsearch.search.checks import check_fraction, check_query, check_text_type
from mmsearch.search.results import QueryError
from mmsearch.search.stages import stage

NEGATIVE_WEIGHT = 0.7  # how far a '-term' pushes the query away from what it names


class QueryEncoder:
    def __init__(self, encoder: Encoder, config: Config):
        self.encoder, self.config = encoder, config
        # Keyed by model id and normalised text.
        self._text = lru_cache(maxsize=config.query_cache)(self._encode_text)

    def cache_info(self):
        """Hits and misses of the text-embedding cache (for /metrics)."""
        return self._text.cache_info()

    def cache_clear(self) -> None:
        self._text.cache_clear()

    def _encode_text(self, model_id: str, normalised: str) -> np.ndarray:
        vector = self.encoder.encode_text([normalised])[0]
        vector.setflags(write=False)  # shared by every later hit of the cache
        return vector

    def vector(
        self, query: str | None = None, image: str | Path | Image.Image | None = None, image_weight: float = 0.5
    ) -> tuple[np.ndarray, str, list[str]]:
        """The query's embedding, its positive words and its negated words. Text and image together blend as
        (1 - image_weight) * text + image_weight * image."""
        has_text, has_image = bool(check_text_type(query, "The query").strip()), image is not None and image != ""
        if not has_text and not has_image:
            raise QueryError("Type something to search for, e.g. 'red striped t-shirt', or upload an image.")
        positive, negative, vector = "", [], None
        model_id = self.encoder.model_id
        if has_text:
            positive, negative = split_terms(check_query(query, self.config.max_query_chars))
            if not positive:
                raise QueryError("Say what you want as well as what you don't, e.g. 'sneaker -white'.")
            with stage("encode"):
                vector = self._text(model_id, normalize(positive))
                if negative:
                    away = np.mean([self._text(model_id, w.lower()) for w in negative], axis=0)
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
