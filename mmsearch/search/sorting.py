"""Sorting a query's matches by a column: ``sort=price`` (ascending), ``sort=-price`` or ``sort=-added``
(descending), over a column of numbers or of dates; ``relevance`` (the default) keeps the ranking's order.

Every match its pages reach (after its filters and cut-off) is sorted, not only the page shown; items without a
value come last either way, and ties keep their relevance order.
"""

from __future__ import annotations

import re
import weakref
from dataclasses import dataclass

import numpy as np

from mmsearch.index.filters import EMPTY, Columns, FilterError, one_of
from mmsearch.search.results import QueryError

RELEVANCE = "relevance"
VALUES_SHARE = 0.9  # a column sorts when this share of its non-empty values are numbers (or else dates)
_keys_of: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # Columns -> {column: its keys, None: unsortable}


@dataclass(frozen=True)
class Sort:
    column: str
    descending: bool = False


def parse_sort(text: str | None) -> Sort | None:
    """'-price' -> Sort('price', descending=True); None or 'relevance' -> None (QueryError if unreadable)."""
    text = (text or "").strip()
    if not text or text.lower() == RELEVANCE:
        return None
    found = re.fullmatch(r"([+-]?)\s*([\w .-]+)", text)
    if not found:
        raise QueryError(f"cannot read sort={text!r}; write a column, e.g. sort=price, or sort=-price to reverse it")
    return Sort(found.group(2).strip().lower(), found.group(1) == "-")


def grammar(sortable: list[str]) -> str:
    """The orders a catalog takes, as a regular expression for the API's schema: relevance, or one of its
    ``sortable`` columns, with - in front to reverse it."""
    return rf"^\s*(?:{one_of([RELEVANCE])}|[+-]?\s*{one_of(sortable)})?\s*$"


def sort_keys(columns: Columns, column: str) -> np.ndarray:
    """The column's values as numbers, or as dates where they are not numbers (NaN where missing); QueryError for
    a column of neither."""
    try:
        name = columns.column(column)
    except FilterError as exc:
        raise QueryError(str(exc).replace("to filter on", "to sort by")) from None
    known = _keys_of.setdefault(columns, {})
    if name not in known:  # told once per loaded table: a pass over every row
        known[name] = None
        filled = columns.filled(name)
        if filled.any():
            for keys in (columns.numbers(name), columns.dates(name)):
                if np.isfinite(keys[filled]).mean() >= VALUES_SHARE:
                    known[name] = keys
                    break
    if known[name] is None:
        raise QueryError(f"sort takes a column of numbers or dates; {column!r} is neither")
    return known[name]


def sorted_rows(columns: Columns, sort: Sort, rows: np.ndarray) -> np.ndarray:
    """The positions of ``rows`` (index rows, in relevance order) in the order ``sort`` asks."""
    keys = sort_keys(columns, sort.column)[rows]
    missing = ~np.isfinite(keys)
    keys = np.where(missing, 0.0, -keys if sort.descending else keys)
    return np.lexsort((np.arange(len(rows)), keys, missing))  # missing last, then the key, then relevance


def sortable(columns: Columns, skip: tuple[str, ...] = (), sample: int = 200, whole: bool = False) -> list[str]:
    """The columns of numbers or of dates (told by their first ``sample`` values; ``whole``: and then by every
    value, as a search checks them) a catalog can be sorted by."""
    import pandas as pd

    found = []
    for name in columns.names.values():
        if name.lower() in skip or name.startswith("_"):
            continue
        values = columns.table[name].dropna().astype(str).str.strip()
        values = values[~values.str.lower().isin(EMPTY)].head(sample)
        if not len(values):
            continue
        numbers = pd.to_numeric(values, errors="coerce").notna().mean()
        dates = pd.to_datetime(values, errors="coerce", utc=True, format="mixed").notna().mean()
        if max(numbers, dates) >= VALUES_SHARE:
            found.append(name)
    if whole:
        found = [name for name in found if _sorts(columns, name)]
    return found


def _sorts(columns: Columns, name: str) -> bool:
    try:
        sort_keys(columns, name)
        return True
    except QueryError:
        return False
