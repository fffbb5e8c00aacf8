"""Metadata filters and query terms: "category=mug; colour=blue|red; price<=20" and "sneaker -white".

Filters select catalog rows before the vector search (a Faiss ID selector), so a filtered query returns k results
whenever k items match, instead of thinning out a short top-k afterwards.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
import pandas as pd

_CLAUSE = re.compile(r"^\s*([\w .-]+?)\s*(<=|>=|!=|=|<|>)\s*(.+?)\s*$")
NUMBER = r"[-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?"  # a bound of <, <=, >, >= (no inf, nan or 1_000)
EMPTY = ("", "nan", "none", "<na>", "nat")  # how an empty cell reads as text (after strip and lower case)


class FilterError(ValueError):
    """A filter the person must fix; the message shows the accepted syntax."""


@dataclass(frozen=True)
class Clause:
    column: str
    op: str
    value: str


def parse_filters(text: str | None) -> list[Clause]:
    clauses = []
    for part in (text or "").split(";"):
        if not part.strip():
            continue
        m = _CLAUSE.match(part)
        if not m:
            raise FilterError(
                f"cannot read the filter {part.strip()!r}; write e.g. category=mug; colour=blue|red; price<=20"
            )
        clauses.append(Clause(m.group(1).strip().lower(), m.group(2), m.group(3)))
    return clauses


class Columns:
    """A table's columns prepared once for filtering: text as categorical codes of its normalised values, numbers
    as floats. A filter then costs a pass over integer codes, not a string operation per row per query."""

    def __init__(self, table: pd.DataFrame):
        self.table, self.size = table, len(table)
        self.names = {c.lower(): c for c in table.columns}
        self._text: dict[str, pd.Categorical] = {}
        self._numbers: dict[str, np.ndarray] = {}
        self._labels: dict[str, np.ndarray] = {}
        self._dates: dict[str, np.ndarray] = {}
        self._filled: dict[str, np.ndarray] = {}

    def column(self, name: str) -> str:
        if name not in self.names:
            raise FilterError(
                f"no column {name!r} to filter on; columns: "
                f"{', '.join(sorted(c for c in self.names if c not in ('image', 'item_id')))}"
            )
        return self.names[name]

    def text(self, name: str) -> pd.Categorical:
        if name not in self._text:
            self._text[name] = pd.Categorical(self.table[name].astype(str).str.strip().str.lower())
        return self._text[name]

    def numbers(self, name: str) -> np.ndarray:
        if name not in self._numbers:
            self._numbers[name] = pd.to_numeric(self.table[name], errors="coerce").to_numpy(dtype=float)
        return self._numbers[name]

    def labels(self, name: str) -> np.ndarray:
        """Each of ``text(name)``'s values as the catalog first spells it ("Sky Blue", not "sky blue")."""
        if name not in self._labels:
            values = self.text(name)
            spelled = self.table[name].astype(str).str.strip().to_numpy(dtype=object)
            first = pd.Series(spelled).groupby(values.codes).first()
            labels = np.asarray(values.categories, dtype=object).copy()
            labels[first.index[first.index >= 0]] = first[first.index >= 0].to_numpy()
            self._labels[name] = labels
        return self._labels[name]

    def filled(self, name: str) -> np.ndarray:
        """Which rows hold a value in the column (an empty cell reads as one of EMPTY)."""
        if name not in self._filled:
            values = self.text(name)
            self._filled[name] = ~np.isin(values.codes, np.flatnonzero(values.categories.isin(list(EMPTY))))
        return self._filled[name]

    def dates(self, name: str) -> np.ndarray:
        """The column's values as dates (nanoseconds since 1970, NaN where a value is no date)."""
        if name not in self._dates:
            parsed = pd.to_datetime(self.table[name].astype(str), errors="coerce", utc=True, format="mixed")
            ns = parsed.to_numpy(dtype="datetime64[ns]").astype(np.int64).astype(float)
            self._dates[name] = np.where(parsed.isna().to_numpy(), np.nan, ns)
        return self._dates[name]


def matching_rows(table: pd.DataFrame | Columns, clauses: list[Clause]) -> np.ndarray:
    """Row numbers of ``table`` (one row per indexed item, in index order) that satisfy every clause."""
    columns = table if isinstance(table, Columns) else Columns(table)
    keep = np.ones(columns.size, dtype=bool)
    for clause in clauses:
        name = columns.column(clause.column)
        if clause.op in ("=", "!="):
            wanted = {v.strip().lower() for v in clause.value.split("|")}
            values = columns.text(name)
            codes = np.flatnonzero(values.categories.isin(list(wanted)))
            hit = np.isin(values.codes, codes)
            keep &= hit if clause.op == "=" else ~hit
            continue
        if not re.fullmatch(NUMBER, clause.value, flags=re.ASCII):
            raise FilterError(f"{clause.column}{clause.op}{clause.value}: {clause.value!r} is not a number")
        bound = float(clause.value)
        numbers = columns.numbers(name)
        with np.errstate(invalid="ignore"):  # items without a number never match a range
            keep &= {"<": numbers < bound, "<=": numbers <= bound, ">": numbers > bound, ">=": numbers >= bound}[
                clause.op
            ]
    return np.flatnonzero(keep)


def grammar(columns: list[str]) -> str:
    """The filters a table with ``columns`` takes, as a regular expression in the dialect of JSON Schema's
    ``pattern`` (the API's schema says with it exactly which filters a search takes): clauses separated by ';', each
    a column (any case), an operator, and a value (a number after <, <=, > and >=)."""
    column = one_of(columns)
    # A value is anything with a character that is no control character (those are dropped where text comes in).
    value = r"[^;]*[^;\x00-\x08\x0e-\x1b\x7f-\x84\x86-\x9f][^;]*"
    clause = rf"{column}\s*(?:(?:!=|=){value}|(?:<=|>=|<|>)\s*{NUMBER}\s*)"
    part = rf"\s*(?:{clause})?"
    return rf"^{part}(?:;{part})*$"


def one_of(names: list[str]) -> str:
    """A regular expression matching any of ``names`` in any case (the longest tried first)."""
    names = [n for n in names if re.fullmatch(r"[\w .-]+", n)]
    return "(?:" + "|".join(_any_case(c) for c in sorted(names, key=len, reverse=True)) + ")" if names else "(?!)"


def _any_case(name: str) -> str:
    return "".join(f"[{c.lower()}{c.upper()}]" if c.isascii() and c.isalpha() else re.escape(c) for c in name)


def split_terms(query: str) -> tuple[str, list[str]]:
    """'black sneaker -white -checked' -> ('black sneaker', ['white', 'checked'])."""
    positive, negative = [], []
    for word in query.split():
        if word.startswith("-") and len(word) > 1:
            negative.append(word[1:])
        else:
            positive.append(word)
    return " ".join(positive), negative
