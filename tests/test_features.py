import numpy as np
import pytest

from mmsearch import catalog, features


@pytest.fixture
def store_with_items(tmp_path, demo_manifest):
    cat = catalog.load_catalog(str(demo_manifest), tmp_path)
    store = features.FeatureStore(tmp_path / "data")
    store.write_items(cat)
    return store, cat


def test_embeddings_of_two_models_round_trip_through_feast(store_with_items):
    store, cat = store_with_items
    ids = cat.items["item_id"].tolist()
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(len(ids), 8)).astype(np.float32), rng.normal(size=(len(ids), 4)).astype(np.float32)
    store.write_embeddings("model-a", ids, a)
    store.write_embeddings("model-b", ids, b)
    store.apply()
    store.materialize()
    np.testing.assert_allclose(store.embeddings("model-a", ids[::-1]), a[::-1], rtol=1e-6)
    np.testing.assert_allclose(store.embeddings("model-b", ids), b, rtol=1e-6)
    with pytest.raises(LookupError, match="no model-c embedding"):
        store.embeddings("model-c", ids[:2])


def test_metadata_comes_from_the_online_store_in_the_order_asked(store_with_items):
    store, cat = store_with_items
    ids = cat.items["item_id"].tolist()
    store.write_embeddings("m", ids, np.zeros((len(ids), 2), np.float32))
    store.apply()
    store.materialize()
    meta = store.metadata([ids[3], ids[0], "no-such-item"])
    row = cat.items.set_index("item_id").loc[ids[3]]
    assert meta[0]["item_id"] == ids[3] and meta[0]["title"] == row["title"]
    assert meta[0]["colour"] == row["colour"] and meta[0]["price"] == pytest.approx(float(row["price"]))
    assert meta[1]["item_id"] == ids[0]
    assert meta[2]["title"] is None


def test_rewriting_embeddings_replaces_the_old_rows(store_with_items):
    store, cat = store_with_items
    ids = cat.items["item_id"].tolist()[:5]
    store.write_embeddings("m", ids, np.ones((5, 3), np.float32))
    store.write_embeddings("m", ids[:2], np.full((2, 3), 2.0, np.float32))
    store.apply()
    store.materialize()
    got = store.embeddings("m", ids)
    assert got[:2].tolist() == [[2.0] * 3] * 2 and got[2:].tolist() == [[1.0] * 3] * 3
