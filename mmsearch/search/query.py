"""A request's embedding: its words (with '-words' pushed away from what they name), its picture, or both blended,
with repeated texts answered from an LRU cache of embeddings so they skip the text encoder."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property, lru_cache

import numpy as np
from PIL import Image

from mmsearch.encode.encoders import Encoder, encode_images, input_size, picture_query
from mmsearch.encode.general_features import GeneralFeatures
from mmsearch.ingest.images import ImageError, load_image
from mmsearch.ingest.phrasing import normalize
from mmsearch.search.request import SearchRequest
from mmsearch.search.results import QueryError
from mmsearch.search.stages import stage
from mmsearch.settings import Settings

NEGATIVE_WEIGHT = 0.7  # how far a '-term' pushes the query away from what it names


@dataclass(frozen=True)
class Embedded:
    """A request as the searcher uses it: its vector, the words asked for, and the words pushed away."""

    vector: np.ndarray
    words: str
    negative: list[str]
    general: np.ndarray | None = None  # a picture's features by a pretrained tower (encode/general_features.py)
    language: str | None = None  # the language the text tower took the words as (encode/query_language.py)


@dataclass(frozen=True)
class EmbeddedPicture:
    """An upload already decoded and embedded (by the REST route, in a worker thread off the event loop): a search
    with it by the same model does only the index's work."""

    vector: np.ndarray
    model_id: str
    picture: Image.Image
    general: np.ndarray | None = None


class QueryEncoder:
    def __init__(self, encoder: Encoder, settings: Settings, sampled: Callable[[], bool] = lambda: True):
        self.encoder, self.settings = encoder, settings
        self.general = GeneralFeatures(encoder)
        self.sampled = sampled  # whether the served index keeps a picture sample this tower's features compare with
        # Keyed by model id and normalised text.
        self._text = lru_cache(maxsize=settings.query_cache)(self._encode_text)

    def cache_info(self):
        """Hits and misses of the text-embedding cache (for /metrics)."""
        return self._text.cache_info()

    def cache_clear(self) -> None:
        self._text.cache_clear()

    def _encode_text(self, model_id: str, normalised: str) -> np.ndarray:
        vector = self.encoder.encode_text([normalised])[0]
        vector.setflags(write=False)  # shared by every later hit of the cache
        return vector

    def text(self, words: str, negative: list[str]) -> np.ndarray:
        """The words' embedding, pushed away from each negated word's."""
        model_id = self.encoder.model_id
        with stage("encode"):
            vector = self._text(model_id, normalize(words))
            if negative:
                away = np.mean([self._text(model_id, w.lower()) for w in negative], axis=0)
                vector = vector - NEGATIVE_WEIGHT * away
        return vector

    def picture(self, image: object) -> EmbeddedPicture:
        """A picture decoded (size-checked; a large JPEG at a reduced scale still four times the model's input) and
        embedded, unless it came embedded by this model: its query vector, and its features by a pretrained tower
        (what tells a picture unlike the whole catalog)."""
        if isinstance(image, EmbeddedPicture):
            if image.model_id == self.encoder.model_id:
                return image
            image = image.picture
        else:
            image = self.decoded(image)
        with stage("encode"):
            vector = picture_query(self.encoder, encode_images(self.encoder, [image]))[0]
            return EmbeddedPicture(vector, self.encoder.model_id, image, self.general_of(image, vector))

    def general_of(self, picture: Image.Image, vector: np.ndarray) -> np.ndarray | None:
        # No sample to compare with (an index built before builds kept one, or one of another tower): a tower's pass
        # would be thrown away
        if not self.sampled():
            return None
        if self.general.shared:  # the zero-shot model's picture query is the tower's own features
            return vector[self.encoder.text_dim :]
        features = self.general.of([picture])
        return None if features is None else features[0]

    def decoded(self, image: object) -> Image.Image:
        try:
            return load_image(image, self.settings.max_upload_pixels, at_least=4 * self.input_side)
        except ImageError as exc:
            raise QueryError(f"That upload cannot be used as an image: {exc}.") from exc

    def embedded(self, image: object) -> EmbeddedPicture:
        """A picture decoded and embedded now (in a worker thread: Pillow and torch let go of the GIL)."""
        return self.picture(self.decoded(image))

    def language(self, words: str) -> str | None:
        """The language the encoder's text tower takes ``words`` as, where it can tell (zero-shot models)."""
        guess = getattr(self.encoder, "query_language", None)
        return None if guess is None or not words else guess(words)

    @cached_property
    def input_side(self) -> int:
        return input_size(self.encoder)

    def embed(self, request: SearchRequest) -> Embedded:
        """Text and picture together blend as (1 - image_weight) * text + image_weight * picture."""
        words, negative = request.terms()
        if request.q and not words:
            raise QueryError("Say what you want as well as what you don't, e.g. 'sneaker -white'.")
        vector = self.text(words, negative) if words else None
        general = None
        if request.image is not None:
            picture = self.picture(request.image)
            pixels, general = picture.vector, picture.general
            if vector is None:
                vector = pixels
            else:
                share = self.settings.image_weight if request.image_weight is None else request.image_weight
                vector = (1 - share) * vector / np.linalg.norm(vector) + share * pixels
        return Embedded(vector / np.linalg.norm(vector), words, negative, general, self.language(words))
