"""Several pictures per product: each picture indexed, the product found by any of them (once, at its closest
picture's score, with that picture as ``matched_image_url``), and an update that adds or removes one picture encodes
that picture alone."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from conftest import ask, tiny_settings
from PIL import Image

from mmsearch import settings
from mmsearch.builder.pipeline import build_index
from mmsearch.search.searcher import Searcher

pytestmark = pytest.mark.slow


def _picture(path, seed):
    Image.fromarray(np.random.default_rng(seed).integers(0, 255, (40, 40, 3), dtype=np.uint8)).save(path)
    return path.name


def _shop(folder, extra: dict[int, list[int]]):
    rows = []
    for i in range(12):
        names = [_picture(folder / f"p{i}.png", i)] + [_picture(folder / f"p{i}-{s}.png", s) for s in extra.get(i, [])]
        cell = json.dumps(names) if i % 2 else "|".join(names)  # both spellings of a list
        rows.append({"item_id": str(i), "images": cell, "title": f"thing {i}", "category": "a" if i < 6 else "b"})
    pd.DataFrame(rows).to_csv(folder / "shop.csv", index=False)
    return folder / "shop.csv"


@pytest.fixture
def shop(tmp_path, tiny_two_tower_dir):
    catalog = _shop(tmp_path, {3: [100, 101], 8: [200]})
    config = tiny_settings(tmp_path, catalog, tiny_two_tower_dir)
    built = build_index(config)
    return config, built, tmp_path


def test_a_product_is_found_by_any_of_its_pictures_once_with_the_picture_that_matched(shop):
    config, built, folder = shop
    assert built.manifest["pictures"] == 15 and built.manifest["item_count"] == 12
    searcher = Searcher.open(config)
    alone = searcher.search(searcher.request(image=Image.open(folder / "p3-101.png").convert("RGB"), k=12))
    ids = [h.item_id for h in alone]
    assert ids[0] == "3" and ids.count("3") == 1 and len(ids) == len(set(ids)) == 12
    top = alone[0]
    assert top.matched_image_url.endswith("/api/items/3/image?picture=2")
    assert top.image_urls == ["/api/items/3/image", "/api/items/3/image?picture=1", "/api/items/3/image?picture=2"]
    assert top.similarity == pytest.approx(top.score, abs=1e-3) and top.score > 0.99
    assert "images" not in top.metadata  # the server's paths are never shown
    # Ranked no lower than that picture alone would be: the product's score is its closest picture's.
    assert all(h.score <= top.score for h in alone)
    # Filters keep every picture of the products they keep.
    filtered = ask(searcher, None, 3, image=Image.open(folder / "p8-200.png").convert("RGB"), filters="category=b")
    assert filtered[0].item_id == "8" and filtered[0].matched_image_url.endswith("?picture=1")


def test_adding_or_removing_one_picture_encodes_that_picture_alone(shop):
    config, _, folder = shop
    table = pd.read_csv(folder / "shop.csv")
    table.loc[8, "images"] = json.dumps(["p8.png", "p8-200.png", _picture(folder / "p8-201.png", 201)])
    table.loc[3, "images"] = json.dumps(["p3.png", "p3-100.png"])  # one picture removed
    table.to_csv(folder / "shop.csv", index=False)
    updated = build_index(config)
    assert updated.manifest["encoded"] == 1 and updated.manifest["pictures"] == 15
    searcher = Searcher.open(config)
    found = searcher.search(searcher.request(image=Image.open(folder / "p8-201.png").convert("RGB"), k=3))
    assert found[0].item_id == "8" and found[0].matched_image_url.endswith("?picture=2")
    gone = searcher.search(searcher.request(image=Image.open(folder / "p3-101.png").convert("RGB"), k=3))
    assert gone[0].score < 0.99  # the removed picture no longer answers for its product


def test_rest_answers_the_matched_picture_and_serves_each_picture(shop):
    from fastapi.testclient import TestClient

    from mmsearch.service import create_app

    config, _, folder = shop
    with TestClient(create_app(Searcher.open(config))) as http:
        with open(folder / "p3-100.png", "rb") as fh:
            answer = http.post("/api/search/image", files={"image": fh}, data={"k": 2}).json()
        top = answer["results"][0]
        assert top["item_id"] == "3" and top["matched_image_url"] == "/api/items/3/image?picture=1"
        served = http.get(top["matched_image_url"])
        assert served.status_code == 200 and served.content == (folder / "p3-100.png").read_bytes()
        assert http.get("/api/items/3/image").content == (folder / "p3.png").read_bytes()
        missing = http.get("/api/items/3/image", params={"picture": 3})
        assert missing.status_code == 404 and "has 3 pictures" in missing.json()["error"]
        assert len(http.get("/api/items/8").json()["image_urls"]) == 2


def test_similar_items_ask_with_every_picture_of_the_product(shop):
    config, _, folder = shop
    # Product 8's second picture is product 5's first: 5 is as similar to 8 as can be, through that picture.
    table = pd.read_csv(folder / "shop.csv")
    table.loc[8, "images"] = json.dumps(["p8.png", "p5.png"])
    table.to_csv(folder / "shop.csv", index=False)
    build_index(config)
    searcher = Searcher.open(config)
    similar = ask(searcher, item_id="8", k=3)
    assert {h.item_id for h in similar[:2]} == {"8", "5"} and min(h.score for h in similar[:2]) > 0.999


def test_a_folder_per_product(tmp_path, tiny_two_tower_dir):
    for product, seeds in {"mug-red": [1, 2], "hat": [3], "bag_blue": [4, 5, 6]}.items():
        (tmp_path / "shop" / product).mkdir(parents=True)
        for n, seed in enumerate(seeds):
            _picture(tmp_path / "shop" / product / f"{n}.png", seed)
    _picture(tmp_path / "shop" / "loose.png", 7)  # a picture at the top: a product of its own
    config = tiny_settings(tmp_path, tmp_path / "shop", tiny_two_tower_dir, product_folders=True)
    built = build_index(config)
    assert sorted(built.ids) == ["bag_blue", "hat", "loose", "mug-red"] and built.manifest["pictures"] == 7
    searcher = Searcher.open(config)
    found = searcher.search(searcher.request(image=Image.open(tmp_path / "shop" / "bag_blue" / "2.png"), k=2))
    assert found[0].item_id == "bag_blue" and found[0].title == "bag blue"
    assert found[0].matched_image_url.endswith("?picture=2") and len(found[0].image_urls) == 3


def test_the_ui_shows_a_clicked_products_pictures_and_its_matched_one_in_the_gallery(shop, monkeypatch):
    from mmsearch.feedback.loop import Feedback
    from mmsearch.serve.guard import Guard, TokenBuckets
    from mmsearch.ui.events import Events
    from mmsearch.ui.search_handlers import SearchHandlers

    config, _, folder = shop
    searcher = Searcher.open(config)
    feedback = Feedback(config, [searcher])
    try:
        handlers = SearchHandlers(searcher, Events(Guard(TokenBuckets(0)), feedback))
        monkeypatch.setattr(handlers.events, "upload", lambda image: image)  # as if Gradio had received it
        gallery, rows, _, _ = handlers.search_image(str(folder / "p3-101.png"), 4)
        assert rows[0]["item_id"] == "3"
        shown = Image.open(gallery[0][0]).convert("RGB").resize((40, 40), Image.Resampling.NEAREST)  # served scaled up
        assert np.array_equal(np.asarray(shown), np.asarray(Image.open(folder / "p3-101.png")))  # the one that matched
        pictures = handlers.pictures_of("3", "thing 3")
        assert pictures.visible and len(pictures.value) == 3
        assert handlers.pictures_of("4", "thing 4").visible is False
    finally:
        feedback.close()


def test_a_product_ranks_no_lower_than_any_one_of_its_pictures_alone_would(shop, tiny_two_tower_dir):
    config, _, folder = shop
    whole = Searcher.open(config)
    table = pd.read_csv(folder / "shop.csv")
    table.loc[3, "images"] = "p3-101.png"  # the same catalog with product 3 as its one picture alone
    table.to_csv(folder / "alone.csv", index=False)
    alone_config = settings.replace(config, catalog=str(folder / "alone.csv"), index=folder / "ix-alone")
    build_index(alone_config)
    alone = Searcher.open(alone_config)

    def rank(searcher, **asked) -> int:
        ids = [h.item_id for h in searcher.search(searcher.request(k=12, **asked))]
        return ids.index("3")

    pictures = [folder / f"p{i}.png" for i in range(12)] + [folder / f"p{i}-{s}.png" for i, s in ((8, 200), (3, 100))]
    for path in pictures:
        picture = Image.open(path).convert("RGB")
        assert rank(whole, image=picture) <= rank(alone, image=picture), path.name
    for words in ("thing", "a plain thing", "red", "thing 3", "blue striped"):
        assert rank(whole, q=words, mode="vector") <= rank(alone, q=words, mode="vector"), words


def test_near_duplicates_are_found_picture_by_picture(tmp_path, tiny_two_tower_dir):
    catalog = _shop(tmp_path, {3: [100], 8: [200]})
    (tmp_path / "p8-200.png").write_bytes((tmp_path / "p5.png").read_bytes())  # 8's second picture is 5's first
    (tmp_path / "p3-100.png").write_bytes((tmp_path / "p3.png").read_bytes())  # 3 twice: itself, no pair
    built = build_index(tiny_settings(tmp_path, catalog, tiny_two_tower_dir, duplicate_threshold=0.999))
    pairs = pd.read_csv(tmp_path / "ix" / "near_duplicates.csv", dtype=str)
    assert [tuple(p) for p in pairs[["item_id", "duplicate_of"]].to_numpy()] == [("5", "8")]
    assert built.manifest["near_duplicate_pairs"] == 1
