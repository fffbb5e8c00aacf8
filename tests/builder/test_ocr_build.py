"""--ocr: the words printed on products' pictures read into ``picture_text``, found by keyword search, shown in
results, and read once per picture (an update reads only its new and changed pictures)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pandas as pd
import pytest
from conftest import ask, tiny_settings

from mmsearch.builder.pipeline import build_index
from mmsearch.search.searcher import Searcher

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
from labels import make_labels, save_textless  # noqa: E402

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("ocr")]


def _shop(folder: Path, labels, photos) -> Path:
    rows = [
        {"item_id": f"l{n}", "image": str(label.path), "title": f"jar {n}", "category": "pantry", "price": 5 + n}
        for n, label in enumerate(labels)
    ] + [
        {"item_id": path.stem, "image": str(path), "title": f"print {path.stem}", "category": "art", "price": 30}
        for path in photos
    ]
    pd.DataFrame(rows).to_csv(folder / "shop.csv", index=False)
    return folder / "shop.csv"


def test_words_on_pictures_are_read_searched_shown_and_read_once(tmp_path, tiny_two_tower_dir):
    labels = make_labels(tmp_path / "labels", 6, seed=3)
    photos = save_textless(tmp_path / "photos")[:3]
    config = tiny_settings(tmp_path, _shop(tmp_path, labels, photos), tiny_two_tower_dir, ocr=True)
    said = []
    build_index(config, progress=lambda fraction, message: said.append(message))
    manifest = json.loads((tmp_path / "ix" / "manifest.json").read_text())
    assert manifest["ocr"]["pictures_read"] == 9 and "picture_text" in manifest["keyword_fields"]
    assert any("s a picture" in m for m in said)  # the cost per picture, in the build's progress
    items = pd.read_parquet(tmp_path / "ix" / "items.parquet").set_index("item_id")
    assert (items.loc[[p.stem for p in photos], "picture_text"] == "").all()  # nothing made up off photos
    for n, label in enumerate(labels):
        read = items.loc[f"l{n}", "picture_text"].upper().replace("/", " ").split()
        assert sum(w.upper() in read for w in label.words) >= len(label.words) - 1, (label.words, read)

    searcher = Searcher.open(config)
    name = " ".join(labels[2].words[:2]).lower()  # its title says "jar 2": only the picture's words say what it is
    hits = ask(searcher, name, 3, mode="keyword")
    assert hits[0].item_id == "l2" and name.split()[0] in hits[0].picture_text.lower()
    assert hits[0].public()["picture_text"] == hits[0].picture_text

    # An update: one picture replaced, one product added; only those two are read.
    (tmp_path / "labels" / "label-000.png").write_bytes((tmp_path / "labels" / "label-005.png").read_bytes())
    extra = make_labels(tmp_path / "more", 1, seed=9)
    shop = pd.read_csv(tmp_path / "shop.csv")
    shop.loc[len(shop)] = {"item_id": "new", "image": str(extra[0].path), "title": "jar new", "category": "pantry"}
    shop.to_csv(tmp_path / "shop.csv", index=False)
    build_index(config)
    manifest = json.loads((tmp_path / "ix" / "manifest.json").read_text())
    assert manifest["ocr"]["pictures_read"] == 1  # label-000 now holds label-005's bytes: read already
    assert manifest["ocr"]["pictures_known"] == 8  # 9 pictures before, two of them now the same bytes
    items = pd.read_parquet(tmp_path / "ix" / "items.parquet").set_index("item_id")
    assert items.loc["l0", "picture_text"] == items.loc["l5", "picture_text"] != ""
    assert extra[0].words[0].lower() in items.loc["new", "picture_text"].lower()


def test_every_picture_of_a_product_is_read(tmp_path, tiny_two_tower_dir):
    labels = make_labels(tmp_path / "labels", 2, seed=5)
    photos = save_textless(tmp_path / "photos")[:2]
    rows = [
        {"item_id": "combo", "images": json.dumps([str(photos[0]), str(labels[0].path), str(labels[1].path)])},
        {"item_id": "plain", "images": f"{photos[1]}"},
    ]
    pd.DataFrame(rows).assign(title="a thing").to_csv(tmp_path / "shop.csv", index=False)
    config = tiny_settings(tmp_path, tmp_path / "shop.csv", tiny_two_tower_dir, ocr=True)
    build_index(config)
    items = pd.read_parquet(tmp_path / "ix" / "items.parquet").set_index("item_id")
    combo = items.loc["combo", "picture_text"].upper()
    assert all(label.words[0].upper() in combo for label in labels) and combo.count(" / ") >= 1
    assert items.loc["plain", "picture_text"] == ""


def test_a_picture_the_engine_cannot_read_costs_its_words_only_and_is_tried_again(tmp_path):
    from mmsearch.builder.picture_text import ReadingCost, read_picture_text
    from mmsearch.store.picture_readings import PictureReadings

    labels = make_labels(tmp_path / "labels", 1, seed=4)
    (tmp_path / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 64)
    cost = ReadingCost()
    texts = read_picture_text(
        tmp_path / "data", [str(tmp_path / "broken.png"), str(labels[0].path)], ["h-bad", "h-good"], 0.8, print, cost
    )
    assert texts[0] == "" and labels[0].words[0] in texts[1] and cost.read == 1
    kept = PictureReadings(tmp_path / "data")
    assert set(kept.known(["h-bad", "h-good"])) == {"h-good"}  # the failure is not remembered as "no words"
    kept.close()
