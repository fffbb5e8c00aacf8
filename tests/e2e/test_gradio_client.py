"""Starts the real app on a free loopback port and drives it through gradio_client, as a script would."""

import math
from pathlib import Path

import httpx
import pytest

pytestmark = [pytest.mark.slow, pytest.mark.e2e]


ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def app_url(tmp_path_factory, demo_manifest, tiny_two_tower_dir, other_two_tower_dir):
    from conftest import RunningApp

    app = RunningApp(
        tmp_path_factory.mktemp("appdata"),
        {
            "MMSEARCH_CATALOG": str(demo_manifest),
            "MMSEARCH_MODEL": f"two-tower:{tiny_two_tower_dir}",
            "MMSEARCH_COMPARE_MODEL": f"two-tower:{other_two_tower_dir}",
            "MMSEARCH_DUPLICATE_THRESHOLD": "0",
        },
    )
    yield app.url
    app.stop()


@pytest.fixture(scope="module")
def client(app_url):
    from gradio_client import Client

    return Client(app_url, verbose=False)


def test_api_lists_both_searches(client):
    endpoints = client.view_api(print_info=False, return_format="dict")["named_endpoints"]
    assert {"/search_text", "/search_image", "/similar", "/compare", "/evaluate"} <= set(endpoints)
    assert "/more_like_this" not in endpoints  # its old name: still answered (below), no longer taught


def test_text_search_through_the_api(client):
    gallery, results, status = client.predict("red striped t-shirt", 5, api_name="/search_text")
    assert len(results) == 5 and len(gallery) == 5 and "5 results" in status
    assert results[0]["title"] and results[0]["score"] >= results[-1]["score"]
    assert Path(gallery[0]["image"]).exists()  # the client downloaded the served image
    assert gallery[0]["caption"].startswith(f"{results[0]['score']:.3f} · {results[0]['title']}")


def test_image_search_finds_the_item_itself_first(client, demo_manifest):
    from gradio_client import handle_file

    photo = demo_manifest.parent / "images" / "demo-00010.jpg"
    _, results, _ = client.predict(handle_file(str(photo)), 3, api_name="/search_image")
    assert results[0]["item_id"] == "demo-00010"


def test_bad_queries_come_back_as_errors(client, tmp_path):
    from gradio_client import handle_file

    with pytest.raises(Exception, match="Type something"):
        client.predict("   ", 5, api_name="/search_text")
    (tmp_path / "notes.png").write_text("not an image at all")
    with pytest.raises(Exception, match="cannot be used as an image"):
        client.predict(handle_file(str(tmp_path / "notes.png")), 5, api_name="/search_image")


def test_page_and_images_are_served(app_url, client):
    page = httpx.get(app_url, timeout=10)
    assert page.status_code == 200 and "mmsearch" in page.text


def test_compare_runs_one_query_against_both_models(client, demo_manifest):
    from gradio_client import handle_file

    left, right, both = client.predict("blue dotted mug", None, 4, api_name="/compare")
    assert len(left) == len(right) == 4 and len(both) == 2
    ids = list(both)
    assert ids[0].startswith("two-tower:tiny-tt@") and ids[1].startswith("two-tower:tiny-tt-b@")
    photo = demo_manifest.parent / "images" / "demo-00005.jpg"
    _, _, both = client.predict("", handle_file(str(photo)), 3, api_name="/compare")
    assert all(results[0]["item_id"] == "demo-00005" for results in both.values())  # each index finds the item
    with pytest.raises(Exception, match="Type a query or upload an image"):
        client.predict("", None, 3, api_name="/compare")


def test_similar_items_and_minimum_score_through_the_api(client):
    _, results, status = client.predict("demo-00007", 4, api_name="/similar")
    assert results[0]["item_id"] == "demo-00007" and "items like demo-00007" in status
    _, again, _ = client.predict("demo-00007", 4, api_name="/more_like_this")  # the old name, with defaults filled in
    assert [r["item_id"] for r in again] == [r["item_id"] for r in results]
    _, everything, _ = client.predict("red mug", 10, 0.0, api_name="/search_text")
    cut = math.floor(everything[2]["score"] * 100) / 100  # on the slider's 0.01 grid, so it is taken as is
    _, kept, status = client.predict("red mug", 10, cut, api_name="/search_text")
    assert [r["item_id"] for r in kept] == [r["item_id"] for r in everything if r["score"] >= cut]
    assert f"{10 - len(kept)} more below the minimum score hidden" in status
    with pytest.raises(Exception, match="No item 'nope'"):
        client.predict("nope", 4, api_name="/similar")


def test_filters_and_negative_terms_through_the_api(client):
    _, results, status = client.predict("striped thing", 4, 0.0, "category=mug", api_name="/search_text")
    assert len(results) == 4 and all(r["category"] == "mug" for r in results) and "where category=mug" in status
    assert "hidden" not in status
    _, results, _ = client.predict("mug -red", 6, 0.0, "", api_name="/search_text")
    assert len(results) == 6
    with pytest.raises(Exception, match="cannot read the filter"):
        client.predict("mug", 4, 0.0, "colour blue", api_name="/search_text")


def test_search_modes_and_text_with_an_image_through_the_api(client, demo_manifest):
    from gradio_client import handle_file

    for mode, note in (("vector", "cosine similarity"), ("keyword", "BM25"), ("hybrid", "rank fusion")):
        _, results, status = client.predict("red striped mug", 5, 0.0, "", mode, 0.6, api_name="/search_text")
        assert results and f"· {mode} · scores: {note}" in status
    _, keyword, _ = client.predict("striped mug", 5, 0.0, "", "keyword", api_name="/search_text")
    assert all(r["keyword_score"] for r in keyword)
    image = handle_file(str(demo_manifest.parent / "images" / "demo-00003.jpg"))
    _, alone, _ = client.predict(image, 5, api_name="/search_image")
    _, both, status = client.predict("", 5, 0.0, "", "hybrid", 0.6, image, 1.0, api_name="/search_text")
    assert [r["item_id"] for r in both] == [r["item_id"] for r in alone] and "the uploaded image" in status
    _, mixed, status = client.predict("blue mug", 5, 0.0, "", "hybrid", 0.6, image, 0.5, api_name="/search_text")
    assert len(mixed) == 5 and '"blue mug" + the uploaded image (image weight 0.50)' in status
    with pytest.raises(Exception, match="Unknown search mode"):
        client.predict("mug", 5, 0.0, "", "fuzzy", api_name="/search_text")


def test_evaluation_needs_judgements_for_the_catalog_it_searches(client):
    # This app serves a 96-item catalog; the shipped judgements are for the 2,048-item demo catalog.
    with pytest.raises(Exception, match="labelled queries are for the demo catalog"):
        client.predict(api_name="/evaluate")
