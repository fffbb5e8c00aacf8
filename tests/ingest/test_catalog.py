import json
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from mmsearch.ingest import catalog, images
from mmsearch.ingest.catalog import CatalogError
from mmsearch.ingest.images import ImageError


def _img(path, mode="RGB", size=(40, 30), color=(200, 10, 10)):
    if mode == "I;16":
        Image.fromarray((np.arange(size[0] * size[1]).reshape(size[1], size[0]) * 50).astype(np.uint16)).save(path)
    elif mode == "P":
        Image.new("RGB", size, color).convert("P", palette=Image.Palette.ADAPTIVE).save(path)
    elif mode == "CMYK":
        Image.new("CMYK", size, (0, 255, 255, 0)).save(path, "JPEG")
    elif mode == "RGBA":
        Image.new("RGBA", size, (255, 0, 0, 0)).save(path)
    else:
        Image.new(mode, size, color).save(path)
    return path


@pytest.fixture
def messy(tmp_path):
    """A manifest someone else made: good rows, odd image modes and a handful of bad rows."""
    imgs = tmp_path / "imgs"
    imgs.mkdir()
    _img(imgs / "a.jpg")
    _img(imgs / "cmyk.jpg", "CMYK")
    _img(imgs / "rgba.png", "RGBA")
    _img(imgs / "deep.png", "I;16")
    _img(imgs / "pal.png", "P")
    _img(imgs / "huge.png", size=(300, 300))
    (imgs / "notes.jpg").write_text("this is not an image")
    trunc = imgs / "trunc.jpg"
    Image.effect_noise((200, 200), 60).convert("RGB").save(trunc, quality=95)
    trunc.write_bytes(trunc.read_bytes()[: trunc.stat().st_size // 2])
    rows = [
        {"item_id": "a", "image": "imgs/a.jpg", "title": "Red thing", "price": "9.5", "brand": "acme"},
        {"item_id": "cmyk", "image": "imgs/cmyk.jpg", "title": "Cyan", "price": "", "brand": "acme"},
        {"item_id": "rgba", "image": "imgs/rgba.png", "title": "Clear", "price": "abc", "brand": ""},
        {"item_id": "deep", "image": "imgs/deep.png", "title": "Deep", "price": "1", "brand": "b"},
        {"item_id": "pal", "image": str(imgs / "pal.png"), "title": "Palette", "price": "2", "brand": "b"},
        {"item_id": "a", "image": "imgs/a.jpg", "title": "Dup", "price": "1", "brand": "b"},
        {"item_id": "gone", "image": "imgs/missing.jpg", "title": "Missing", "price": "1", "brand": "b"},
        {"item_id": "txt", "image": "imgs/notes.jpg", "title": "Not an image", "price": "1", "brand": "b"},
        {"item_id": "", "image": "imgs/a.jpg", "title": "No id", "price": "1", "brand": "b"},
        {"item_id": "huge", "image": "imgs/huge.png", "title": "Too big", "price": "1", "brand": "b"},
        {"item_id": "trunc", "image": "imgs/trunc.jpg", "title": "Truncated", "price": "1", "brand": "b"},
    ]
    path = tmp_path / "items.csv"
    pd.DataFrame(rows).to_csv(path, index=False)
    return path


def test_bad_rows_are_skipped_with_reasons_and_good_rows_kept(messy):
    cat = catalog.load_catalog(str(messy), messy.parent, max_pixels=50_000)
    kept = set(cat.items["item_id"])
    assert kept == {"a", "cmyk", "rgba", "deep", "pal", "trunc"}  # truncation shows only on full decode
    reasons = {s.item_id: s.reason for s in cat.skipped}
    assert "duplicate" in reasons["a"] and "not found" in reasons["gone"]
    assert "not a readable image" in reasons["txt"] and "too large" in reasons["huge"]
    assert any(s.item_id is None and "empty item_id" in s.reason for s in cat.skipped)
    assert len(cat.skipped) + len(cat.items) == cat.total_rows == 11
    assert [w.item_id for w in cat.warnings] == ["rgba"]  # the bad price is kept, with a warning
    assert cat.items.set_index("item_id").loc["a", "brand"] == "acme"  # unknown columns are kept as metadata
    assert cat.items.set_index("item_id").loc["a", "title"] == "Red thing"
    with pytest.raises(ImageError, match="corrupt or truncated"):
        images.load_image(cat.items.set_index("item_id").loc["trunc", "image"])


@pytest.mark.parametrize(
    "name,mode", [("cmyk.jpg", "CMYK"), ("rgba.png", "RGBA"), ("deep.png", "I;16"), ("pal.png", "P")]
)
def test_odd_modes_become_rgb(messy, name, mode):
    img = images.load_image(messy.parent / "imgs" / name)
    assert img.mode == "RGB" and img.size == (40, 30)
    if mode == "RGBA":  # fully transparent pixels land on white, not black
        assert img.getpixel((0, 0)) == (255, 255, 255)


def test_report_lists_skipped_rows_and_warnings(messy, tmp_path):
    cat = catalog.load_catalog(str(messy), tmp_path, max_pixels=50_000)
    report = pd.read_csv(catalog.write_report(cat, tmp_path))
    assert len(report) == len(cat.skipped) + len(cat.warnings)
    assert set(report["kind"]) == {"skipped", "warning"}


def test_jsonl_with_a_broken_line_skips_only_that_line(tmp_path):
    _img(tmp_path / "x.png")
    lines = [json.dumps({"item_id": "x", "image": "x.png", "title": "X"}), "{not json", "[1, 2]"]
    (tmp_path / "c.jsonl").write_text("\n".join(lines) + "\n")
    cat = catalog.load_catalog(str(tmp_path / "c.jsonl"), tmp_path)
    assert list(cat.items["item_id"]) == ["x"]
    assert [s.row for s in cat.skipped] == [2, 3] and "invalid JSON" in cat.skipped[0].reason


def test_parquet_and_folder_sources(tmp_path):
    (tmp_path / "shop" / "hats").mkdir(parents=True)
    _img(tmp_path / "shop" / "hats" / "blue_cap.png")
    _img(tmp_path / "shop" / "red-mug.jpg")
    folder = catalog.load_catalog(str(tmp_path / "shop"), tmp_path)
    assert sorted(folder.items["item_id"]) == ["hats/blue_cap", "red-mug"]
    assert "blue cap" in set(folder.items["title"])
    by_id = dict(zip(folder.items["item_id"], folder.items["category"]))
    assert by_id == {"hats/blue_cap": "hats", "red-mug": ""}  # the sub-folder is the category
    pd.DataFrame({"item_id": ["m"], "image": ["shop/red-mug.jpg"]}).to_parquet(tmp_path / "c.parquet")
    cat = catalog.load_catalog(str(tmp_path / "c.parquet"), tmp_path)
    assert cat.items.iloc[0]["title"] == "red-mug"


def test_a_flat_folder_has_no_category_and_product_folders_take_their_parent(tmp_path):
    (tmp_path / "flat").mkdir()
    _img(tmp_path / "flat" / "a.png")
    _img(tmp_path / "flat" / "b.png")
    assert set(catalog.load_catalog(str(tmp_path / "flat"), tmp_path).items["category"]) == {""}
    for picture in ("mugs/red-mug/front.png", "mugs/red-mug/back.png", "blue-cap/side.png"):
        (tmp_path / "shop" / picture).parent.mkdir(parents=True, exist_ok=True)
        _img(tmp_path / "shop" / picture)
    products = SimpleNamespace(product_folders=True)
    items = catalog.load_catalog(str(tmp_path / "shop"), tmp_path, settings=products).items
    assert dict(zip(items["item_id"], items["category"])) == {"mugs/red-mug": "mugs", "blue-cap": ""}


def test_hugging_face_dataset_from_disk(tmp_path):
    import datasets

    ds = datasets.Dataset.from_dict(
        {
            "image": [Image.new("RGB", (20, 20), (i * 40, 0, 0)) for i in range(3)],
            "caption": [["a red dog", "x"], ["a cat", "y"], ["a bird", "z"]],
            "img_id": ["d", "c", "b"],
        }
    )
    ds = ds.cast_column("image", datasets.Image())
    ds.save_to_disk(str(tmp_path / "ds"))
    cat = catalog.load_catalog(f"hf:{tmp_path / 'ds'}", tmp_path / "data", hf_id_column="img_id")
    assert list(cat.items["item_id"]) == ["d", "c", "b"]
    assert cat.items.iloc[0]["title"] == "a red dog"  # first of several captions
    assert all(images.load_image(p).size == (20, 20) for p in cat.items["image"])
    with pytest.raises(CatalogError, match="no column 'text'"):
        catalog.load_catalog(f"hf:{tmp_path / 'ds'}", tmp_path / "data", hf_text_column="text")


def test_unreadable_catalogs_raise_clear_errors(tmp_path):
    with pytest.raises(CatalogError, match="not found"):
        catalog.load_catalog(str(tmp_path / "nope.csv"), tmp_path)
    (tmp_path / "c.csv").write_text("id,picture\n1,a.jpg\n")
    with pytest.raises(CatalogError, match="no 'item_id' column"):
        catalog.load_catalog(str(tmp_path / "c.csv"), tmp_path)
    (tmp_path / "c.txt").write_text("x")
    with pytest.raises(CatalogError, match="unsupported"):
        catalog.load_catalog(str(tmp_path / "c.txt"), tmp_path)


def test_decompression_bomb_is_refused(tmp_path):
    Image.new("L", (4000, 4000)).save(tmp_path / "bomb.png")
    with pytest.raises(ImageError, match="too large"):
        images.load_image(tmp_path / "bomb.png", max_pixels=1_000_000)


def test_a_classification_dataset_indexes_with_its_label_names(tmp_path):
    """The shape of fashion_mnist, cifar10, food101: an image and a ClassLabel, no text column."""
    datasets = pytest.importorskip("datasets")
    names = ["T-shirt/top", "Trouser", "Pullover"]
    features = datasets.Features({"image": datasets.Image(), "label": datasets.ClassLabel(names=names)})
    rows = {"image": [Image.new("L", (28, 28), 40 * i) for i in range(6)], "label": [0, 1, 2, 2, 1, 0]}
    datasets.Dataset.from_dict(rows, features=features).save_to_disk(str(tmp_path / "ds"))
    cat = catalog.load_catalog(f"hf:{tmp_path / 'ds'}", tmp_path / "data")
    items = cat.items.set_index("item_id")
    assert items["title"].tolist() == ["T-shirt/top", "Trouser", "Pullover", "Pullover", "Trouser", "T-shirt/top"]
    assert items["category"].tolist() == items["title"].tolist()
    assert all(p.endswith(".png") and images.load_image(p).size == (28, 28) for p in items["image"])
    # mapped elsewhere by --hf-columns, the label keeps its names there and still titles the item
    renamed = catalog.load_catalog(f"hf:{tmp_path / 'ds'}", tmp_path / "data2", hf_columns="label:kind").items
    assert renamed["kind"].tolist()[:3] == names and renamed["title"].tolist()[:3] == names
    assert "category" not in renamed or renamed["category"].fillna("").eq("").all()
