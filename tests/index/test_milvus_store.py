"""The Milvus vector store against a real Milvus standalone server: the same answers as Faiss, builds swapped in
behind an alias, updates in place, filters inside Milvus over the columns it holds, and plain messages when it is the
wrong store or down."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from mmsearch.index import milvus_store
from mmsearch.index import vectors as vindex


def test_an_address_that_is_not_milvus_host_port_is_refused_with_the_form():
    assert milvus_store.address("milvus://127.0.0.1:19530") == "http://127.0.0.1:19530"
    for bad in ("milvus://", "milvus://host", "milvus://host:0", "http://host:19530", "milvus://a b:1"):
        with pytest.raises(milvus_store.VectorStoreError, match="milvus://HOST:PORT"):
            milvus_store.address(bad)
    with pytest.raises(milvus_store.VectorStoreError, match="use faiss, or milvus://HOST:PORT"):
        vindex.engine_kind("flat", "qdrant://127.0.0.1:6333")


def test_a_wide_filter_is_fetched_deeper_and_a_narrow_one_becomes_an_expression():
    assert milvus_store.fetch_plan(None, 1000, 10) == ("", 10)
    where, fetch = milvus_store.fetch_plan(np.arange(0, 1000, 2), 1000, 10)
    assert where == "" and fetch == 40  # half the catalog: twice as deep, twice again for luck
    where, fetch = milvus_store.fetch_plan(np.array([3, 7]), 1000, 10)
    assert where == "slot in [3,7]" and fetch == 10


def clustered(n: int, dim: int = 32, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((12, dim))
    v = centres[rng.integers(0, 12, n)] + 0.3 * rng.standard_normal((n, dim))
    return (v / np.linalg.norm(v, axis=1, keepdims=True)).astype(np.float32)


def items(n: int, start: int = 0) -> pd.DataFrame:
    return pd.DataFrame({"item_id": [f"it{i:05d}" for i in range(start, start + n)], "revision": 0})


def built(milvus, path, vectors, kind="flat") -> vindex.VectorIndex:
    how = vindex.engine_kind(kind, milvus.url, milvus_store.alias_for(path))
    index = vindex.build(vectors, items(len(vectors)), {"model_id": "m", "catalog_id": "c"}, kind, how)
    vindex.write(index, path)
    return vindex.load(path, "m", store=milvus.url)


@pytest.mark.slow
@pytest.mark.services
def test_searches_in_milvus_answer_as_faiss_does(milvus, tmp_path):
    vectors = clustered(3000)
    queries = clustered(20, seed=1)
    served = built(milvus, tmp_path / "flat", vectors)
    local = vindex.build(vectors, items(3000), {}, "flat")
    assert (tmp_path / "flat" / milvus_store.FILE).is_file() and not (tmp_path / "flat" / vindex.FAISS_FILE).exists()
    assert served.manifest["vector_store"] == milvus.url and served.manifest["faiss_total"] == 3000
    for q in queries:
        ours, theirs = served.search(q, 10)[0], local.search(q, 10)[0]
        assert [i for i, _ in ours] == [i for i, _ in theirs]
        assert np.allclose([s for _, s in ours], [s for _, s in theirs], atol=1e-5)
    graph = built(milvus, tmp_path / "hnsw", vectors, "hnsw")
    found = sum(len({i for i, _ in graph.search(q, 10)[0]} & {i for i, _ in local.search(q, 10)[0]}) for q in queries)
    assert found / 200 >= 0.9  # HNSW's recall@10 against exact search
    # filters: a narrow one inside Milvus as an expression, a wide one fetched deeper, both as exact as Faiss's
    for rows in (np.arange(0, 3000, 97), np.arange(0, 3000, 2)):
        assert [i for i, _ in served.search(queries[0], 10, rows)[0]] == [
            i for i, _ in local.search(queries[0], 10, rows)[0]
        ]


def shop(n: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    prices = rng.uniform(1, 100, n).round(2).astype(object)
    prices[rng.random(n) < 0.1] = None  # no price: never in a range
    return items(n).assign(
        category=rng.choice(["mug", "bag", 'Sky "Blue" Hat', "écharpe"], n, p=[0.6, 0.3, 0.07, 0.03]),
        price=prices,
        description=["a long description " * 40] * n,  # too long to hold: its filters keep the old route
    )


@pytest.mark.slow
@pytest.mark.services
def test_filters_run_inside_milvus_over_the_columns_it_holds_and_an_update_relabels(milvus, tmp_path):
    from mmsearch.index.filters import matching_rows, parse_filters

    vectors, table = clustered(3000), shop(3000)
    path = tmp_path / "shop"
    how = vindex.engine_kind("flat", milvus.url, milvus_store.alias_for(path))
    vindex.write(vindex.build(vectors, table, {"model_id": "m", "catalog_id": "c"}, "flat", how), path)
    served = vindex.load(path, "m", store=milvus.url)
    local = vindex.build(vectors, table, {}, "flat")
    queries = clustered(8, seed=1)
    filters = [
        "category=mug",  # 60%: once fetched deeper, now an expression
        "category=mug|bag; price<=50",
        "category!=mug; price>20.5",
        'category=sky "blue" hat',
        "category=ÉCHARPE",
        "price>=99",
        "category=none of these",
        "description=a long description",
    ]
    for text in filters:
        clauses = parse_filters(text)
        rows = matching_rows(table, clauses)
        assert served.how.expresses(served.engine, clauses) == (not text.startswith("description"))
        for q in queries:
            ours = served.search(q, 10, rows, clauses)[0]
            theirs = local.search(q, 10, rows)[0]
            assert [i for i, _ in ours] == [i for i, _ in theirs], text

    # an update: item 0 becomes a hat (its vector kept), 10 new items, 5 gone
    prev = vindex.load(path, "m", writable=True, store=milvus.url)
    later = pd.concat([table.iloc[5:], shop(10, seed=9).assign(item_id=[f"new{i}" for i in range(10)])])
    later.loc[later["item_id"] == "it00005", "category"] = "hat"
    reused = np.r_[np.arange(5, 3000), np.full(10, -1)]
    vindex.write(vindex.updated(prev, later, reused, clustered(10, seed=9), {"model_id": "m", "catalog_id": "c"}), path)
    now = vindex.load(path, "m", store=milvus.url)
    clauses = parse_filters("category=hat")
    found = now.search(vectors[5], 5, matching_rows(now.items, clauses), clauses)[0]
    assert [i for i, _ in found] == ["it00005"]
    where = now.engine.layout.expression(clauses)
    held = now.engine.client.query(
        now.engine.collection, filter=where, output_fields=["slot"], consistency_level="Strong"
    )
    assert [r["slot"] for r in held] == [5]


@pytest.mark.slow
@pytest.mark.services
def test_builds_swap_behind_an_alias_keeping_one_generation_and_updates_change_it_in_place(milvus, tmp_path):
    from pymilvus import MilvusClient

    path = tmp_path / "shop"
    alias = milvus_store.alias_for(path)
    client = MilvusClient(uri=milvus_store.address(milvus.url))
    first = built(milvus, path, clustered(500))
    second = built(milvus, path, clustered(500, seed=2))
    assert client.describe_alias(alias)["collection_name"] == second.engine.collection
    assert first.engine.collection in client.list_collections()  # kept: a server may still be on it
    first.search(clustered(1, seed=3)[0], 5)  # and it still answers
    third = built(milvus, path, clustered(500, seed=4))
    mine = [c for c in client.list_collections() if c.startswith(alias)]
    assert sorted(mine) == sorted([second.engine.collection, third.engine.collection])

    # an update: 20 items out, 30 in, into the served collection
    prev = vindex.load(path, "m", writable=True, store=milvus.url)
    reused = np.r_[np.arange(20, 500), np.full(30, -1)]
    fresh = clustered(30, seed=5)
    later = vindex.updated(prev, items(510, start=20), reused, fresh, {"model_id": "m", "catalog_id": "c"})
    vindex.write(later, path)
    now = vindex.load(path, "m", store=milvus.url)
    assert now.engine.collection == third.engine.collection and now.manifest["faiss_total"] == 510
    hit = now.search(fresh[0], 1)[0][0]
    assert hit[0] == "it00500" and hit[1] > 0.999
    # the build before the update never answers with a slot it does not know
    assert all(i in third for i, _ in third.search(fresh[0], 20)[0])


@pytest.mark.slow
@pytest.mark.services
def test_products_with_several_pictures_answer_as_in_faiss(milvus, tmp_path):
    """Each picture a vector of its own that answers for its product, once, at its closest picture's score; a
    filter keeps every picture of the products it keeps."""
    vectors = clustered(700)
    owners = np.random.default_rng(3).integers(0, 500, 200)
    pictures = pd.DataFrame(
        {"item_id": [f"it{o:05d}" for o in owners], "position": 1, "image": "x.png", "image_hash": "h"}
    ).assign(position=lambda t: t.groupby("item_id").cumcount() + 1)
    table = items(500).assign(category=[("a", "b")[i % 2] for i in range(500)])
    how = vindex.engine_kind("flat", milvus.url, milvus_store.alias_for(tmp_path / "ix"))
    vindex.write(
        vindex.build(vectors, table, {"model_id": "m", "catalog_id": "c"}, "flat", how, pictures), tmp_path / "ix"
    )
    served = vindex.load(tmp_path / "ix", "m", store=milvus.url)
    local = vindex.build(vectors, table, {}, "flat", None, pictures)
    assert served.fan == local.fan > 1
    for q in clustered(10, seed=2):
        ours, theirs = served.search(q, 10)[0], local.search(q, 10)[0]
        assert [i for i, _ in ours] == [i for i, _ in theirs] and len({i for i, _ in ours}) == 10
        rows = np.arange(1, 500, 2)
        assert [i for i, _ in served.search(q, 10, rows)[0]] == [i for i, _ in local.search(q, 10, rows)[0]]


@pytest.mark.slow
@pytest.mark.services
def test_the_wrong_store_and_a_dead_server_say_so(milvus, tmp_path):
    built(milvus, tmp_path / "m", clustered(100))
    with pytest.raises(vindex.IndexLoadError, match="was built into the vector store milvus://.*--vector-store faiss"):
        vindex.load(tmp_path / "m", "m", store="faiss")
    local = vindex.build(clustered(100), items(100), {"model_id": "m", "catalog_id": "c"}, "flat")
    vindex.write(local, tmp_path / "f")
    with pytest.raises(vindex.IndexLoadError, match="built into the vector store faiss"):
        vindex.load(tmp_path / "f", "m", store=milvus.url)

    index = built(milvus, tmp_path / "killed", clustered(100))
    assert index.how.reachable(index.engine)
    milvus.kill()  # the next test that needs it gets one started again
    with pytest.raises(milvus_store.VectorStoreUnavailable, match="out of reach right now"):
        index.search(clustered(1)[0], 5)
    assert not index.how.reachable(index.engine)
    with pytest.raises(vindex.IndexLoadError, match=f"cannot be searched: .*{milvus.url}"):
        vindex.load(tmp_path / "killed", "m", store=milvus.url)
