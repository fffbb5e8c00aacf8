"""What a search answers, and how it refuses: ``Listing`` (an item as people see it), ``Hit`` (a listing found by a
search, with its scores), ``Answer`` (the hits with what ran to find them), and the errors whose messages are meant
for the person who asked.

``Listing`` and ``Hit`` are the API's own types: the REST schema is made from them, and their public JSON
(``public()``) is what every way in shows. The picture's path on the server is kept (``image``) but never shown:
callers get ``image_url``, a route that serves it by item id.
"""

from __future__ import annotations

import dataclasses
from typing import ClassVar
from urllib.parse import quote

from pydantic import BaseModel, Field


class QueryError(ValueError):
    """A query the searcher refuses; the message is meant for the person who typed or uploaded it."""


class ItemNotFound(QueryError):
    """An item id the loaded index does not hold (REST answers 404)."""


def picture_url(item_id: str, position: int = 0) -> str:
    """The REST route that serves an indexed item's picture (relative to the server's root): its first, or the one
    at ``position`` among its several."""
    more = f"?picture={position}" if position else ""
    return f"/api/items/{quote(str(item_id), safe='')}/image{more}"


class Listing(BaseModel):
    """One indexed item as people see it."""

    # The fields callers see, in the order they see them (every field but ``image``).
    PUBLIC: ClassVar[tuple[str, ...]] = (
        "item_id",
        "title",
        "image_url",
        "price",
        "category",
        "description",
        "picture_text",
        "image_urls",
        "metadata",
    )

    item_id: str
    title: str
    image: str = Field("", exclude=True, description="the picture's path on the server: never shown")
    image_url: str = Field("", description="the item's picture, served by this server")
    price: float | None = None
    category: str = ""
    description: str = ""
    picture_text: str = Field("", description="the words printed in the picture, read at build time (--ocr)")
    image_urls: list[str] = Field(
        default_factory=list, description="every picture of the product, the first (image_url) first"
    )
    metadata: dict = Field(default_factory=dict, description="the catalog's other columns")

    @classmethod
    def made(cls, **fields: object):
        """One built from trusted values (a listing read from the feature store): no validation, which would cost
        more than the search's own Python on a small catalog."""
        fields.setdefault("image_url", picture_url(str(fields["item_id"])))
        fields.setdefault("image_urls", [fields["image_url"]])
        return cls.model_construct(**fields)

    def public(self, fields: tuple[str, ...] | None = None) -> dict:
        """What callers outside the server see: the fields of the REST schema, in its order (``fields``: of another
        type's, such as a hit's listing alone)."""
        # Field by field: model_dump costs several times as much for the same dict.
        out = {name: getattr(self, name) for name in fields or type(self).PUBLIC}
        out["metadata"] = dict(self.metadata)
        out["image_urls"] = list(self.image_urls)
        return out

    def caption(self) -> str:
        """A gallery card's text: title, category unless the title says it, price where there is one, and the words
        printed in the picture (the first 40 characters) where they were read."""
        category = f" · {self.category}" if self.category and self.category.lower() not in self.title.lower() else ""
        price = f" · ${self.price:.2f}" if self.price is not None and self.price == self.price else ""
        words = self.picture_text if len(self.picture_text) <= 40 else self.picture_text[:39] + "…"
        printed = f" · reads “{words}”" if words else ""  # what the picture says (--ocr)
        return f"{self.title}{category}{price}{printed}"


class Hit(Listing):
    """A listing found by a search, with its scores."""

    PUBLIC: ClassVar[tuple[str, ...]] = (
        "item_id",
        "score",
        *Listing.PUBLIC[1:],
        "matched_image_url",
        "similarity",
        "keyword_score",
    )

    score: float = Field(
        0.0,
        description="cosine similarity in vector mode, BM25 in keyword mode, 1 = first in both lists in hybrid mode",
    )
    similarity: float | None = Field(None, description="cosine similarity to the query, in every mode")
    keyword_score: float | None = Field(None, description="BM25, when the item came up in the keyword search")
    matched_image_url: str = Field(
        "", description="of the product's pictures, the one closest to the query (image_url for a one-picture product)"
    )

    def caption(self) -> str:
        """The score first (what a rater compares), then the listing's caption."""
        return f"{self.score:.3f} · {super().caption()}"


@dataclasses.dataclass
class Page:
    """Where an answer's hits stand among every match of its query: ``offset`` of ``total`` (the matches its
    pages reach), the ``next_offset`` (None on the last page), the ``facets`` counted over them, and the matches
    in relevance order (``relevant``: what the match and interleaving read, whatever order was asked)."""

    offset: int = 0
    total: int = 0
    next_offset: int | None = None
    facets: dict | None = None
    relevant: list = dataclasses.field(default_factory=list, repr=False)


class Answer(list):
    """A search's hits, best first, with what ran to find them, so that no caller works it out again: ``mode``
    ranked them (an image alone, or a similar-items search, is always ``vector``), ``kind`` is what was asked with
    (``text``, ``image``, ``text+image`` or ``similar``), and ``match`` says whether the hits match the query
    (``good``) or are only the closest the catalog has (``weak``; see match.py), ``standing`` the figure behind it."""

    def __init__(
        self,
        hits: list[Hit],
        mode: str,
        kind: str,
        match: str = "good",
        standing: float | None = None,
        affinity: float | None = None,
        coverage: float | None = None,
        teams: list[str] | None = None,
    ):
        super().__init__(hits)
        self.mode, self.kind, self.match, self.standing = mode, kind, match, standing
        self.affinity = affinity  # how much nearer the words are to a category word than to other things (match.py)
        self.coverage = coverage  # the share of the words' content words the catalog knows (match.py)
        self.similarity: float | None = None  # the best result's similarity to the query as typed (match.py)
        self.teams = teams  # interleaved answers: which ranker placed each hit (feedback/interleave.py)
        self.query_id: str | None = None  # given when the answer is recorded (feedback/loop.py)
        self.language: str | None = None  # the language the text tower took the words as, where it can tell
        self.build: str | None = None  # the build whose snapshot answered (X-MMSearch-Build)
        self.page = Page(0, len(hits))  # where these hits stand among every match

    def public(self) -> dict:
        """The answer's JSON for callers: its query_id, match, mode, query_language, hits, where they stand
        (offset, next_offset, total) and the facets when asked."""
        shown = {
            "query_id": self.query_id,
            "match": self.match,
            "mode": self.mode,
            "query_language": self.language,
            "results": [h.public() for h in self],
            "offset": self.page.offset,
            "next_offset": self.page.next_offset,
            "total": self.page.total,
        }
        if self.page.facets is not None:
            shown["facets"] = self.page.facets
        return shown
