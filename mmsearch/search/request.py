"""One search as every way in asks for it: ``SearchRequest``, built once at the edge (REST, the UI, the agent tools,
the CLI), checked once there, and passed down to the searcher, which trusts it.

A request holds words (``q``, where ``-word`` pushes away from what it names), a picture, or both, or the id of an
indexed item to find similar items to; how many results (``k``) from which place (``offset``: pages), the mode,
filters, the order (``sort``), the facets to count, the two weights and the cut-off (``min_score``). Its types are
the API's schema: the REST routes declare their parameters with the same types, so what the schema says is what the
server checks.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic.json_schema import SkipJsonSchema

from mmsearch import inputs
from mmsearch.index.filters import split_terms
from mmsearch.search.facets import parse_facets
from mmsearch.search.results import QueryError
from mmsearch.search.sorting import parse_sort

MODES = ("vector", "keyword", "hybrid")
MAX_K = 100
MAX_QUERY_CHARS = 500  # the default of --max-query-chars
MAX_FILTER_CHARS = 1000
MAX_ID = 200  # an item id
MAX_RESULTS = 100  # the default of --max-k: the most results one query's pages reach
MAX_OFFSET = 100_000  # whatever --max-k says

Mode = Literal["vector", "keyword", "hybrid"]
K = inputs.bounded(int, ("k",), 1, MAX_K)
Weight = inputs.bounded(float, ("keyword_weight", "image_weight"), 0, 1)
MinScore = inputs.bounded(float, ("min_score",))
QueryText = inputs.text(pattern=inputs.WORDS)  # its length limit is the deployment's (--max-query-chars): _length
# The words as a REST caller sends them, for the route's parameter: checked for words, and handed on uncleaned, so that
# SearchRequest.of counts the deployment's length limit on the words as sent (as the schema says).
QueryParam = Annotated[str, StringConstraints(pattern=inputs.WORDS)]
Filters = inputs.text(MAX_FILTER_CHARS)
ItemId = inputs.text(MAX_ID, required=True)
Offset = inputs.bounded(int, ("offset",), 0, MAX_OFFSET)
SortText = inputs.text(100)
FacetText = inputs.text(500)

NOTHING = "Type something to search for, e.g. 'red striped t-shirt', or upload an image."


class SearchRequest(BaseModel):
    """A checked search. Build it with ``SearchRequest.of(...)`` (refusals become QueryError, worded for people)
    or, where pydantic's ValidationError is handled, as any pydantic model."""

    model_config = ConfigDict(frozen=True, extra="forbid", arbitrary_types_allowed=True)

    q: QueryText | None = Field(None, description="what to look for; words starting with '-' push away")
    k: K | None = Field(None, description=f"results, 1..{MAX_K} (default: the server's)")
    mode: Mode | None = Field(None, description="vector, keyword or hybrid (default: the server's)")
    filters: Filters | None = Field(None, description="e.g. category=mug; colour=blue|red; price<=20")
    min_score: MinScore | None = Field(None, description="drop results scoring lower")
    offset: Offset | None = Field(
        None,
        description="skip this many results: the next page starts at the answer's next_offset (default 0); "
        "offset + k is at most the server's --max-k (100 unless set)",
    )
    sort: SortText | None = Field(
        None, description="relevance (the default), or a column of numbers or dates: price, or -price to reverse"
    )
    facets: FacetText | None = Field(
        None, description="columns to count the matches by, e.g. category,price (price:0,20,50 for those ranges)"
    )
    keyword_weight: Weight | None = Field(None, description="hybrid: the keyword list's share, 0..1")
    image_weight: Weight | None = Field(None, description="with words and a picture: the picture's share, 0..1")
    item_id: ItemId | None = Field(None, description="find items similar to this indexed item")
    image: SkipJsonSchema[Any] = Field(None, exclude=True, description="a picture: decoded, or a received file")

    @field_validator("q", mode="before")
    @classmethod
    def _length(cls, value: object, info: ValidationInfo) -> object:
        """The deployment's limit (``context={"max_query_chars": n}``), counted on the words as sent."""
        limit = (info.context or {}).get("max_query_chars", MAX_QUERY_CHARS)
        if isinstance(value, str) and len(value) > limit:
            raise inputs.refuse(
                f"The query is {len(value):,} characters long; the limit is {limit}. Shorten it to the words that "
                "matter."
            )
        return value

    @field_validator("sort", "facets")
    @classmethod
    def _readable(cls, value: str | None, info: ValidationInfo) -> str | None:
        """An order or facets the searcher can read (their columns are the loaded catalog's: checked there)."""
        try:
            {"sort": parse_sort, "facets": parse_facets}[info.field_name](value)
        except QueryError as exc:
            raise inputs.refuse(str(exc)) from None
        return value

    @model_validator(mode="after")
    def _depth(self, info: ValidationInfo) -> SearchRequest:
        """Pages reach at most the deployment's ``max_k`` results (``context={"max_k": n, "top_k": default k}``)."""
        context = info.context or {}
        limit, k = context.get("max_k", MAX_RESULTS), self.k or context.get("top_k", 0)
        if (self.offset or 0) + k > limit:
            raise inputs.refuse(
                f"offset {self.offset or 0} + k {k} asks for more than {limit} results, the most this server's pages "
                "reach (--max-k)"
            )
        return self

    @classmethod
    def of(
        cls, max_query_chars: int = MAX_QUERY_CHARS, max_k: int = MAX_RESULTS, top_k: int = 0, **fields: object
    ) -> SearchRequest:
        """A request from a caller's fields (None and "" leave a field unset: a form's empty box is no value);
        QueryError says what is wrong. ``max_k``: the most results pages reach; ``top_k``: the default k."""
        given = {k: v for k, v in fields.items() if v is not None and not (isinstance(v, str) and not v)}
        if given.get("image") is None and given.get("item_id") is None and not _has_words(given.get("q")):
            raise QueryError(NOTHING)
        try:
            context = {"max_query_chars": max_query_chars, "max_k": max_k, "top_k": top_k}
            return cls.model_validate(given, context=context)
        except ValidationError as exc:
            raise QueryError(str(inputs.explain(exc.errors()))) from None

    @property
    def kind(self) -> str:
        """What is asked with: text, image, text+image, or similar (an indexed item)."""
        if self.item_id is not None:
            return "similar"
        if self.image is not None:
            return "text+image" if self.q else "image"
        return "text"

    def terms(self) -> tuple[str, list[str]]:
        """The words asked for and the words pushed away ("sneaker -white": "sneaker", ["white"])."""
        return split_terms(self.q or "")

    def but(self, **changes: object) -> SearchRequest:
        """The same request with some fields changed (already checked values only)."""
        return self.model_copy(update=changes)


def _has_words(value: object) -> bool:
    return isinstance(value, str) and bool(inputs.clean(value).strip())
