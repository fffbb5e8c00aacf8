import json

import faiss
import numpy as np
import pandas as pd
import pytest

from mmsearch.index import kinds as index_kinds
from mmsearch.index import vectors as vindex


def _vectors(n=50, d=8, seed=0, clusters=0):
    rng = np.random.default_rng(seed)
    v = rng.normal(size=(n, d)).astype(np.float32)
    if clusters:
        centres = rng.normal(size=(clusters, d)).astype(np.float32) * 3
        v += centres[rng.integers(0, clusters, n)]
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def _items(n, prefix="i"):
    return pd.DataFrame({"item_id": [f"{prefix}{k}" for k in range(n)]})


def test_each_vector_finds_itself_first_with_cosine_one():
    v = _vectors()
    ix = vindex.build(v, _items(50), {"model_id": "m"})
    hits = ix.search(v[:3], 5)
    assert [h[0][0] for h in hits] == ["i0", "i1", "i2"]
    assert all(abs(h[0][1] - 1.0) < 1e-5 for h in hits)
    assert all(h[0][1] >= h[1][1] for h in hits)
    assert len(ix.search(v[0], 500)[0]) == 50
    np.testing.assert_allclose(ix.vector("i7"), v[7])


def test_write_and_load_round_trip(tmp_path):
    v = _vectors()
    ix = vindex.build(v, _items(50).assign(colour="red"), {"model_id": "m"})
    vindex.write(ix, tmp_path / "ix", extra=lambda d: (d / "skipped.csv").write_text("row\n"))
    loaded = vindex.load(tmp_path / "ix", expect_model_id="m")
    assert loaded.ids == ix.ids and loaded.manifest["item_count"] == 50 and loaded.manifest["dimension"] == 8
    assert (tmp_path / "ix" / "skipped.csv").exists() and loaded.items["colour"].tolist() == ["red"] * 50
    assert loaded.search(v[9], 1)[0][0][0] == "i9"


def test_failed_write_leaves_the_previous_index_untouched(tmp_path):
    old = vindex.build(_vectors(seed=1), _items(50, "old"), {"model_id": "m"})
    vindex.write(old, tmp_path / "ix")

    def explode(_):
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):
        vindex.write(vindex.build(_vectors(), _items(50, "new"), {"model_id": "m"}), tmp_path / "ix", extra=explode)
    assert vindex.load(tmp_path / "ix").ids[0] == "old0"
    assert [p.name for p in tmp_path.iterdir()] == ["ix"]


def test_missing_old_mismatched_and_damaged_indexes_are_clear_errors(tmp_path):
    with pytest.raises(vindex.IndexLoadError, match="no index at"):
        vindex.load(tmp_path / "none")
    vindex.write(vindex.build(_vectors(), _items(50), {"model_id": "m"}), tmp_path / "ix")
    with pytest.raises(vindex.IndexLoadError, match="built with 'm'"):
        vindex.load(tmp_path / "ix", expect_model_id="other")
    (tmp_path / "ix" / "faiss.index").write_bytes(b"junk")
    with pytest.raises(vindex.IndexLoadError, match="damaged"):
        vindex.load(tmp_path / "ix")
    manifest = json.loads((tmp_path / "ix" / "manifest.json").read_text())
    del manifest["layout"]
    (tmp_path / "ix" / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(vindex.IndexLoadError, match="older mmsearch.*rebuild it"):
        vindex.load(tmp_path / "ix")


def test_kind_rules_follow_size_and_memory():
    assert index_kinds.choose(10_000, 512)[0] == "flat"
    assert index_kinds.choose(1_000_000, 512, budget=8 * 2**30)[0] == "hnsw"
    kind, rule = index_kinds.choose(1_000_000, 512, budget=1 * 2**30)
    assert kind == "ivfpq" and "budget" in rule
    assert index_kinds.choose(100, 8, "hnsw")[0] == "hnsw"
    with pytest.raises(ValueError, match="unknown index kind"):
        index_kinds.choose(100, 8, "annoy")


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["flat", "hnsw", "ivfpq"])
def test_filtered_search_returns_k_whenever_k_match_with_every_kind(kind, monkeypatch):
    n = 12_000
    v = _vectors(n, 32, clusters=20)
    ix = vindex.build(v, _items(n), {"model_id": "m"}, kind)
    rng = np.random.default_rng(3)
    for allowed_count in (5, 30, 15_000 // 2):
        rows = np.sort(rng.choice(n, allowed_count, replace=False))
        hits = ix.search(v[rows[0]], 10, rows)[0]
        assert len(hits) == min(10, allowed_count)
        assert {int(h[0][1:]) for h in hits} <= set(rows.tolist())
        assert hits[0][0] == f"i{rows[0]}"
    # Past the exact-filter limit the index itself searches inside the filter, and still fills k.
    monkeypatch.setattr(index_kinds, "EXACT_FILTER_MAX", 0)
    rows = np.arange(0, n, 97)
    hits = ix.search(v[5], 10, rows)[0]
    assert len(hits) == 10 and {int(h[0][1:]) for h in hits} <= set(rows.tolist())


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["flat", "hnsw", "ivfpq"])
def test_updates_add_and_remove_with_every_kind(kind):
    n = 12_000
    v = _vectors(n + 100, 32, seed=4, clusters=20)
    ix = vindex.build(v[:n], _items(n), {"model_id": "m"}, kind)
    # Drop the first 50 items, keep the rest in their slots, and add 100 new ones.
    items = pd.concat(
        [_items(n).iloc[50:], pd.DataFrame({"item_id": [f"new{k}" for k in range(100)]})], ignore_index=True
    )
    reused = np.concatenate([np.arange(50, n), np.full(100, -1)])
    up = vindex.updated(ix, items, reused, v[n:], {"model_id": "m"})
    assert len(up) == n - 50 + 100
    assert up.search(v[n + 7], 1)[0][0][0] == "new7"
    gone = {h[0] for h in up.search(v[3], 20)[0]}
    assert "i3" not in gone and len(gone) == 20
    assert up.search(v[3], 5, rows=np.arange(len(items)))[0][0][0] != "i3"
    assert kind != "hnsw" or len(up.vectors) == n + 100  # HNSW masks the removed slots


