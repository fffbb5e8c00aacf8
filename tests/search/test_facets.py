"""Facet counts: parsed as asked, counted over every match a query's pages reach (not only the page shown), after
its filters, with number columns in ranges."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pandas as pd
import pytest

from mmsearch.index.filters import Columns
from mmsearch.search.facets import Facet, count, default_edges, parse_facets
from mmsearch.search.results import QueryError


def test_facets_are_read_with_their_range_edges():
    assert parse_facets("category, price:0,20,50,colour") == [
        Facet("category"),
        Facet("price", (0.0, 20.0, 50.0)),
        Facet("colour"),
    ]
    assert parse_facets("") == []
    assert parse_facets("price:50,20,20, category,Category") == [Facet("price", (20.0, 50.0)), Facet("category")]
    for bad in ("price:abc", "cat;egory", ",".join(f"c{n}" for n in range(11)), "p:" + ",".join(map(str, range(21)))):
        with pytest.raises(QueryError):
            parse_facets(bad)


def test_the_schemas_grammars_take_what_the_parsers_take():
    import re

    from mmsearch.search.facets import grammar
    from mmsearch.search.sorting import grammar as orders

    facets = re.compile(grammar(["category", "Price", "colour name"], ["Price"]))
    for good in ("", "category", "category,price:0,20,50", " PRICE : 1.5 , 20,colour name", "price"):
        assert facets.fullmatch(good) and parse_facets(good) is not None, good
    for bad in ("size", "category:1,2", "price:x", "category;price", ",".join(["category"] * 11)):
        assert not facets.fullmatch(bad), bad
    sort = re.compile(orders(["price", "added"]))
    assert all(sort.fullmatch(s) for s in ("", "price", "-Price", "+added", "relevance", " RELEVANCE "))
    assert not any(sort.fullmatch(s) for s in ("title", "--price", "price;", "-relevance"))


def table() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "category": ["Mug", "mug", "bag", "Sky Blue", "", None, "bag", "mug"],
            "price": [5, 19.99, 20, 35, None, 80, 120, 49.5],
        }
    )


def test_text_values_are_counted_most_frequent_first_with_the_catalogs_spelling():
    columns = Columns(table())
    counted = count(columns, parse_facets("Category"), np.arange(8))
    assert counted == {"category": {"Mug": 3, "bag": 2, "Sky Blue": 1}}  # empty cells are no value
    assert list(counted["category"]) == ["Mug", "bag", "Sky Blue"]
    assert count(columns, parse_facets("category"), np.array([2, 3])) == {"category": {"bag": 1, "Sky Blue": 1}}


def test_numbers_are_counted_in_ranges_given_or_from_the_catalogs_quartiles():
    columns = Columns(table())
    ranges = count(columns, parse_facets("price:20,50"), np.arange(8))["price"]
    assert ranges == [{"to": 20, "count": 2}, {"from": 20, "to": 50, "count": 3}, {"from": 50, "count": 2}]
    edges = default_edges(columns, "price")
    assert edges == (20.0, 35.0, 65.0)  # quartiles 19.995, 35, 64.75 at two significant digits
    assert sum(r["count"] for r in count(columns, parse_facets("price"), np.arange(8))["price"]) == 7
    with pytest.raises(QueryError, match="not a column of numbers"):
        count(columns, parse_facets("category:1,2"), np.arange(8))
    with pytest.raises(QueryError, match="no column 'size' to count"):
        count(columns, parse_facets("size"), np.arange(8))


def test_a_searchs_facets_count_every_match_its_pages_reach(small_searcher):
    from conftest import ask

    for query, mode, filters in (("mug", "keyword", None), ("red", "hybrid", None), ("blue", "vector", "price<=30")):
        answer = ask(small_searcher, query, 5, mode=mode, filters=filters, facets="category,price:20,40")
        every = ask(small_searcher, query, 100, mode=mode, filters=filters)
        assert answer.page.total == len(every) and len(answer) == min(5, len(every))
        assert answer.page.facets["category"] == dict(Counter(h.category for h in every).most_common())
        prices = [h.price for h in every]
        assert [r["count"] for r in answer.page.facets["price"]] == [
            sum(p < 20 for p in prices),
            sum(20 <= p < 40 for p in prices),
            sum(p >= 40 for p in prices),
        ]
