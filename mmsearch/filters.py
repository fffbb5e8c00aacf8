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
            raise FilterError(f"cannot read the filter {part.strip()!r}; write e.g. category=mug; colour=blue|red; "
                              "price<=20")
        clauses.append(Clause(m.group(1).strip().lower(), m.group(2), m.group(3)))
    return clauses


def matching_rows(table: pd.DataFrame, clauses: list[Clause]) -> np.ndarray:
    """Row numbers of ``table`` (one row per indexed item, in index order) that satisfy every clause."""
    keep = np.ones(len(table), dtype=bool)
    columns = {c.lower(): c for c in table.columns}
    for clause in clauses:
        if clause.column not in columns:
            raise FilterError(f"no column {clause.column!r} to filter on; columns: "
                              f"{', '.join(sorted(c for c in columns if c not in ('image', 'item_id')))}")
        values = table[columns[clause.column]]
        if clause.op in ("=", "!="):
            wanted = {v.strip().lower() for v in clause.value.split("|")}
            hit = values.astype(str).str.strip().str.lower().isin(wanted).to_numpy()
            keep &= hit if clause.op == "=" else ~hit
            continue
        try:
            bound = float(clause.value)
        except ValueError as exc:
            raise FilterError(f"{clause.column}{clause.op}{clause.value}: {clause.value!r} is not a number") from exc
        numbers = pd.to_numeric(values, errors="coerce").to_numpy(dtype=float)
        with np.errstate(invalid="ignore"):  # items without a number never match a range
            keep &= {"<": numbers < bound, "<=": numbers <= bound, ">": numbers > bound,
                     ">=": numbers >= bound}[clause.op]
    return np.flatnonzero(keep)


def split_terms(query: str) -> tuple[str, list[str]]:
    """'black sneaker -white -checked' -> ('black sneaker', ['white', 'checked'])."""
    positive, negative = [], []
    for word in query.split():
        if word.startswith("-") and len(word) > 1:
            negative.append(word[1:])
        else:
            positive.append(word)
    return " ".join(positive), negative
