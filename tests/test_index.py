import json

import numpy as np
import pytest

from mmsearch import index as vindex


def _vectors(n=50, d=8, seed=0):
    v = np.random.default_rng(seed).normal(size=(n, d)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def test_each_vector_finds_itself_first_with_cosine_one():
    v = _vectors()
    ix = vindex.build(v, [f"i{n}" for n in range(50)], {"model_id": "m"})
    hits = ix.search(v[:3], 5)
    assert [h[0][0] for h in hits] == ["i0", "i1", "i2"]
    assert all(abs(h[0][1] - 1.0) < 1e-5 for h in hits)
    assert all(h[0][1] >= h[1][1] for h in hits)
    assert len(ix.search(v[0], 500)[0]) == 50
    np.testing.assert_allclose(ix.vector("i7"), v[7])


def test_write_and_load_round_trip(tmp_path):
    v = _vectors()
    ix = vindex.build(v, [f"i{n}" for n in range(50)], {"model_id": "m"})
    vindex.write(ix, tmp_path / "ix", extra=lambda d: (d / "skipped.csv").write_text("row\n"))
    loaded = vindex.load(tmp_path / "ix", expect_model_id="m")
    assert loaded.ids == ix.ids and loaded.manifest["item_count"] == 50 and loaded.manifest["dimension"] == 8
    assert (tmp_path / "ix" / "skipped.csv").exists()
    assert loaded.search(v[9], 1)[0][0][0] == "i9"


def test_failed_write_leaves_the_previous_index_untouched(tmp_path):
    old = vindex.build(_vectors(seed=1), [f"old{n}" for n in range(50)], {"model_id": "m"})
    vindex.write(old, tmp_path / "ix")

    def explode(_):
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):
        vindex.write(vindex.build(_vectors(), [f"new{n}" for n in range(50)], {"model_id": "m"}), tmp_path / "ix",
                     extra=explode)
    assert vindex.load(tmp_path / "ix").ids[0] == "old0"
    assert [p.name for p in tmp_path.iterdir()] == ["ix"]


def test_missing_mismatched_and_damaged_indexes_are_clear_errors(tmp_path):
    with pytest.raises(vindex.IndexLoadError, match="no index at"):
        vindex.load(tmp_path / "none")
    vindex.write(vindex.build(_vectors(), [f"i{n}" for n in range(50)], {"model_id": "m"}), tmp_path / "ix")
    with pytest.raises(vindex.IndexLoadError, match="built with 'm'"):
        vindex.load(tmp_path / "ix", expect_model_id="other")
    (tmp_path / "ix" / "ids.json").write_text(json.dumps(["only-one"]))
    with pytest.raises(vindex.IndexLoadError, match="50 vectors but 1 ids"):
        vindex.load(tmp_path / "ix")
    (tmp_path / "ix" / "faiss.index").write_bytes(b"junk")
    with pytest.raises(vindex.IndexLoadError, match="damaged"):
        vindex.load(tmp_path / "ix")
