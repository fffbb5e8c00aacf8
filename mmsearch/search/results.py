"""What a search answers, and how it refuses: ``Result`` (one hit with its listing), ``Answer`` (the results with what
ran to find them), and the errors whose messages are meant for the person who asked."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from urllib.parse import quote


class QueryError(ValueError):
    """A query the searcher refuses; the message is meant for the person who typed or uploaded it."""


class ItemNotFound(QueryError):
    """An item id the loaded index does not hold (REST answers 404)."""


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
    similarity: float | None = None  # cosine similarity to the query, in every mode
    keyword_score: float | None = None  # BM25, when the item came up in the keyword search

    def caption(self) -> str:
        """The gallery card's text: score (what a judge compares, so first), title, category unless the title says
        it, and price where there is one."""
        category = f" · {self.category}" if self.category and self.category.lower() not in self.title.lower() else ""
        price = f" · ${self.price:.2f}" if self.price is not None and self.price == self.price else ""
        return f"{self.score:.3f} · {self.title}{category}{price}"

    def to_dict(self) -> dict:
        return asdict(self)

    def public(self) -> dict:
        """What callers outside the server see: the picture as a URL served by item id, never a server path."""
        # Built field by field: dataclasses.asdict deep-copies recursively, a tenth of a REST search's time.
        return {
            "item_id": self.item_id,
            "score": self.score,
            "title": self.title,
            "image_url": picture_url(self.item_id),
            "price": self.price,
            "category": self.category,
            "description": self.description,
            "metadata": dict(self.metadata),
            "similarity": self.similarity,
            "keyword_score": self.keyword_score,
        }


class Answer(list):
    """A search's results, best first, with what ran to find them, so that no caller works it out again: ``mode``
    ranked them (an image alone, or more-like-this, is always ``vector``), ``kind`` is what was asked with
    (``text``, ``image``, ``text+image`` or ``similar``), and ``match`` says whether the results match the query
    (``good``) or are only the closest the catalog has (``weak``; see match.py), ``standing`` the figure behind it."""

    def __init__(
        self,
        results: list[Result],
        mode: str,
        kind: str,
        match: str = "good",
        standing: float | None = None,
        affinity: float | None = None,
        coverage: float | None = None,
    ):
        super().__init__(results)
        self.mode, self.kind, self.match, self.standing = mode, kind, match, standing
        self.affinity = affinity  # how much nearer the words are to a category word than to other things (match.py)
        self.coverage = coverage  # the share of the words' content words the catalog knows (match.py)
        self.query_id: str | None = None  # given when the answer is served (serve/feedback.py)
        self.teams: list[str] | None = None  # interleaved answers: which ranker placed each result (interleave.py)


def picture_url(item_id: str) -> str:
    """The REST route that serves an indexed item's picture (relative to the server's root)."""
    return f"/api/items/{quote(str(item_id), safe='')}/image"
