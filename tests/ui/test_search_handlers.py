"""The Search tab's events called as plain functions, without a browser: what the gallery, the JSON and the status
line show for words, a picture, similar items, a click, a shared link, and bad input."""

from types import SimpleNamespace

import gradio as gr
import pytest
from PIL import Image

from mmsearch import settings
from mmsearch.feedback.loop import Feedback
from mmsearch.search.results import Answer, Hit
from mmsearch.serve.guard import Guard, TokenBuckets
from mmsearch.ui.events import Events
from mmsearch.ui.search_handlers import SearchHandlers, status_line


@pytest.fixture(scope="module")
def handlers(small_index, small_searcher, tmp_path_factory):
    config = settings.replace(small_index, data_dir=tmp_path_factory.mktemp("ui-data"))
    feedback = Feedback(config, [small_searcher])
    yield SearchHandlers(small_searcher, Events(Guard(TokenBuckets(0)), feedback))
    feedback.close()


def test_the_status_line_says_how_many_and_when_nothing_matches_well():
    hit = Hit.made(item_id="demo-00001", title="Blue twill cap", image="/nowhere.jpg", category="cap", score=0.41)
    weak = status_line(Answer([hit], "vector", "text", "weak"), '"warm winter coat"', 0, False)
    assert weak.startswith('No item matches "warm winter coat" well; these are the closest')
    assert status_line(Answer([hit], "hybrid", "text"), '"blue cap"', 0, True).startswith('1 results for "blue cap"')
    assert status_line(Answer([], "vector", "text"), '"blue cap"', 0, False) == 'No results for "blue cap".'
    hidden = status_line(Answer([hit, hit], "vector", "text"), '"cap"', 1, False)
    assert hidden.startswith('1 results for "cap"') and "1 more below the minimum score hidden" in hidden


def test_words_show_k_cards_with_their_answer_and_position(handlers):
    gallery, rows, status, _ = handlers.search_text("red striped t-shirt", 5, 0.0, "", "hybrid")
    assert len(gallery) == len(rows) == 5 and status.startswith('5 results for "red striped t-shirt"')
    assert [r["position"] for r in rows] == [1, 2, 3, 4, 5] and len({r["query_id"] for r in rows}) == 1
    assert "hybrid · scores: rank fusion" in status and all("image" not in r for r in rows)
    _, rows, status, _ = handlers.search_text("mug", 20, 0.0, "category=mug", "keyword")
    assert rows and {r["category"] for r in rows} == {"mug"} and "where category=mug" in status


def test_a_minimum_score_hides_the_low_ones_and_says_so(handlers):
    _, everything, _, _ = handlers.search_text("blue mug", 10, 0.0, "", "hybrid")
    cut = everything[4]["score"]
    _, kept, status, _ = handlers.search_text("blue mug", 10, cut, "", "hybrid")
    assert [r["item_id"] for r in kept] == [r["item_id"] for r in everything if r["score"] >= cut]
    assert f"{10 - len(kept)} more below the minimum score hidden" in status


def test_similar_items_and_a_click_on_a_result(handlers):
    _, rows, status, _ = handlers.similar("demo-00007", 4)
    assert rows[0]["item_id"] == "demo-00007" and len(rows) == 4 and "items like demo-00007" in status
    like_id, _, again, _, _, pictures = handlers.on_select(rows, 3, 0.0, "", "", "", SimpleNamespace(index=1), None)
    assert like_id == rows[1]["item_id"] and again[0]["item_id"] == rows[1]["item_id"] and len(again) == 3
    assert pictures.visible is False  # one picture: the card shows it


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda h: h.search_text("", 5), "Type something"),
        (lambda h: h.search_text("\x00\x00", 5), "Type something"),  # only control characters: nothing typed
        (lambda h: h.search_text("mug", 0), "k must be between 1 and 100"),
        (lambda h: h.search_text("mug", 5, 0.0, "", "fuzzy"), "Unknown search mode 'fuzzy'"),
        (lambda h: h.search_text("mug", 5, 0.0, "colour blue"), "cannot read the filter"),
        (lambda h: h.search_text("mug", 5, "lots"), "minimum score must be a number"),
        (lambda h: h.search_image(None, 5), "Upload an image"),
        (lambda h: h.similar("no-such-item", 5), "No item 'no-such-item'"),
    ],
)
def test_bad_input_is_refused_in_the_error_box_with_its_reason(handlers, call, message):
    with pytest.raises(gr.Error, match=message):
        call(handlers)


def test_control_characters_are_dropped_before_search_and_storage(handlers):
    _, rows, status, _ = handlers.search_text("red\x00 mug\x07", 3)
    assert len(rows) == 3 and status.startswith('3 results for "red mug"')
    handlers.events.feedback.log.flush()
    stored = handlers.events.feedback.usage(1)[0]["query"].dropna().tolist()
    assert "red mug" in stored and not any("\x00" in q or "\x07" in q for q in stored)


def test_a_picture_alone_and_with_words(handlers, demo_manifest, tmp_path, monkeypatch):
    photo = demo_manifest.parent / "images" / "demo-00010.jpg"
    with pytest.raises(gr.Error, match="not uploaded"):
        handlers.search_image(str(photo), 3)  # a server path is no upload
    Image.open(photo).save(tmp_path / "x.png")
    monkeypatch.setattr(handlers.events, "upload", lambda image: image)  # as if Gradio had received it
    _, rows, status, _ = handlers.search_image(str(tmp_path / "x.png"), 3)
    assert rows[0]["item_id"] == "demo-00010" and len(rows) == 3 and "the uploaded image" in status
    _, rows, status, _ = handlers.search_text("blue mug", 4, image=str(tmp_path / "x.png"), image_weight=0.5)
    assert len(rows) == 4 and '"blue mug" + the uploaded image' in status


def test_more_results_facets_and_order_work_on_what_is_shown(handlers):
    from urllib.parse import parse_qs

    gallery, rows, status, view = handlers.search_text("mug", 6, 0.0, "", "keyword", facets="category,price")
    assert len(gallery) == 6 and "in all" in status and view.page.next_offset == 6
    assert "category" in view.clauses and all(c.startswith("category=") for c in view.clauses["category"].values())
    radios = handlers.shown(view, 5)
    assert radios[0].visible and radios[-2].visible  # the category facet, and More results
    gallery2, rows2, status2, view2 = handlers.more(view)
    assert len(gallery2) == 12 and rows2[:6] == rows and status2.startswith('12 results for "mug"')
    every = [r["item_id"] for r in handlers.search_text("mug", 12, 0.0, "", "keyword")[1]]
    assert [r["item_id"] for r in rows2] == every  # the second page follows the first
    assert parse_qs(handlers.shown(view2, 5)[-1]) == {"q": ["mug"], "k": ["6"], "mode": ["keyword"]}

    choice = next(iter(view.clauses["category"]))
    *shown, narrowed = handlers.refiner(0)(view, choice, "")
    assert narrowed == view.clauses["category"][choice]
    assert {r["category"].lower() for r in shown[1]} == {narrowed.split("=", 1)[1].lower()}
    _, cheapest, _, _ = handlers.resorted(view, "price")
    prices = [r["price"] for r in cheapest]
    assert prices == sorted(prices)
    with pytest.raises(gr.Error, match="no more results"):
        handlers.more(None)
