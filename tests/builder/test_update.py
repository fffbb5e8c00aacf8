"""Updating an index in place of a rebuild: what is encoded, what is served, and what a failure leaves behind."""

import json

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from conftest import ask
from PIL import Image

import index_build
from mmsearch import settings
from mmsearch.builder import pipeline as build
from mmsearch.ingest.catalog import CatalogError
from mmsearch.search.ranking import Ranking
from mmsearch.search.results import QueryError
from mmsearch.search.searcher import Searcher


def _picture(path, seed):
    Image.fromarray(np.random.default_rng(seed).integers(0, 255, (40, 40, 3), dtype=np.uint8)).save(path)


def _shop(folder, n=20, titles=None, seeds=None, name="shop.csv"):
    folder.mkdir(exist_ok=True)
    rows = []
    for i in range(n):
        path = folder / f"p{i}.png"
        if not path.exists():
            _picture(path, (seeds or {}).get(i, i))
        rows.append(
            {
                "item_id": str(i),
                "image": path.name,
                "title": (titles or {}).get(i, f"plain item {i}"),
                "category": "hat" if i % 2 else "mug",
                "price": str(10 + i),
            }
        )
    pd.DataFrame(rows).to_csv(folder / name, index=False)
    return folder / name


def _cfg(tmp_path, catalog, model, out="ix", **kw):
    return settings.Settings(
        data_dir=tmp_path / "data",
        catalog=str(catalog),
        model=model,
        index=tmp_path / out,
        workers=0,
        batch_size=8,
        duplicate_threshold=0,
        reload_interval=0,
        **kw,
    )


@pytest.fixture
def model(tiny_two_tower_dir):
    return f"two-tower:{tiny_two_tower_dir}"


def _cli_args(shop, model, tmp_path) -> list[str]:
    """index_build.py's flags for the shop into tmp_path's ix and data, as a user would type them."""
    return [
        *("--catalog", str(shop), "--model", model),
        *("--index", str(tmp_path / "ix"), "--data-dir", str(tmp_path / "data")),
        *("--workers", "0", "--duplicate-threshold", "0"),
    ]


def _counts(manifest):
    return {k: manifest[k] for k in build.COUNTS}


def test_an_update_encodes_only_new_and_changed_pictures(tmp_path, model):
    shop = _shop(tmp_path / "shop")
    first = build.build_index(_cfg(tmp_path, shop, model))
    assert _counts(first.manifest) == {"added": 20, "changed": 0, "removed": 0, "unchanged": 20 - 20, "encoded": 20}
    assert first.manifest["mode"] == "full"

    _picture(tmp_path / "shop" / "p3.png", 1000)  # new bytes for item 3's picture
    table = pd.read_csv(shop, dtype=str)
    table.loc[table.item_id == "5", "title"] = "renamed five"  # a listing change: no encoding
    table = table[~table.item_id.isin(["7", "8"])]  # two removed
    for i in (20, 21):  # two added
        _picture(tmp_path / "shop" / f"p{i}.png", i)
    added = pd.DataFrame(
        {
            "item_id": ["20", "21"],
            "image": ["p20.png", "p21.png"],
            "title": ["new a", "new b"],
            "category": "mug",
            "price": "5",
        }
    )
    pd.concat([table, added]).to_csv(shop, index=False)
    second = build.build_index(_cfg(tmp_path, shop, model))
    assert _counts(second.manifest) == {"added": 2, "changed": 2, "removed": 2, "unchanged": 16, "encoded": 3}
    assert second.manifest["mode"] == "update" and second.manifest["item_count"] == 20
    on_disk = json.loads((tmp_path / "ix" / "manifest.json").read_text())
    assert _counts(on_disk) == _counts(second.manifest)

    again = build.build_index(_cfg(tmp_path, shop, model))  # nothing changed: nothing encoded
    assert _counts(again.manifest) == {"added": 0, "changed": 0, "removed": 0, "unchanged": 20, "encoded": 0}
    full = build.build_index(_cfg(tmp_path, shop, model, full=True))
    assert full.manifest["mode"] == "full" and full.manifest["encoded"] == 20


