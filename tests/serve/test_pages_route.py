"""Facets, pages and sorting through the REST routes (words, a picture, similar items): the answer's fields, the
schema, and plain 400s for what cannot be done."""

from __future__ import annotations

from collections import Counter

import hypothesis
import pytest
from fastapi.testclient import TestClient
from hypothesis import strategies as st

from mmsearch import settings
from mmsearch.search.searcher import Searcher
from mmsearch.service import create_app


@pytest.fixture(scope="module")
def http(small_index, tmp_path_factory):
    searcher = Searcher.open(settings.replace(small_index, data_dir=tmp_path_factory.mktemp("pages")))
    with TestClient(create_app(searcher)) as client:
        yield client


def test_a_search_pages_sorts_and_counts_its_matches(http):
    every = http.get("/api/search", params={"q": "mug", "k": 100, "mode": "keyword"}).json()
    first = http.get(
        "/api/search", params={"q": "mug", "k": 5, "mode": "keyword", "facets": "category,price:20,40"}
    ).json()
    assert first["offset"] == 0 and first["total"] == len(every["results"]) and first["next_offset"] == 5
    assert first["facets"]["category"] == dict(Counter(r["category"] for r in every["results"]).most_common())
    assert sum(r["count"] for r in first["facets"]["price"]) == first["total"]
    second = http.get("/api/search", params={"q": "mug", "k": 5, "mode": "keyword", "offset": 5}).json()
    assert [r["item_id"] for r in first["results"] + second["results"]] == [r["item_id"] for r in every["results"][:10]]
    assert "facets" not in second  # only when asked
    dearest = http.get("/api/search", params={"q": "mug", "k": 10, "sort": "-price", "mode": "keyword"}).json()
    prices = [r["price"] for r in dearest["results"]]
    assert prices == sorted(prices, reverse=True) and prices[0] == max(r["price"] for r in every["results"])


def test_similar_items_and_uploads_take_the_same_fields(http, small_index):
    item = Searcher.open(small_index).index.ids[0]
    similar = http.get(f"/api/items/{item}/similar", params={"k": 3, "offset": 3, "facets": "colour"}).json()
    assert similar["offset"] == 3 and len(similar["results"]) == 3 and similar["facets"]["colour"]
    picture = http.get(f"/api/items/{item}/image").content
    found = http.post(
        "/api/search/image",
        files={"image": ("p.jpg", picture, "image/jpeg")},
        data={"k": "4", "sort": "price", "offset": "2", "facets": "category"},
    ).json()
    prices = [r["price"] for r in found["results"]]
    assert found["offset"] == 2 and prices == sorted(prices) and found["facets"]["category"]


@pytest.mark.parametrize(
    "params, says",
    [
        ({"offset": -1}, "offset"),
        ({"offset": 99, "k": 5}, "more than 100 results"),
        ({"sort": "size"}, "no column 'size' to sort by"),
        ({"sort": "title"}, "numbers or dates"),
        ({"facets": "size"}, "no column 'size' to count"),
        ({"facets": "image"}, "no column 'image' to count"),  # the server's paths are never shown
        ({"facets": "price:x"}, "cannot read the facet"),
    ],
)
def test_what_cannot_be_done_is_a_400_naming_the_problem(http, params, says):
    answer = http.get("/api/search", params={"q": "mug"} | params)
    assert answer.status_code == 400 and says in answer.json()["error"], answer.text


def test_the_schema_documents_the_new_fields(http):
    schema = http.get("/openapi.json").json()
    names = {p["name"] for p in schema["paths"]["/api/search"]["get"]["parameters"]}
    assert {"offset", "sort", "facets"} <= names
    answer = schema["components"]["schemas"]["SearchAnswer"]["properties"]
    assert {"offset", "next_offset", "total", "facets"} <= set(answer)


WORDS = ["mug", "red", "blue", "striped", "bag", "hat", "cotton", "green", "dotted", "sneaker", "-white", "t-shirt"]


@hypothesis.settings(max_examples=50, deadline=None, suppress_health_check=list(hypothesis.HealthCheck))
@hypothesis.given(
    words=st.lists(st.sampled_from(WORDS), min_size=1, max_size=3),
    mode=st.sampled_from(["vector", "keyword", "hybrid"]),
    k=st.integers(1, 12),
    sort=st.sampled_from([None, "price", "-price"]),
)
def test_pages_of_random_queries_are_one_longer_answer_cut_in_order(http, words, mode, k, sort):
    """50 random queries through REST: pages followed by next_offset are disjoint, together the same as one search
    of their length, and a sorted order holds across them."""
    hypothesis.assume(any(not w.startswith("-") for w in words))  # words that only push away ask for nothing
    asked = {"q": " ".join(words), "mode": mode} | ({"sort": sort} if sort else {})
    pages, offset = [], 0
    while offset is not None and len(pages) < 4:
        answer = http.get("/api/search", params=asked | {"k": k, "offset": offset}).json()
        pages.append(answer)
        offset = answer["next_offset"]
    shown = [r["item_id"] for page in pages for r in page["results"]]
    whole = http.get("/api/search", params=asked | {"k": len(shown) or 1}).json()
    assert shown == [r["item_id"] for r in whole["results"]][: len(shown)] and len(set(shown)) == len(shown)
    if sort:
        prices = [r["price"] * (-1 if sort.startswith("-") else 1) for page in pages for r in page["results"]]
        assert prices == sorted(prices)
