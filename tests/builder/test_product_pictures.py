"""Several pictures per product: each picture indexed, the product found by any of them (once, at its closest
picture's score, with that picture as ``matched_image_url``), and an update that adds or removes one picture encodes
that picture alone."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from conftest import ask
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
    config = settings.Settings(
        data_dir=tmp_path / "data",
        catalog=str(catalog),
        model=f"two-tower:{tiny_two_tower_dir}",
        index=tmp_path / "ix",
        workers=0,
        duplicate_threshold=0,
        reload_interval=0,
    )
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