def test_removed_and_renamed_items_are_served_as_the_catalog_says(tmp_path, model):
    shop = _shop(tmp_path / "shop")
    build.build_index(_cfg(tmp_path, shop, model))
    table = pd.read_csv(shop, dtype=str)
    table.loc[table.item_id == "4", ["title", "category"]] = ["a zebra lamp", "lamp"]
    table = table[table.item_id != "6"]
    table.to_csv(shop, index=False)
    build.build_index(_cfg(tmp_path, shop, model))
    searcher = Searcher.open(_cfg(tmp_path, shop, model))
    assert "6" not in searcher.index and len(searcher.index) == 19
    with pytest.raises(QueryError, match="No item '6'"):
        ask(searcher, item_id="6")
    everything = [r.item_id for r in ask(searcher, image=tmp_path / "shop" / "p6.png", k=50)]
    assert "6" not in everything and len(everything) == 19
    assert [r.item_id for r in ask(searcher, q="plain", k=50, mode="keyword")].count("6") == 0
    assert "6" not in [
        r.item_id for r in ask(searcher, image=tmp_path / "shop" / "p6.png", k=50, filters="category=mug")
    ]
    zebra = ask(searcher, q="zebra", k=3, mode="keyword")
    assert zebra[0].item_id == "4" and zebra[0].title == "a zebra lamp" and zebra[0].category == "lamp"
    assert [r.item_id for r in ask(searcher, image=tmp_path / "shop" / "p4.png", k=1, filters="category=lamp")] == ["4"]


