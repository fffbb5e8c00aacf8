"""A shop's catalog through the README's commands: ``python index_build.py --catalog shop.csv --index DIR --ocr``
(products with a photo and a label each), then ``python app.py --index DIR``, asked over HTTP as a script would."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "benchmarks"))
from labels import make_labels, save_textless  # noqa: E402

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def shop(tmp_path_factory, ocr):
    from conftest import RunningApp

    folder = tmp_path_factory.mktemp("shop")
    labels = make_labels(folder / "labels", 8, seed=21)
    photos = save_textless(folder / "photos")
    rows = [
        {
            "item_id": f"jar-{n}",
            "images": f"photos/{photos[n].name}|labels/{label.path.name}",  # a photo first, its label second
            "title": f"Jar {n}",
            "category": "pantry" if n % 2 else "drinks",
            "price": 2 + n,
        }
        for n, label in enumerate(labels)
    ]
    pd.DataFrame(rows).to_csv(folder / "shop.csv", index=False)
    data = folder / "data"
    run = subprocess.run(
        [
            sys.executable,
            "index_build.py",
            "--catalog",
            str(folder / "shop.csv"),
            "--index",
            str(folder / "ix"),
            "--ocr",
        ],
        cwd=ROOT,
        env={**__import__("os").environ, "MMSEARCH_DATA_DIR": str(data)},
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    app = RunningApp(data, {"MMSEARCH_INDEX": str(folder / "ix")})
    yield run.stdout, app, folder, labels
    app.stop()


@pytest.fixture(scope="module")
def http(shop):
    """A script's client of the started app."""
    import httpx

    client = httpx.Client(base_url=shop[1].url, timeout=60)
    yield client
    client.close()


def test_the_build_says_what_reading_cost(shop):
    out, _, folder, _ = shop
    assert "s a picture" in out and "encoded 16" in out
    manifest = json.loads((folder / "ix" / "manifest.json").read_text())
    assert manifest["ocr"]["pictures_read"] == 16 and manifest["pictures"] == 16


def test_words_on_a_label_find_the_product_with_that_picture_matched(http, shop):
    _, _, folder, labels = shop
    for n in (0, 3, 6):
        words = " ".join(labels[n].words[:2]).lower()
        answer = http.get("/api/search", params={"q": words, "k": 3, "mode": "keyword"}).json()
        top = answer["results"][0]
        assert top["item_id"] == f"jar-{n}" and labels[n].words[0] in top["picture_text"], (words, top)
        assert len(top["image_urls"]) == 2
        label = http.get(top["image_urls"][1])
        assert label.status_code == 200 and label.content == labels[n].path.read_bytes()


def test_a_photo_of_one_picture_finds_its_product_once_with_that_picture(http, shop):
    _, _, folder, labels = shop
    with open(labels[5].path, "rb") as fh:
        answer = http.post("/api/search/image", files={"image": fh}, data={"k": 8}).json()
    ids = [r["item_id"] for r in answer["results"]]
    assert ids[0] == "jar-5" and len(ids) == len(set(ids))
    assert answer["results"][0]["matched_image_url"] == "/api/items/jar-5/image?picture=1"


def test_facets_count_products_and_never_show_paths(http):
    answer = http.get("/api/search", params={"q": "jar", "k": 8, "mode": "keyword", "facets": "category"}).json()
    assert sum(answer["facets"]["category"].values()) == answer["total"] == 8
    refused = http.get("/api/search", params={"q": "jar", "facets": "images"})
    assert refused.status_code == 400 and "images" in refused.json()["error"]
