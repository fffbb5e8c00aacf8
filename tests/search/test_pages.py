"""Pages and sorting: a query's pages are disjoint slices of one ranking (the same as one longer answer), sorted
pages keep their order across pages, and what cannot be done is refused plainly."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from mmsearch.index.filters import Columns
from mmsearch.search.results import QueryError
from mmsearch.search.sorting import Sort, parse_sort, sort_keys, sorted_rows

QUERIES = ["red striped mug", "blue bag", "green hat", "black -white sneaker", "yellow t-shirt", "dotted"]


def ids(answer) -> list[str]:
    return [h.item_id for h in answer]


@pytest.mark.parametrize("mode", ["vector", "keyword", "hybrid"])
def test_pages_are_disjoint_and_together_one_longer_answer(small_searcher, mode):
    from conftest import ask

    for query in QUERIES:
        whole = ask(small_searcher, query, 24, mode=mode)
        pages = [ask(small_searcher, query, 8, mode=mode, offset=start) for start in (0, 8, 16)]
        assert sum(map(ids, pages), []) == ids(whole), query
        assert [p.page.next_offset for p in pages][:2] == [
            8 if whole.page.total > 8 else None,
            16 if whole.page.total > 16 else None,
        ]
        last = ask(small_searcher, query, 3, mode=mode, offset=max(0, whole.page.total - 3))
        assert last.page.next_offset is None and len(last) == min(3, whole.page.total)


def test_following_next_offset_never_asks_for_a_page_the_server_refuses(small_index, tmp_path):
    """With a k that does not divide --max-k the pages stop before the one that would pass it (not at a 400)."""
    from conftest import ask

    from mmsearch import settings
    from mmsearch.search.searcher import Searcher

    searcher = Searcher.open(settings.replace(small_index, data_dir=tmp_path, max_k=30))
    offset, seen = 0, []
    while offset is not None:
        page = ask(searcher, "mug", 7, mode="vector", offset=offset)
        seen += ids(page)
        offset = page.page.next_offset
    assert len(seen) == len(set(seen)) == 28  # 4 pages of 7: a fifth (28 + 7 > 30) would be refused
    with pytest.raises(QueryError, match="more than 30 results"):
        ask(searcher, "mug", 7, mode="vector", offset=28)
    assert ask(searcher, "mug", 2, mode="vector", offset=28).page.next_offset is None  # the last 2 with a smaller k


def test_similar_items_and_pictures_page_too(small_searcher):
    from conftest import ask

    item = small_searcher.index.ids[3]
    whole = ask(small_searcher, item_id=item, k=10)
    assert ids(ask(small_searcher, item_id=item, k=5)) + ids(ask(small_searcher, item_id=item, k=5, offset=5)) == ids(
        whole
    )


def test_sorted_pages_keep_the_order_across_pages_over_every_match(small_searcher):
    from conftest import ask

    for sort, sign in (("price", 1), ("-price", -1)):
        pages = [ask(small_searcher, "mug", 6, mode="hybrid", sort=sort, offset=start) for start in (0, 6, 12)]
        prices = [h.price * sign for p in pages for h in p]
        assert prices == sorted(prices)
        every = ask(small_searcher, "mug", 100, mode="hybrid")
        assert pages[0][0].price * sign == min(h.price * sign for h in every)  # sorted over every match, not a page


def test_sorting_reads_numbers_or_dates_puts_the_missing_last_and_keeps_ties_in_relevance_order():
    table = pd.DataFrame(
        {
            "price": [5, None, 5, 3, 9],
            "added": ["2024-03-01", "2023-01-05", "", "2025-07-30T10:00:00", "2024-03-01"],
            "category": ["a", "b", "c", "d", "e"],
        }
    )
    columns, rows = Columns(table), np.arange(5)
    assert sorted_rows(columns, Sort("price"), rows).tolist() == [3, 0, 2, 4, 1]
    assert sorted_rows(columns, Sort("price", True), rows).tolist() == [4, 0, 2, 3, 1]
    assert sorted_rows(columns, Sort("added", True), rows).tolist() == [3, 0, 4, 1, 2]
    assert sorted_rows(columns, Sort("added"), np.array([4, 0, 1])).tolist() == [2, 0, 1]  # ties: as given
    with pytest.raises(QueryError, match="numbers or dates; 'category' is neither"):
        sort_keys(columns, "category")
    with pytest.raises(QueryError, match="no column 'size' to sort by"):
        sort_keys(columns, "size")
    assert parse_sort("-Added") == Sort("added", True) and parse_sort("relevance") is None and parse_sort("") is None


@pytest.mark.parametrize(
    "fields, says",
    [
        ({"offset": -1}, "offset"),
        ({"offset": 95, "k": 10}, "more than 100 results"),
        ({"sort": "price;drop"}, "cannot read sort"),
        ({"facets": "price:x"}, "cannot read the facet"),
    ],
)
def test_what_a_search_cannot_do_is_refused_at_the_edge(small_searcher, fields, says):
    with pytest.raises(QueryError, match=says):
        small_searcher.request(q="mug", **fields)


def test_an_unknown_column_is_refused_naming_the_columns(small_searcher):
    from conftest import ask

    with pytest.raises(QueryError, match="no column 'size' to sort by; columns: .*price"):
        ask(small_searcher, "mug", 5, sort="size")
    with pytest.raises(QueryError, match="no column 'size' to count"):
        ask(small_searcher, "mug", 5, facets="size")
    with pytest.raises(QueryError, match="'title' is neither"):
        ask(small_searcher, "mug", 5, sort="title")
