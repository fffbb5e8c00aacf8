import csv

import numpy as np

from mmsearch.ingest import demo


def test_catalog_covers_every_combination_with_distinct_attributes():
    items = demo.make_items(len(demo.combos()) * 2, seed=0)
    assert len(demo.KINDS) >= 8 and len(demo.COLOURS) >= 8 and len(demo.PATTERNS) >= 4
    seen = {(it.kind, it.colour, it.pattern) for it in items}
    assert seen == set(demo.combos())
    it = items[0]
    assert it.colour in it.title.lower() and it.kind in it.title.lower() and it.price > 0


def test_renders_are_deterministic_and_seeds_differ():
    a = demo.make_items(4, seed=demo.CATALOG_SEED)
    b = demo.make_items(4, seed=demo.HELDOUT_SEED)
    first = np.asarray(demo.render(a[0]))
    assert np.array_equal(first, np.asarray(demo.render(demo.make_items(4, seed=demo.CATALOG_SEED)[0])))
    assert first.shape == (demo.RENDER_SIZE, demo.RENDER_SIZE, 3)
    assert {x.variant for x in a}.isdisjoint({x.variant for x in b})


def test_render_uses_the_item_colour():
    item = demo.DemoItem("x", "bag", "red", "solid", "t", "d", 1.0, 7)
    pixels = np.asarray(demo.render(item)).reshape(-1, 3).astype(int)
    red = np.array(demo.COLOURS["red"])
    assert (np.abs(pixels - red).sum(1) < 30).mean() > 0.1  # a large share of the picture is the bag's red


def test_write_catalog_writes_manifest_and_images(tmp_path):
    manifest = demo.write_catalog(tmp_path, n=20)
    rows = list(csv.DictReader(manifest.open()))
    assert len(rows) == 20
    assert {"item_id", "image", "title", "description", "category", "colour", "pattern", "price"} <= set(rows[0])
    assert all((tmp_path / r["image"]).exists() for r in rows)