def test_a_failed_update_changes_nothing_served(tmp_path, model, monkeypatch):
    shop = _shop(tmp_path / "shop")
    build.build_index(_cfg(tmp_path, shop, model))
    before = Searcher.open(_cfg(tmp_path, shop, model))
    table = pd.read_csv(shop, dtype=str)
    table.loc[table.item_id == "2", "title"] = "half-written title"
    table = table[table.item_id != "9"]
    table.to_csv(shop, index=False)
    _picture(tmp_path / "shop" / "p1.png", 999)

    def disk_full(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(build.KeywordIndex, "save", disk_full)  # fails after Feast was written, offline and online
    with pytest.raises(OSError, match="No space"):
        build.build_index(_cfg(tmp_path, shop, model))
    monkeypatch.undo()
    after = Searcher.open(_cfg(tmp_path, shop, model))
    for searcher in (before, after):  # the old index, and the Feast rows it reads, are as they were
        assert "9" in searcher.index and len(searcher.index) == 20
        two = ask(searcher, item_id="2", k=20)
        assert {r.item_id: r.title for r in two}["2"] == "plain item 2"
    done = build.build_index(_cfg(tmp_path, shop, model))
    # The failed run's vector for the new picture is found in Feast (keyed by the picture's bytes): not re-encoded.
    assert _counts(done.manifest) == {"added": 0, "changed": 2, "removed": 1, "unchanged": 17, "encoded": 0}
    assert ask(Searcher.open(_cfg(tmp_path, shop, model)), item_id="2", k=20)[0].title == "half-written title"


def test_two_catalogs_with_the_same_item_ids_keep_their_own_data(tmp_path, model):
    a = _shop(tmp_path / "a", n=6, titles={i: f"apple {i}" for i in range(6)})
    b = _shop(tmp_path / "b", n=6, titles={i: f"banana {i}" for i in range(6)}, seeds={i: 50 + i for i in range(6)})
    build.build_index(_cfg(tmp_path, a, model, out="ix-a"))
    build.build_index(_cfg(tmp_path, b, model, out="ix-b"))
    sa = Searcher.open(_cfg(tmp_path, a, model, out="ix-a"))
    sb = Searcher.open(_cfg(tmp_path, b, model, out="ix-b"))
    got_a = ask(sa, image=tmp_path / "a" / "p0.png", k=6)
    got_b = ask(sb, image=tmp_path / "b" / "p0.png", k=6)
    assert all(r.title.startswith("apple") and "/a/" in r.image for r in got_a)
    assert all(r.title.startswith("banana") and "/b/" in r.image for r in got_b)
    assert got_a[0].item_id == got_b[0].item_id == "0" and got_a[0].score == pytest.approx(1.0, abs=1e-4)


def test_bring_your_own_embeddings(tmp_path, model, tiny_two_tower_dir):
    from mmsearch.encode.encoders import load_encoder

    encoder = load_encoder(model, "cpu")
    _shop(tmp_path / "shop", n=8)
    table = pd.read_csv(tmp_path / "shop" / "shop.csv", dtype=str)
    rng = np.random.default_rng(0)
    vectors = rng.normal(size=(8, encoder.dim)).astype(np.float32)
    table["embedding"] = list(vectors)
    table.loc[7, "embedding"] = None  # this one is encoded from its picture
    arrow = pa.Table.from_pandas(table, preserve_index=False)
    pq.write_table(
        arrow.replace_schema_metadata({b"mmsearch.model_id": encoder.model_id.encode()}),
        tmp_path / "shop" / "byo.parquet",
    )
    built = build.build_index(_cfg(tmp_path, tmp_path / "shop" / "byo.parquet", model), encoder)
    assert built.manifest["encoded"] == 1 and built.manifest["item_count"] == 8
    searcher = Searcher.open(_cfg(tmp_path, tmp_path / "shop" / "byo.parquet", model), encoder)
    unit = vectors[3] / np.linalg.norm(vectors[3])
    top = Ranking(searcher.snapshot, searcher.store, 5).by_vector(unit, 1)[0]
    assert top.item_id == "3" and top.score == pytest.approx(1.0, abs=1e-5) and "embedding" not in top.metadata

    wrong_dim = table.assign(embedding=[np.ones(3, np.float32)] * 8)
    pq.write_table(pa.Table.from_pandas(wrong_dim, preserve_index=False), tmp_path / "shop" / "bad.parquet")
    with pytest.raises(CatalogError, match="does not say which model"):
        build.build_index(_cfg(tmp_path, tmp_path / "shop" / "bad.parquet", model, out="ix2"), encoder)
    with pytest.raises(CatalogError, match="has 3 values"):
        build.build_index(
            _cfg(tmp_path, tmp_path / "shop" / "bad.parquet", model, out="ix2", embeddings_model=encoder.model_id),
            encoder,
        )
    args = [
        "--catalog",
        str(tmp_path / "shop" / "bad.parquet"),
        "--model",
        model,
        "--index",
        str(tmp_path / "ix3"),
        "--data-dir",
        str(tmp_path / "data"),
        "--embeddings-model",
        "clip:ViT-B-32/openai",
    ]
    assert index_build.main(args) == 2  # made by another model: a clear error, no index
    assert not (tmp_path / "ix3").exists()


def test_the_cli_prints_what_it_did(tmp_path, model, capsys):
    shop = _shop(tmp_path / "shop", n=6)
    args = _cli_args(shop, model, tmp_path)
    assert index_build.main(args) == 0
    table = pd.read_csv(shop, dtype=str)
    table[table.item_id != "0"].to_csv(shop, index=False)
    assert index_build.main(args) == 0
    out = capsys.readouterr().out
    assert "updated" in out and "removed 1" in out and "encoded 0" in out
    assert index_build.main(args + ["--full"]) == 0
    assert "encoded 5" in capsys.readouterr().out


def test_the_searcher_swaps_in_an_updated_index_while_queries_run(tmp_path, model):
    import threading

    shop = _shop(tmp_path / "shop")
    build.build_index(_cfg(tmp_path, shop, model))
    searcher = Searcher.open(_cfg(tmp_path, shop, model))
    errors, answers, stop = [], [], threading.Event()

    def hammer(kind):
        while not stop.is_set():
            try:
                if kind == 0:
                    answers.append(len(ask(searcher, q="plain item", k=5, mode="hybrid")))
                elif kind == 1:
                    answers.append(len(ask(searcher, image=tmp_path / "shop" / "p1.png", k=5, filters="category=hat")))
                else:
                    answers.append(len(ask(searcher, item_id="1", k=5)))
            except Exception as exc:  # noqa: BLE001 - any failure is what the test looks for
                errors.append(repr(exc))

    threads = [threading.Thread(target=hammer, args=(n % 3,)) for n in range(6)]
    for t in threads:
        t.start()
    table = pd.read_csv(shop, dtype=str)
    table.loc[table.item_id == "1", "title"] = "swapped title"
    table[table.item_id != "3"].to_csv(shop, index=False)
    build.build_index(_cfg(tmp_path, shop, model))
    searcher.loaded.watch(0.05)
    for _ in range(200):
        if searcher.loaded.reloads:
            break
        threading.Event().wait(0.05)
    threading.Event().wait(0.3)
    stop.set()
    for t in threads:
        t.join()
    assert searcher.loaded.reloads == 1 and not errors and len(answers) > 20 and set(answers) == {5}
    assert "3" not in searcher.index and ask(searcher, item_id="1", k=1)[0].title == "swapped title"


def test_embeddings_from_a_side_file(tmp_path, model):
    from mmsearch.encode.encoders import load_encoder

    encoder = load_encoder(model, "cpu")
    shop = _shop(tmp_path / "shop", n=6)
    vectors = np.random.default_rng(1).normal(size=(6, encoder.dim)).astype(np.float32)
    side = pa.table({"item_id": [str(i) for i in range(6)], "embedding": list(vectors)})
    pq.write_table(side, tmp_path / "vectors.parquet")
    cfg = _cfg(tmp_path, shop, model, embeddings=tmp_path / "vectors.parquet", embeddings_model=model)
    assert build.build_index(cfg, encoder).manifest["encoded"] == 0
    searcher = Searcher.open(cfg, encoder)
    top = Ranking(searcher.snapshot, searcher.store, 5).by_vector(vectors[4] / np.linalg.norm(vectors[4]), 1)[0]
    assert top.item_id == "4" and top.score == pytest.approx(1.0, abs=1e-5)


def test_an_index_of_the_old_layout_is_refused_with_a_way_out_and_rebuilt(tmp_path, model, capsys):
    shop = _shop(tmp_path / "shop", n=6)
    cfg = _cfg(tmp_path, shop, model)
    build.build_index(cfg)
    manifest = json.loads((tmp_path / "ix" / "manifest.json").read_text())
    del manifest["layout"]
    (tmp_path / "ix" / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(Exception, match="older mmsearch.*python index_build.py"):
        Searcher.open(cfg)
    rebuilt = build.build_index(cfg, progress=build.print_progress)
    assert rebuilt.manifest["mode"] == "full" and "older mmsearch" in capsys.readouterr().out
    assert len(Searcher.open(cfg).index) == 6


@pytest.mark.slow
def test_a_build_killed_with_sigkill_leaves_the_served_index_and_its_rows(tmp_path, model):
    import signal
    import subprocess
    import sys

    shop = _shop(tmp_path / "shop")
    cfg = _cfg(tmp_path, shop, model)
    build.build_index(cfg)
    table = pd.read_csv(shop, dtype=str)
    table["title"] = "killed before it landed"
    table.to_csv(shop, index=False)
    proc = subprocess.Popen(
        [sys.executable, "index_build.py", *_cli_args(shop, model, tmp_path)],
        cwd=build.Path(__file__).resolve().parents[2],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    for line in proc.stdout:  # killed once the new rows are in Feast, before the index swap
        if "reading the new embeddings back" in line or "updating the" in line:
            proc.send_signal(signal.SIGKILL)
            break
    proc.wait(60)
    assert proc.returncode == -signal.SIGKILL
    searcher = Searcher.open(cfg)
    assert {r.title for r in ask(searcher, item_id="0", k=20)} == {f"plain item {i}" for i in range(20)}
    done = build.build_index(cfg)  # the next build lands, reusing what the killed one wrote
    assert done.manifest["changed"] == 20 and done.manifest["encoded"] == 0
    assert ask(Searcher.open(cfg), item_id="0", k=1)[0].title == "killed before it landed"


def test_a_picture_that_fails_to_decode_is_skipped_in_a_build_and_in_an_update(tmp_path, model):
    shop = _shop(tmp_path / "shop", n=8)
    Image.open(tmp_path / "shop" / "p5.png").save(tmp_path / "shop" / "p5.jpg")
    data = (tmp_path / "shop" / "p5.jpg").read_bytes()
    (tmp_path / "shop" / "p5.jpg").write_bytes(data[: len(data) // 2])  # the header reads; the pixels do not
    table = pd.read_csv(shop, dtype=str)
    table.loc[table.item_id == "5", "image"] = "p5.jpg"
    table.to_csv(shop, index=False)
    first = build.build_index(_cfg(tmp_path, shop, model))
    assert first.manifest["item_count"] == 7 and first.manifest["added"] == 7 and "5" not in first.ids
    report = pd.read_csv(tmp_path / "ix" / "skipped.csv", dtype=str)
    assert report.set_index("item_id").loc["5", "reason"].startswith("corrupt or truncated")
    (tmp_path / "shop" / "p5.jpg").write_bytes(data)  # mended: it arrives as a new item
    (tmp_path / "shop" / "p2.png").write_bytes(data[: len(data) // 2])  # and another picture breaks
    table.loc[table.item_id == "2", "image"] = "p2.png"
    table.to_csv(shop, index=False)
    second = build.build_index(_cfg(tmp_path, shop, model))
    assert "5" in second.ids and "2" not in second.ids and second.manifest["item_count"] == 7
    assert second.manifest["encoded"] == 1
    searcher = Searcher.open(_cfg(tmp_path, shop, model))
    assert ask(searcher, item_id="5", k=1)[0].item_id == "5"
