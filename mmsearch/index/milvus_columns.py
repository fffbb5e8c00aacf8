"""The catalog columns a Milvus collection holds beside its vectors, and filters as Milvus expressions over them.

A filter ("category=mug|cup; price<=20") is answered inside Milvus when every column it names is held: each held
column is a VARCHAR field of its normalised text (what ``=`` and ``!=`` compare: stripped, lower case, as
filters.Columns makes it) and, for a column with numbers, a DOUBLE field of the number with a BOOL field saying
whether the value was one (items without a number never match a range, as here). Fields are named ``c<n>_...`` (a
catalog's column names may hold spaces or dots, which Milvus's names may not); the layout maps them back and is
saved in the index directory's ``milvus.json``.

A column is left out when its longest value would not fit ``TEXT_BYTES`` (a description is no filter's column) or
when the collection has no field left; a filter on a column left out runs as before, on slots
(milvus_store.fetch_plan). An update whose values no longer fit a held field stops holding that column.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from mmsearch.index.filters import Clause, Columns

TEXT_BYTES = 512  # the longest value a held text column may have at build (UTF-8 bytes)
FIELD_BYTES = 2 * TEXT_BYTES  # the VARCHAR's room: an update's longer values still fit, up to this
MAX_FIELDS = 60  # Milvus refuses a collection of more than 64 fields (proxy.maxFieldNum); slot and vector are 2
NOT_HELD = ("slot", "image_hash", "revision")  # the index's own bookkeeping, never filtered on


@dataclass(frozen=True)
class HeldColumn:
    column: str  # the catalog's name for it
    text: str  # the field of its normalised text
    number: str | None = None  # the field of its number, and ``number + "_is"`` whether it had one


@dataclass(frozen=True)
class Layout:
    """Which catalog columns a collection holds, by their lower-case name (the name filters use)."""

    held: dict[str, HeldColumn] = field(default_factory=dict)

    def fields(self) -> list[tuple[str, str]]:
        """(field name, 'text' | 'number' | 'flag') of every field the layout adds to a collection's schema."""
        out = []
        for c in self.held.values():
            out.append((c.text, "text"))
            if c.number:
                out += [(c.number, "number"), (c.number + "_is", "flag")]
        return out

    def rows(self, table: pd.DataFrame) -> tuple[dict[str, list], Layout]:
        """The field values of ``table``'s rows (in its order), and the layout that still holds: a column whose
        values no longer fit, or which ``table`` lacks, is dropped and its fields written empty."""
        columns, values, kept = Columns(table), {}, dict(self.held)
        for name, held in self.held.items():
            text = _text(columns, name, len(table))
            if not _fits(text, FIELD_BYTES):
                kept.pop(name)
                text = [""] * len(table)
            values[held.text] = text
            if held.number:
                numbers = _numbers(columns, name)
                if name in kept and numbers is None:
                    kept.pop(name)
                numbers = np.full(len(table), np.nan) if numbers is None else numbers
                present = ~np.isnan(numbers)
                values[held.number] = np.where(present, numbers, 0.0).tolist()
                values[held.number + "_is"] = present.tolist()
        return values, Layout(kept)

    def expression(self, clauses: list[Clause]) -> str | None:
        """The Milvus expression selecting what ``clauses`` select; None when one names a column not held (or a
        range on a column held without numbers)."""
        parts = []
        for clause in clauses:
            held = self.held.get(clause.column)
            if held is None:
                return None
            if clause.op in ("=", "!="):
                wanted = sorted({v.strip().lower() for v in clause.value.split("|")})
                listed = ", ".join(_quoted(v) for v in wanted)
                parts.append(f"{held.text} {'in' if clause.op == '=' else 'not in'} [{listed}]")
                continue
            if held.number is None:
                return None
            bound = float(clause.value)  # filters.matching_rows checked it is a number
            if not np.isfinite(bound):
                return None
            parts.append(f"({held.number}_is == true and {held.number} {clause.op} {bound!r})")  # <, <=, >, >=
        return " and ".join(parts)

    def to_json(self) -> dict:
        return {name: {"column": c.column, "text": c.text, "number": c.number} for name, c in self.held.items()}

    @classmethod
    def from_json(cls, saved: dict | None) -> Layout:
        return cls({name: HeldColumn(**c) for name, c in (saved or {}).items()})


def layout_of(table: pd.DataFrame) -> Layout:
    """The columns of ``table`` a new collection holds: every catalog column whose values fit, in table order,
    while fields are left."""
    columns, held, used = Columns(table), {}, 0
    for name in columns.names:
        if name in NOT_HELD or name.startswith("_"):
            continue
        if not _fits(_text(columns, name, len(table)), TEXT_BYTES):
            continue
        has_numbers = bool(np.isfinite(columns.numbers(columns.column(name))).any())
        need = 3 if has_numbers else 1
        if used + need > MAX_FIELDS:
            break
        n = len(held)
        held[name] = HeldColumn(columns.column(name), f"c{n}_text", f"c{n}_number" if has_numbers else None)
        used += need
    return Layout(held)


def _text(columns: Columns, name: str, size: int) -> list[str] | None:
    if name not in columns.names:
        return None
    values = columns.text(columns.column(name))
    return np.asarray(values.categories, dtype=object)[values.codes].tolist() if size else []


def _fits(text: list[str] | None, limit: int) -> bool:
    """Whether a column's values are there and each is at most ``limit`` bytes (UTF-8)."""
    return text is not None and (not text or max(len(t.encode()) for t in text) <= limit)


def _numbers(columns: Columns, name: str) -> np.ndarray | None:
    if name not in columns.names:
        return None
    numbers = columns.numbers(columns.column(name))
    return np.where(np.isfinite(numbers), numbers, np.nan)


def _quoted(value: str) -> str:
    """A string literal of Milvus's expressions (its parser reads JSON-style escapes inside double quotes)."""
    return json.dumps(value, ensure_ascii=False)
