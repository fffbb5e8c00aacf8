"""Fashion-MNIST end to end through the public surface, as the README runs it: the preset builds, serves and evaluates
its catalog of real product photos, and real photos unlike the catalog (scikit-image's and scikit-learn's: large,
colour, of people, animals, places) go through REST, the agent tools and the browser.

The catalog is a small slice of the real test photos (tests/conftest.py: small_fashion_mnist), so the app starts in
seconds; the model is the one shipped in assets/."""

from __future__ import annotations

import base64
import io
import json
import subprocess
import sys
from pathlib import Path

import pytest

from mmsearch.resources import NAMED_MODELS

pytestmark = [pytest.mark.slow, pytest.mark.e2e]
ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "benchmarks"))  # first_screen: the browser helpers the benchmark and tests share

if not (NAMED_MODELS["fashion-mnist"] / "twotower.json").exists():
    pytest.skip(
        "the Fashion-MNIST model is not in assets/ (python -m mmsearch.train --preset fashion-mnist)",
        allow_module_level=True,
    )


def real_photos(directory: Path) -> dict[str, Path]:
    """scikit-image's astronaut, coffee and chelsea and scikit-learn's china and flower, as JPEG files."""
    skimage_data = pytest.importorskip("skimage.data", reason="scikit-image is in requirements.txt")
    datasets = pytest.importorskip("sklearn.datasets", reason="scikit-learn is in requirements.txt")
    from PIL import Image

    arrays = {name: getattr(skimage_data, name)() for name in ("astronaut", "coffee", "chelsea", "rocket")}
    sample = datasets.load_sample_images()
    arrays |= {Path(f).stem: image for f, image in zip(sample.filenames, sample.images)}
    out = {}
    for name, array in arrays.items():
        out[name] = directory / f"{name}.jpg"
        Image.fromarray(array).save(out[name], quality=90)
    return out


@pytest.fixture(scope="module")
def built(tmp_path_factory, small_fashion_mnist):
    """``python index_build.py --preset fashion-mnist``, then ``python app.py --preset fashion-mnist --mcp``."""
    from conftest import RunningApp

    data = tmp_path_factory.mktemp("fmnist-data")
    env = {"MMSEARCH_FASHION_MNIST_DIR": str(small_fashion_mnist), "MMSEARCH_DATA_DIR": str(data)}
    run = subprocess.run(
        [sys.executable, "index_build.py", "--preset", "fashion-mnist"],
        cwd=ROOT,
        env={**__import__("os").environ, **env},
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    app = RunningApp(data, env | {"MMSEARCH_PRESET": "fashion-mnist", "MMSEARCH_MCP": "1"})
    yield run.stdout, app, tmp_path_factory.mktemp("photos")
    app.stop()


@pytest.fixture(scope="module")
def http(built):
    import httpx

    with httpx.Client(base_url=built[1].url, timeout=60) as client:
        yield client


def test_the_build_reports_its_items_duplicates_and_zero_shot_accuracy(built):
    out = built[0]
    assert "80 items" in out and "pairs of byte-identical pictures" in out
    index = next((Path(built[1].log_path).parent / "indexes").iterdir())
    report = json.loads((index / "zero-shot.json").read_text())
    assert report["photos"] == 80 and 0 <= report["accuracy"] <= 1 and (index / "zero-shot.png").exists()
    assert {"categories", "shopper"} <= {p.stem.removeprefix("quality-") for p in index.glob("quality-*.json")}


def test_words_the_catalog_never_uses_find_the_right_category(http):
    from conftest import need_real_fashion_mnist

    need_real_fashion_mnist()  # the shipped model knows the real photos, not the stand-ins drawn without them
    for query, category in (("jumper", "Pullover"), ("flip flops", "Sandal"), ("trousers", "Trouser")):
        answer = http.get("/api/search", params={"q": query, "k": 5}).json()
        assert answer["match"] == "good"
        assert [r["category"] for r in answer["results"]].count(category) >= 4, (query, answer["results"])


def test_real_photos_unlike_the_catalog_are_answered_through_rest(http, built):
    photos = real_photos(built[2])
    for name, path in photos.items():
        r = http.post("/api/search/image", files={"image": (path.name, path.read_bytes(), "image/jpeg")}, data={"k": 4})
        assert r.status_code == 200, (name, r.text)
        answer = r.json()
        assert len(answer["results"]) == 4 and answer["match"] in ("good", "weak")
        assert all(hit["item_id"].startswith("fmnist-test-") for hit in answer["results"])


def test_real_photos_through_the_agent_tools(built):
    from PIL import Image
    from test_agents import payload, session_run

    photo = real_photos(built[2])["coffee"]
    buffer = io.BytesIO()
    Image.open(photo).save(buffer, format="JPEG")
    data_uri = "data:image/jpeg;base64," + base64.b64encode(buffer.getvalue()).decode()

    async def work(session):
        return payload(await session.call_tool("search_by_image", {"image": data_uri, "k": 3}))

    answer = session_run(built[1].url, work)
    assert len(answer["results"]) == 3 and answer["match"] in ("good", "weak")


@pytest.fixture(scope="module")
def browser():
    pytest.importorskip("playwright", reason="playwright is in requirements.txt; install it to drive the browser")
    from conftest import need_program
    from first_screen import launch_browser
    from playwright.sync_api import sync_playwright

    need_program("chromium", "chromium-browser", "google-chrome")
    with sync_playwright() as p:
        b = launch_browser(p)
        yield b
        b.close()


@pytest.mark.browser
@pytest.mark.parametrize("viewport", [(1366, 768), (412, 900)], ids=["laptop", "phone"])
def test_a_real_photo_uploaded_in_the_browser_and_the_evaluation_tab(browser, built, viewport):
    from first_screen import open_app
    from test_browser import choose_file, status

    page = browser.new_page(viewport={"width": viewport[0], "height": viewport[1]})
    try:
        open_app(page, built[1].url)
        choose_file(page, real_photos(built[2])["astronaut"])
        page.wait_for_function(
            "() => document.querySelector('#mm-status')?.innerText.includes('uploaded image')", timeout=60_000
        )
        assert "uploaded image" in status(page)
        page.get_by_role("tab", name="Evaluation").click()
        page.get_by_text("Zero-shot classification of the 80").wait_for(timeout=30_000)
        assert page.get_by_text("Fashion-MNIST paper (SVC, C=10, RBF): 89.7%").first.is_visible()
        assert page.get_by_text("Shopper queries (written by hand)").first.is_visible()
        # The build measured the weak flag too: its precision and recall, for the tab from the first start.
        weak = page.locator("#mm-eval-match")
        weak.wait_for(timeout=30_000)
        assert "queries for things this catalog lacks" in weak.inner_text() and "precision" in weak.inner_text()
    finally:
        page.close()


def test_the_duplicates_report_counts_and_draws_pairs(built, tmp_path):
    import os

    data = Path(built[1].log_path).parent
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "mmsearch.evaluate",
            "--preset",
            "fashion-mnist",
            "--duplicates",
            "--out-dir",
            str(tmp_path),
        ],
        cwd=ROOT,
        env={**os.environ, "MMSEARCH_DATA_DIR": str(data)},  # the index is there: no catalog is read
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stderr[-2000:]
    assert "80 items:" in run.stdout and "near copies by their pixels" in run.stdout
    assert (tmp_path / "duplicates.png").read_bytes()[
        :8
    ] == b"\x89PNG\r\n\x1a\n"  # none in this slice: an empty picture
