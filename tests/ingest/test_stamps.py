"""Tux Paint's stamps as a catalog, read in place: captions by language, the folder as category (how a thing is
drawn is not what it is), a stamp shipped as PNG and SVG indexed once; SVGs rendered safely."""

import pytest
from PIL import Image

from mmsearch.ingest import catalog as catalog_mod
from mmsearch.ingest.catalog import CatalogError
from mmsearch.ingest.datasets import tuxpaint_stamps as stamps
from mmsearch.ingest.images import ImageError, load_image
from tests.conftest import need_stamps

SQUARE = (
    '<svg xmlns="http://www.w3.org/2000/svg" width="40" height="20"><rect width="40" height="20" fill="red"/></svg>'
)
ENTITY = (
    '<?xml version="1.0"?><!DOCTYPE svg [<!ENTITY e SYSTEM "file:///etc/passwd">]>'
    '<svg xmlns="http://www.w3.org/2000/svg" width="9" height="9"><text>&e;</text></svg>'
)


def fake_stamps(root):
    (root / "food" / "fruit" / "cartoon").mkdir(parents=True)
    Image.new("RGBA", (30, 30), (200, 0, 0, 255)).save(root / "food" / "fruit" / "apple.png")
    (root / "food" / "fruit" / "apple.txt").write_text("An apple.\nes.utf8=Una manzana.\nde.utf8=Ein Apfel.\n")
    (root / "food" / "fruit" / "cartoon" / "pear.svg").write_text(SQUARE)
    (root / "food" / "fruit" / "cartoon" / "pear.png").write_bytes((root / "food" / "fruit" / "apple.png").read_bytes())
    return root


def test_the_table_reads_captions_folders_and_prefers_pngs(tmp_path):
    table = stamps.table(fake_stamps(tmp_path / "stamps")).set_index("item_id")
    assert list(table.index) == ["food/fruit/apple", "food/fruit/cartoon/pear"]
    assert table.loc["food/fruit/apple", "title"] == "An apple"
    assert table.loc["food/fruit/apple", "title_es"] == "Una manzana."
    assert table.loc["food/fruit/apple", "title_fr"] == ""
    assert set(table["category"]) == {"food/fruit"}
    assert table.loc["food/fruit/cartoon/pear", "image"].endswith(".png")
    assert table.loc["food/fruit/cartoon/pear", "title"] == "pear"  # no caption file: its name


def test_missing_stamps_say_how_to_install_them(tmp_path):
    with pytest.raises(CatalogError, match="apt-get install tuxpaint-stamps-default"):
        stamps.table(tmp_path / "absent")


def test_svgs_render_and_hostile_ones_are_refused_plainly(tmp_path):
    good, bad = tmp_path / "a.svg", tmp_path / "b.svg"
    good.write_text(SQUARE)
    bad.write_text(ENTITY)
    picture = load_image(good)
    assert picture.mode == "RGB" and picture.size == (512, 256) and picture.getpixel((5, 5)) == (255, 0, 0)
    with pytest.raises(ImageError, match="an SVG that does not render"):
        load_image(bad)
    (tmp_path / "c.txt").write_text("not a picture")
    assert sorted(catalog_mod.folder_table(tmp_path)["item_id"]) == ["a", "b"]


def test_an_svg_that_needs_another_file_is_refused_not_drawn_blank(tmp_path):
    import base64
    import io

    dot = io.BytesIO()
    Image.new("RGB", (4, 4), (0, 0, 255)).save(dot, "PNG")
    inline = "data:image/png;base64," + base64.b64encode(dot.getvalue()).decode()
    frame = '<svg xmlns="http://www.w3.org/2000/svg" width="8" height="8"><image href="{}" width="8" height="8"/></svg>'
    (tmp_path / "svgs").mkdir()
    outside, embedded = tmp_path / "svgs" / "outside.svg", tmp_path / "svgs" / "embedded.svg"
    outside.write_text(frame.format("file:///etc/hostname"))
    embedded.write_text(frame.format(inline))
    with pytest.raises(ImageError, match=r"needs another file \(file:///etc/hostname\).*data: URL"):
        load_image(outside)
    assert load_image(embedded, svg_side=8).getpixel((4, 4)) == (0, 0, 255)
    cat = catalog_mod.load_catalog(str(tmp_path / "svgs"), tmp_path / "data")
    assert list(cat.items["item_id"]) == ["embedded"]
    assert [(s.item_id, "needs another file" in s.reason) for s in cat.skipped] == [("outside", True)]


def test_an_svg_is_drawn_at_the_side_asked_on_its_longer_side(tmp_path):
    wide, tall = tmp_path / "wide.svg", tmp_path / "tall.svg"
    wide.write_text(SQUARE)
    tall.write_text(
        '<svg xmlns="http://www.w3.org/2000/svg" width="20" height="40">'
        '<circle cx="10" cy="20" r="5" fill="red"/></svg>'
    )
    assert load_image(wide, svg_side=260).size == (260, 130)
    drawn = load_image(tall, svg_side=260)  # drawn 260 wide, then scaled to 260 high
    assert drawn.size == (130, 260) and drawn.getpixel((0, 0)) == (255, 255, 255)
    ribbon = tmp_path / "ribbon.svg"  # 260 wide it would be 52,000 high: past cairo's 32,767
    ribbon.write_text(SQUARE.replace('width="40" height="20"', 'width="1" height="200"'))
    assert load_image(ribbon, svg_side=260).size == (1, 260)


def test_the_real_stamps_as_a_catalog(tmp_path):
    need_stamps()
    table = stamps.table()
    assert len(table) > 900 and table["item_id"].is_unique
    assert {"animals/birds", "food/fruit", "clothes/hats", "vehicles/locomotive"} <= set(table["category"])
    assert (table["title_es"] != "").mean() > 0.9
    manifest = stamps.write_catalog(tmp_path)
    assert manifest.read_text().startswith("item_id,image,title,category,title_es")
    assert not list(tmp_path.rglob("*.png"))  # read in place, never copied


def test_the_stamps_labelled_by_folder_for_zero_shot_classification(tmp_path):
    root = fake_stamps(tmp_path / "stamps")
    (root / "animals" / "birds").mkdir(parents=True)
    Image.new("RGBA", (80, 40), (0, 0, 200, 128)).save(root / "animals" / "birds" / "jay.png")
    photos = stamps.labelled(root, side=32)
    assert photos.images.shape == (3, 32, 32, 3) and photos.categories == ("birds", "fruit")
    assert list(photos.labels) == [0, 1, 1]  # the jay, the apple, the pear
    assert tuple(photos.images[0][0, 0]) == (255, 255, 255)  # the wide jay letterboxed on white
    assert stamps._distinct(("coins", "coins"), ["money/euro/coins", "money/us/coins"]) == (
        "money euro coins",
        "money us coins",
    )
