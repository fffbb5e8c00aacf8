"""The zero-shot model end to end, as a user meets it: a catalog of real photographs under meaningless names, built
with no --model (any catalog but the demo gets the zero-shot model), served, and searched through REST by words, by
an uploaded photo and by more-like-this."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path

import pytest

from mmsearch.ingest.datasets import photos

pytestmark = [pytest.mark.slow, pytest.mark.e2e]
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    pytest.importorskip("skimage.data")
    from conftest import RunningApp

    data = tmp_path_factory.mktemp("zero-shot-data")
    env = {**os.environ, "MMSEARCH_DATA_DIR": str(data), "GRADIO_ANALYTICS_ENABLED": "False"}
    run = subprocess.run(
        [sys.executable, "index_build.py", "--catalog", "photos"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    app = RunningApp(data, {"MMSEARCH_CATALOG": "photos"})
    yield run.stdout, app
    app.stop()


@pytest.fixture(scope="module")
def http(served):
    import httpx

    with httpx.Client(base_url=served[1].url, timeout=60) as client:
        yield client


def test_a_catalog_of_photos_gets_the_zero_shot_model(served, http):
    assert "model zero-shot:efficientnet-lite2@260+sentence-transformers/all-MiniLM-L6-v2" in served[0]
    assert http.get("/api/info").json()["model"].startswith("zero-shot:efficientnet-lite2@260")


@pytest.mark.parametrize(
    "words,name", [("a cup of coffee", "coffee"), ("a cat", "cat"), ("a motorcycle", "stereo_motorcycle")]
)
def test_words_find_the_photo(http, words, name):
    answer = http.get("/api/search", params={"q": words, "mode": "vector", "k": 3}).json()
    assert answer["results"][0]["item_id"] == photos.meaningless(name)
    # no title knows the words and 24 photos cannot stand one far above the rest: the similarity says good
    assert answer["match"] == "good"


@pytest.mark.parametrize("words", ["a garden hose", "a laptop charger"])
def test_words_for_what_the_photos_lack_are_answered_weak(http, words):
    assert http.get("/api/search", params={"q": words, "k": 3}).json()["match"] == "weak"


def test_an_uploaded_photo_and_more_like_this_ask_with_the_towers_features(http):
    import numpy as np
    import skimage.data
    from PIL import Image

    # the cat, cropped and shrunk: not the indexed file, the same cat
    cat = Image.fromarray(skimage.data.chelsea()[20:280, 40:400]).resize((240, 173))
    buffer = io.BytesIO()
    cat.save(buffer, format="JPEG", quality=80)
    answer = http.post("/api/search/image", files={"image": ("cat.jpg", buffer.getvalue(), "image/jpeg")}).json()
    assert answer["results"][0]["item_id"] == photos.meaningless("cat")
    assert answer["match"] == "good"
    similar = http.get(f"/api/items/{photos.meaningless('coffee')}/similar", params={"k": 23}).json()["results"]
    assert similar[0]["item_id"] == photos.meaningless("coffee") and similar[0]["score"] > 0.99  # pooled alone
    assert np.all(np.diff([r["score"] for r in similar]) <= 1e-6)


def test_the_answer_says_which_language_the_text_tower_took_the_words_as(http):
    # MiniLM reads English only: a Spanish query is taken as English too, and the answer says so
    for words in ("a cup of coffee", "una taza de café"):
        assert http.get("/api/search", params={"q": words, "k": 1}).json()["query_language"] == "en"
    assert http.get(f"/api/items/{photos.meaningless('cat')}/similar").json()["query_language"] is None
