"""Facet counts: how a query's matches spread over a column's values ("category: mug 12, bag 7") or a number's
ranges ("price: under 20: 31"), counted over every match its pages reach (after its filters and cut-off), not
only the page shown.

Asked as ``facets=category,price`` (a number column gets ranges chosen from the catalog's spread of it: its
quartiles, rounded to two significant digits) or ``facets=category,price:0,20,50`` (ranges at those edges).
"""

from __future__ import annotations

import re
import weakref
from dataclasses import dataclass

import numpy as np

from mmsearch.index.filters import EMPTY, NUMBER, Columns, FilterError, one_of
from mmsearch.search.results import QueryError

MAX_FACETS = 10  # columns one search may count
MAX_EDGES = 20  # edges of one column's ranges
MAX_VALUES = 20  # values listed per text column, most frequent first
NUMBERS_SHARE = 0.9  # a column is counted in ranges when this share of its non-empty values are numbers
QUARTILES = (0.25, 0.5, 0.75)
_edges_of: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # Columns -> {column: default edges}
_numeric_of: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # Columns -> {column: counted in ranges}


@dataclass(frozen=True)
class Facet:
    column: str  # as asked (any case)
    edges: tuple[float, ...] | None = None  # given ranges' edges, ascending


def parse_facets(text: str | None) -> list[Facet]:
    """'category,price:0,20,50' -> [Facet('category'), Facet('price', (0, 20, 50))] (QueryError if unreadable)."""
    facets: list[Facet] = []
    for part in (text or "").split(","):
        part = part.strip()
        if not part:
            continue
        if re.fullmatch(NUMBER, part, flags=re.ASCII) and facets and facets[-1].edges is not None:
            last = facets.pop()  # another edge of the column before
            facets.append(Facet(last.column, (*last.edges, float(part))))
            continue
        name, _, edge = part.partition(":")
        if not re.fullmatch(r"[\w .-]+", name.strip()) or (edge and not re.fullmatch(NUMBER, edge.strip())):
            raise QueryError(
                f"cannot read the facet {part!r}; write columns separated by commas, a number column with its range "
                "edges after a colon, e.g. facets=category,price:0,20,50"
            )
        facets.append(Facet(name.strip().lower(), (float(edge),) if edge else None))
    kept: dict[str, Facet] = {}  # a column asked twice is counted once, as first asked
    for facet in facets:
        if facet.edges is not None and len(facet.edges) > MAX_EDGES:
            raise QueryError(f"{facet.column}: at most {MAX_EDGES} range edges")
        edges = None if facet.edges is None else tuple(sorted(set(facet.edges)))
        kept.setdefault(facet.column, Facet(facet.column, edges))
    if len(kept) > MAX_FACETS:
        raise QueryError(f"at most {MAX_FACETS} facets a search")
    return list(kept.values())


def grammar(columns: list[str], numeric: list[str]) -> str:
    """The facets a catalog takes, as a regular expression for the API's schema: up to MAX_FACETS of its columns
    separated by commas, a column of ``numeric`` with up to MAX_EDGES range edges after a colon."""
    edges = rf"\s*:\s*{NUMBER}(?:\s*,\s*{NUMBER}){{0,{MAX_EDGES - 1}}}"
    one = rf"\s*(?:{one_of(numeric)}(?:{edges})?|{one_of(columns)})\s*"
    return rf"^(?:{one}(?:,{one}){{0,{MAX_FACETS - 1}}})?$"


def count(columns: Columns, facets: list[Facet], rows: np.ndarray) -> dict:
    """The counts of each facet over the index ``rows`` (every match): a text column as {value: count}, most
    frequent first; a number column as ranges [{"to": e1, "count"}, {"from": e1, "to": e2, "count"}, ...,
    {"from": en, "count"}] (items without a number in no range)."""
    out = {}
    for facet in facets:
        try:
            name = columns.column(facet.column)
        except FilterError as exc:
            raise QueryError(str(exc).replace("to filter on", "to count")) from None
        numeric = is_numeric(columns, name)
        if facet.edges is not None and not numeric:
            raise QueryError(f"{facet.column} is not a column of numbers: ask for it without range edges")
        if numeric:
            edges = facet.edges if facet.edges is not None else default_edges(columns, name)
            out[name] = ranges(columns.numbers(name)[rows], edges)
        else:
            out[name] = values(columns, name, rows)
    return out


def values(columns: Columns, name: str, rows: np.ndarray) -> dict[str, int]:
    codes = columns.text(name).codes[rows]
    counts = np.bincount(codes[codes >= 0], minlength=len(columns.text(name).categories))
    labels = columns.labels(name)
    listed = {}
    for code in np.argsort(-counts, kind="stable"):
        if counts[code] == 0 or len(listed) == MAX_VALUES:
            break
        if str(labels[code]).lower() not in EMPTY:  # an empty cell is no value to offer
            listed[labels[code]] = int(counts[code])
    return listed


def ranges(numbers: np.ndarray, edges: tuple[float, ...]) -> list[dict]:
    present = numbers[np.isfinite(numbers)]
    at = np.searchsorted(np.asarray(edges, float), present, side="right")  # [e1, e2): bucket 1
    counts = np.bincount(at, minlength=len(edges) + 1)
    out = []
    for i, n in enumerate(counts):
        bucket = {}
        if i > 0:
            bucket["from"] = _plain(edges[i - 1])
        if i < len(edges):
            bucket["to"] = _plain(edges[i])
        out.append(bucket | {"count": int(n)})
    return out


def is_numeric(columns: Columns, name: str) -> bool:
    """Whether a column is counted in ranges: told once per loaded table (a pass over every row: 1 ms at 100k)."""
    known = _numeric_of.setdefault(columns, {})
    if name not in known:
        filled = columns.filled(name)
        known[name] = bool(filled.any()) and bool(np.isfinite(columns.numbers(name)[filled]).mean() >= NUMBERS_SHARE)
    return known[name]


def default_edges(columns: Columns, name: str) -> tuple[float, ...]:
    """The catalog's quartiles of a number column, rounded to two significant digits (what a shop's price ranges
    look like: 9.9 -> 9.9, 23.7 -> 24, 148 -> 150); fewer when they round alike."""
    known = _edges_of.setdefault(columns, {})
    if name not in known:
        numbers = columns.numbers(name)
        numbers = numbers[np.isfinite(numbers)]
        edges = sorted({_round(q) for q in np.quantile(numbers, QUARTILES)}) if len(numbers) else []
        known[name] = tuple(e for e in edges if numbers.min() < e <= numbers.max())
    return known[name]


def _round(value: float) -> float:
    if value == 0:
        return 0.0
    digits = 1 - int(np.floor(np.log10(abs(value))))
    return float(round(value, digits))


def _plain(value: float) -> float | int:
    """An edge as JSON shows it: 20, not 20.0 (a whole number JSON's integers hold exactly, below 2**53)."""
    return int(value) if float(value).is_integer() and abs(value) < 2**53 else float(value)


def offered(columns: Columns, skip: tuple[str, ...], most: int = 5) -> list[str]:
    """The columns worth offering as facets in a catalog: numbers (in ranges), and text with 2 to MAX_VALUES
    values (a column of names or descriptions is no facet); at most ``most``, in the catalog's order."""
    chosen = []
    for name in columns.names.values():
        if name.lower() in skip or name.startswith("_") or len(chosen) == most:
            continue
        text = columns.text(name)
        filled = text.categories[~text.categories.isin(list(EMPTY))]
        if is_numeric(columns, name) or 2 <= len(filled) <= MAX_VALUES:
            chosen.append(name)
    return chosen
