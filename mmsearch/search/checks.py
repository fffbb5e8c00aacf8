"""The checks on what a caller sends a search. Inputs arrive untyped from REST, the Gradio API and agent tools; a
refused one raises QueryError with a message for the person who sent it."""

from __future__ import annotations

import math

from mmsearch.search.results import QueryError

MAX_K = 100


def check_text_type(value, name: str) -> str:
    """Text from a caller (None is empty); a number, list or object where text belongs is refused plainly."""
    if value is None:
        return ""
    if not isinstance(value, str):
        raise QueryError(f"{name} must be text, not {type(value).__name__}.")
    return value


def check_fraction(value, name: str) -> float:
    """A weight between 0 and 1 from a caller; NaN, infinities and non-numbers are refused."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        number = math.nan
    if isinstance(value, bool) or not 0.0 <= number <= 1.0:
        raise QueryError(f"The {name} must be between 0 and 1, not {value!r}.")
    return number


def check_k(k: int | float | None, default: int) -> int:
    """How many results: a whole number from 1 to MAX_K (None: ``default``)."""
    if k is None:
        return default
    try:
        whole = int(k)
    except (TypeError, ValueError, OverflowError):
        whole = 0
    if isinstance(k, bool) or whole != k or not 1 <= whole <= MAX_K:
        raise QueryError(f"k must be between 1 and {MAX_K}, not {k!r}")
    return whole


def check_query(query: str | None, max_chars: int) -> str:
    """A text query, stripped: not empty, and at most ``max_chars`` long."""
    query = check_text_type(query, "The query").strip()
    if not query:
        raise QueryError("Type something to search for, e.g. 'red striped t-shirt'.")
    if len(query) > max_chars:
        raise QueryError(
            f"The query is {len(query):,} characters long; the limit is {max_chars}. Shorten it to the words "
            "that matter."
        )
    return query


def check_min_score(min_score: float | None) -> float | None:
    if min_score is not None and not math.isfinite(min_score):
        raise QueryError(f"The minimum score must be a number, not {min_score}.")
    return min_score
