"""Which catalog columns a Milvus collection holds, and filters written as Milvus expressions over them (the
expressions run against a real server in test_milvus_store.py)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from mmsearch.index.filters import parse_filters
from mmsearch.index.milvus_columns import MAX_FIELDS, TEXT_BYTES, Layout, layout_of


def table() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "item_id": ["a", "b", "c"],
            "slot": [0, 1, 2],
            "revision": [0, 0, 0],
            "Category": [" Mug", "bag", "MUG "],
            "price": [12.5, None, "20"],
            "Colour name": ["blue", "red", "sky blue"],
            "description": ["x" * (TEXT_BYTES + 1), "short", "short"],
        }
    )


def test_a_layout_holds_the_filterable_columns_under_names_milvus_takes():
    layout = layout_of(table())
    assert list(layout.held) == ["item_id", "category", "price", "colour name"]  # bookkeeping and long text left out
    assert layout.held["colour name"].text == "c3_text" and layout.held["colour name"].number is None
    assert layout.held["price"].number == "c2_number"
    assert ("c2_number_is", "flag") in layout.fields()
    values, kept = layout.rows(table())
    assert values["c1_text"] == ["mug", "bag", "mug"]  # as filters compare: stripped, lower case
    assert values["c2_number"] == [12.5, 0.0, 20.0] and values["c2_number_is"] == [True, False, True]
    assert kept == layout
    assert Layout.from_json(layout.to_json()) == layout


def test_filters_become_expressions_and_a_column_not_held_keeps_the_old_route():
    layout = layout_of(table())
    where = layout.expression(parse_filters('category=MUG|"cup"; colour name!=red; price<=20'))
    assert where == (
        'c1_text in ["\\"cup\\"", "mug"] and c3_text not in ["red"] and (c2_number_is == true and c2_number <= 20.0)'
    )
    assert layout.expression(parse_filters("description=short")) is None  # too long to hold
    assert layout.expression(parse_filters("colour name<5")) is None  # a range over a column without numbers


def test_an_update_whose_values_outgrow_a_field_stops_holding_that_column():
    layout = layout_of(table())
    later = table().assign(**{"Colour name": ["y" * 5000, "red", "blue"]})
    values, kept = layout.rows(later)
    assert "colour name" not in kept.held and "category" in kept.held
    assert values["c3_text"] == ["", "", ""]
    _, gone = layout.rows(later.drop(columns=["price"]))  # a column the update no longer has
    assert "price" not in gone.held


def test_no_more_fields_than_milvus_allows():
    wide = pd.DataFrame({f"n{i}": np.arange(3) for i in range(40)})
    assert len(layout_of(wide).fields()) <= MAX_FIELDS