@pytest.mark.slow
def test_ivfpq_recall_against_exact_search():
    n, d = 20_000, 64
    v = _vectors(n, d, seed=5, clusters=50)
    exact = vindex.build(v, _items(n), {"model_id": "m"}, "flat")
    approx = vindex.build(v, _items(n), {"model_id": "m"}, "ivfpq")
    queries = _vectors(200, d, seed=6, clusters=50)
    hit = sum(
        len({h[0] for h in a} & {h[0] for h in e})
        for a, e in zip(approx.search(queries, 10), exact.search(queries, 10))
    )
    assert hit / 2000 >= 0.95


def test_streamed_vectors_land_in_a_folder_that_did_not_exist(tmp_path):
    v = _vectors(10)
    mapped = vindex.stream_npy(tmp_path / "new" / "folder" / ".x.vectors.npy", [v[:4], v[4:]], 8, chunk=3)
    np.testing.assert_array_equal(np.asarray(mapped), v)


def test_a_mapped_vectors_file_is_copied_whole_and_its_slices_row_by_row(tmp_path):
    v, fresh = _vectors(1000), _vectors(7, seed=3)
    np.save(tmp_path / "old.npy", v)
    old = np.load(tmp_path / "old.npy", mmap_mode="r")
    for name, part, want in (
        ("whole", old, v),
        ("head", old[:300], v[:300]),
        ("tail", old[700:], v[700:]),
        ("strided", old[::3], v[::3]),
    ):
        got = vindex.stream_npy(tmp_path / f"{name}.npy", [part, fresh], 8, chunk=64)
        np.testing.assert_array_equal(np.asarray(got), np.concatenate([want, fresh]), err_msg=name)


def test_filtered_exact_search_reads_the_vectors_flat_and_hnsw_hold_in_memory(tmp_path):
    n, d = 3000, 8
    v = _vectors(n, d)
    for kind in ("flat", "hnsw"):
        built = vindex.build(v, _items(n), {"model_id": "m"}, kind)
        vindex.write(built, tmp_path / kind)
        loaded = vindex.load(tmp_path / kind)
        assert loaded._resident is not None
        np.testing.assert_array_equal(loaded._resident, v)
        rows = np.arange(0, n, 7)
        from_memory = loaded.search(v[:5], 6, rows)
        loaded._resident = None  # the memory-mapped file instead
        assert loaded.search(v[:5], 6, rows) == from_memory
    flat = vindex.build(v, _items(n), {"model_id": "m"}, "flat")
    flat.engine.remove_ids(faiss.IDSelectorBatch(np.array([3], dtype=np.int64)))  # ids no longer the order
    assert index_kinds.kind("flat").resident(flat.engine, n) is None
