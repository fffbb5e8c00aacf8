"""The index build pipeline on a catalog made by someone else: images on disk and a few bad rows."""

import numpy as np
import pandas as pd
import pytest
from conftest import ask, tiny_settings
from PIL import Image

import index_build
from mmsearch import settings
from mmsearch.builder.pipeline import BuildError, build_index
from mmsearch.search.searcher import Searcher


@pytest.fixture
def shop(tmp_path):
    imgs = tmp_path / "photos"
    imgs.mkdir()
    rng = np.random.default_rng(1)
    rows = []
    for i in range(12):
        Image.fromarray(rng.integers(0, 255, (48, 64, 3), dtype=np.uint8)).save(imgs / f"p{i}.jpg")
        rows.append(
            {
                "item_id": f"sku-{i}",
                "image": f"photos/p{i}.jpg",
                "title": f"Product {i}",
                "category": "hats" if i % 2 else "mugs",
                "price": str(10 + i),
                "colour": "red",
            }
        )
    (imgs / "broken.jpg").write_bytes(b"\xff\xd8\xff not really")
    rows += [
        {"item_id": "sku-3", "image": "photos/p4.jpg", "title": "dup"},
        {"item_id": "sku-x", "image": "photos/nope.jpg", "title": "missing"},
        {"item_id": "sku-y", "image": "photos/broken.jpg", "title": "broken"},
    ]
    pd.DataFrame(rows).to_csv(tmp_path / "shop.csv", index=False)
    return tmp_path / "shop.csv"


def test_someone_elses_catalog_indexes_and_finds_its_own_images(shop, tmp_path, tiny_two_tower_dir):
    cfg = tiny_settings(tmp_path, shop, tiny_two_tower_dir, workers=1, batch_size=5)
    built = build_index(cfg)
    assert built.manifest["item_count"] == 12 and built.manifest["skipped"] == 3
    report = pd.read_csv(tmp_path / "ix" / "skipped.csv")
    assert sorted(report["item_id"]) == ["sku-3", "sku-x", "sku-y"]
    searcher = Searcher.open(cfg)
    for i in (0, 7, 11):
        top = ask(searcher, image=shop.parent / "photos" / f"p{i}.jpg", k=3)
        assert top[0].item_id == f"sku-{i}" and top[0].score == pytest.approx(1.0, abs=1e-4)
        assert top[0].title == f"Product {i}" and top[0].metadata["colour"] == "red"
    assert {r["item_id"] for r in (pd.read_csv(shop).to_dict("records"))} - set(built.ids) - set(
        report["item_id"]
    ) == set()  # every row is either searchable or in the report


def test_build_refuses_a_catalog_with_no_usable_rows(tmp_path, tiny_two_tower_dir):
    (tmp_path / "c.csv").write_text("item_id,image\na,missing.jpg\n")
    cfg = settings.Settings(
        data_dir=tmp_path / "d",
        catalog=str(tmp_path / "c.csv"),
        model=f"two-tower:{tiny_two_tower_dir}",
        index=tmp_path / "ix",
    )
    with pytest.raises(BuildError, match="no usable items"):
        build_index(cfg)
    assert not (tmp_path / "ix").exists()


def test_cli_exit_codes(tmp_path, tiny_two_tower_dir, demo_manifest, capsys):
    out = tmp_path / "ix"
    args = [
        "--catalog",
        str(demo_manifest),
        "--model",
        f"two-tower:{tiny_two_tower_dir}",
        "--index",
        str(out),
        "--data-dir",
        str(tmp_path / "d"),
        "--workers",
        "1",
        "--duplicate-threshold",
        "0",
    ]
    assert index_build.main(args) == 0
    assert (out / "manifest.json").exists() and "built" in capsys.readouterr().out
    assert (
        index_build.main(
            [
                "--catalog",
                str(tmp_path / "nope.csv"),
                "--index",
                str(tmp_path / "y"),
                "--model",
                f"two-tower:{tiny_two_tower_dir}",
            ]
        )
        == 2
    )
    assert "catalog not found" in capsys.readouterr().err
    assert index_build.main(["--catalog", str(demo_manifest), "--model", "clip:Nope/x", "--index", str(out)]) == 2
    assert (out / "manifest.json").exists()  # the earlier good index survives a failed rebuild


def test_near_duplicates_are_reported_and_collapsed(tmp_path):
    # The demo model, not a random one: random weights map distinct pictures to near-identical vectors.
    from mmsearch.ingest import demo

    rows = []
    for i, item in enumerate(demo.make_items(8, demo.HELDOUT_SEED)):
        demo.render(item).save(tmp_path / f"p{i}.png")
        rows.append({"item_id": f"i{i}", "image": f"p{i}.png", "title": item.title})
    rows.append({"item_id": "i0-copy", "image": "p0.png", "title": "the same photo again"})
    pd.DataFrame(rows).to_csv(tmp_path / "c.csv", index=False)
    cfg = settings.Settings(
        data_dir=tmp_path / "d", catalog=str(tmp_path / "c.csv"), index=tmp_path / "ix", model="demo", workers=1
    )
    built = build_index(cfg)
    pairs = pd.read_csv(tmp_path / "ix" / "near_duplicates.csv")
    assert ("i0", "i0-copy") in set(zip(pairs["item_id"], pairs["duplicate_of"]))
    assert built.manifest["near_duplicate_pairs"] == len(pairs)
    searcher = Searcher.open(cfg)
    collapsed = [r.item_id for r in ask(searcher, image=tmp_path / "p0.png", k=3)]
    assert len(collapsed) == 3 and len({"i0", "i0-copy"} & set(collapsed)) == 1
    vector = searcher.index.vector("i0")
    assert {"i0", "i0-copy"} <= {item_id for item_id, _ in searcher.index.search(vector, 3)[0]}  # both are there
