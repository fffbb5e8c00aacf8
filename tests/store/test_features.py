import time
from datetime import UTC, datetime

import numpy as np
import pytest

from mmsearch.ingest import catalog
from mmsearch.store import features


@pytest.fixture
def store_with_items(tmp_path, demo_manifest):
    cat = catalog.load_catalog(str(demo_manifest), tmp_path)
    store = features.FeatureStore(tmp_path / "data")
    store.apply()
    listing = features.listing_frame(cat.items, cat.extra_columns())
    store.write_items("cat-a", listing, datetime.now(UTC))
    return store, cat, listing


def _write(store, when=None, **kw):
    when = when or datetime.now(UTC)
    store.write_embeddings(when=when, **kw)
    store.write_online()


@pytest.mark.parametrize("chunk", [features.ONLINE_CHUNK, 7], ids=["one-chunk", "many-chunks"])
def test_embeddings_of_two_models_round_trip_through_feast(store_with_items, chunk, monkeypatch):
    monkeypatch.setattr(features, "ONLINE_CHUNK", chunk)
    store, cat, _ = store_with_items
    ids = cat.items["item_id"].tolist()
    pics = [f"img:{i}" for i in ids]
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(len(ids), 8)).astype(np.float32), rng.normal(size=(len(ids), 4)).astype(np.float32)
    when = datetime.now(UTC)
    store.write_embeddings("cat-a", "model-a", ids, pics, a, when)
    store.write_embeddings("cat-a", "model-b", ids, pics, b, when)
    store.write_online()
    np.testing.assert_allclose(store.embeddings("cat-a", "model-a", ids[::-1], pics[::-1]), a[::-1], rtol=1e-6)
    np.testing.assert_allclose(store.embeddings("cat-a", "model-b", ids, pics), b, rtol=1e-6)
    with pytest.raises(LookupError, match="no model-c embedding"):
        store.embeddings("cat-a", "model-c", ids[:2], pics[:2])
    # Another picture of the same item is another key: a changed picture never reads the old vector.
    assert store.embeddings("cat-a", "model-a", ids[:1], ["img:other"], required=False) == [None]


def test_listings_come_from_the_online_store_by_catalog_item_and_revision(store_with_items):
    store, cat, listing = store_with_items
    store.write_online()
    ids, revs = listing["item_id"].tolist(), listing["revision"].tolist()
    meta = store.metadata("cat-a", [ids[3], ids[0]], [revs[3], revs[0]])
    row = cat.items.set_index("item_id").loc[ids[3]]
    assert meta[0]["item_id"] == ids[3] and meta[0]["title"] == row["title"]
    assert meta[0]["colour"] == row["colour"] and meta[0]["price"] == pytest.approx(float(row["price"]))
    assert meta[1]["item_id"] == ids[0]
    # A key with no row is a row the store lost (an index only names rows its build wrote): said, not shown blank.
    with pytest.raises(features.StoreUnavailable, match="lacks the listings of 1 items.*no-such-item"):
        store.metadata("cat-a", [ids[3], "no-such-item"], [revs[3], "x"])
    # The same item id in another catalog is another row.
    with pytest.raises(features.StoreUnavailable, match="lacks"):
        store.metadata("cat-b", [ids[3]], [revs[3]])


def test_a_build_mark_says_whether_the_online_store_holds_its_rows(store_with_items):
    store, _, listing = store_with_items
    store.write_online()
    ids, revs = listing["item_id"].tolist(), listing["revision"].tolist()
    assert not store.holds("cat-a", "b1", ids, revs)  # no mark written yet
    store.mark_complete("cat-a", "b1", datetime.now(UTC))
    assert store.holds("cat-a", "b1", ids, revs) and not store.holds("cat-b", "b1", ids, revs)
    assert store.holds("cat-a", None, ids, revs)  # an older build without a mark: a sample of its listings
    assert not store.holds("cat-a", None, ["gone", *ids], ["x", *revs])


def test_a_changed_listing_is_a_new_row_and_the_old_one_still_reads(store_with_items):
    store, cat, listing = store_with_items
    changed = cat.items.copy()
    changed.loc[0, "title"] = "renamed"
    new = features.listing_frame(changed, cat.extra_columns())
    assert new["revision"][0] != listing["revision"][0] and (new["revision"][1:] == listing["revision"][1:]).all()
    when = datetime.now(UTC)
    store.write_items("cat-a", new.iloc[:1], when)
    store.write_online()
    item = listing["item_id"][0]
    old_meta, new_meta = store.metadata("cat-a", [item, item], [listing["revision"][0], new["revision"][0]])
    assert old_meta["title"] == cat.items["title"][0] and new_meta["title"] == "renamed"


def test_online_store_settings():
    assert features.online_store_config("redis://:pw@cache:6380/2", "/d") == {
        "type": "redis",
        "connection_string": "cache:6380,db=2,password=pw,socket_connect_timeout=1,socket_timeout=1",
    }
    assert features.online_store_config("sqlite", "/d")["type"] == "sqlite"
    with pytest.raises(features.FeatureStoreError, match="unknown online store"):
        features.online_store_config("mongodb://x", "/d")


def test_feast_materialize_rebuilds_a_lost_online_store_from_the_offline_parts(store_with_items, tmp_path):
    store, cat, listing = store_with_items
    ids = cat.items["item_id"].tolist()
    vectors = np.random.default_rng(2).normal(size=(len(ids), 4)).astype(np.float32)
    store.write_embeddings("cat-a", "m", ids, ["p"] * len(ids), vectors, datetime.now(UTC))
    store.write_online()
    (tmp_path / "data" / "feast" / "online_store.db").unlink()  # the online store is gone (a new Redis, say)
    fresh = features.FeatureStore(tmp_path / "data")
    fresh.apply()
    assert fresh.embeddings("cat-a", "m", ids[:1], ["p"], required=False) == [None]
    fresh.store.materialize(start_date=datetime(2000, 1, 1, tzinfo=UTC), end_date=datetime.now(UTC))
    np.testing.assert_allclose(fresh.embeddings("cat-a", "m", ids, ["p"] * len(ids)), vectors, rtol=1e-6)
    assert fresh.metadata("cat-a", ids[:1], listing["revision"][:1].tolist())[0]["title"] == cat.items["title"][0]


def test_warming_reads_the_store_once_and_a_store_that_does_not_answer_is_left_to_the_outage(
    store_with_items, monkeypatch
):
    store, _, _ = store_with_items
    store.write_online()
    asked = []
    monkeypatch.setattr(store, "_probe", lambda: asked.append(1))
    store.warm()
    assert asked == [1] and store.online.up

    down = [True]

    def refused():
        if down[0]:
            raise ConnectionRefusedError("nothing listens on the store's port")

    monkeypatch.setattr(store, "_probe", refused)
    store.warm()  # no exception: the server starts, and says the store is down
    assert not store.online.up
    down[0] = False  # back: the outage's probe (every second) finds it
    for _ in range(40):
        if store.online.up:
            break
        time.sleep(0.1)
    assert store.online.up
