"""The Judge tab's events called as plain functions: a query's pool one result at a time, grades kept before the
next shows, going back, the queue, and refusals when judging is off or no rater is named."""

import gradio as gr
import pytest

from mmsearch import settings
from mmsearch.feedback.loop import Feedback
from mmsearch.serve.guard import Guard, TokenBuckets
from mmsearch.ui.events import Events
from mmsearch.ui.judge_handlers import JudgeHandlers, whole_grade


def _handlers(small_index, small_searcher, tmp_path, judging: str) -> JudgeHandlers:
    config = settings.replace(small_index, data_dir=tmp_path, judging=judging)
    return JudgeHandlers(Events(Guard(TokenBuckets(0)), Feedback(config, [small_searcher])))


def test_a_rater_grades_a_pool_one_result_at_a_time(small_index, small_searcher, tmp_path):
    judge = _handlers(small_index, small_searcher, tmp_path, "open")
    picture, caption, progress, state = judge.start("Blue  Mug", "ann")
    items = state["items"]
    assert state["query"] == "blue mug" and len(items) == len({i["item_id"] for i in items}) >= 10
    assert caption and progress.startswith(f"Result 1 of {len(items)} · 0 of {len(items)} rated")
    _, _, progress, state = judge.grade(3, state)
    assert state["at"] == 1 and "1 of" in progress and "ann has judged 1 query" in progress
    _, _, _, state = judge.back(state)
    assert state["at"] == 0
    _, _, _, state = judge.grade(2, state)  # a second grade of the same result replaces the first
    assert judge.feedback.judgments.of_query("blue mug", "ann") == {items[0]["item_id"]: 2}
    again = judge.start("blue mug", "ann")[3]  # coming back starts at the first ungraded result
    assert again["at"] == 1 and again["graded"] == {items[0]["item_id"]: 2}
    kept = judge.judge("blue mug", items[1]["item_id"], 1.0, "bob")  # the Gradio API's way
    assert kept == {"query": "blue mug", "item_id": items[1]["item_id"], "grade": 1, "rater": "bob"}


def test_refusals_say_why(small_index, small_searcher, tmp_path):
    judge = _handlers(small_index, small_searcher, tmp_path, "open")
    with pytest.raises(gr.Error, match="Say who is rating"):
        judge.start("blue mug", "")
    with pytest.raises(gr.Error, match="Pick a query"):
        judge.start("\x00 ", "ann")
    with pytest.raises(gr.Error, match="grade must be 0, 1, 2 or 3"):
        judge.judge("blue mug", "demo-00001", 2.5, "ann")
    with pytest.raises(gr.Error, match="No item 'nope'"):
        judge.judge("blue mug", "nope", 2, "ann")
    off = _handlers(small_index, small_searcher, tmp_path / "off", "")
    assert off.queue_rows("ann") == []
    with pytest.raises(gr.Error, match="Judging and analytics are off"):
        off.start("blue mug", "ann")
    assert whole_grade("3") == 3


def test_the_queue_lists_searched_queries_nobody_judged(small_index, small_searcher, tmp_path):
    judge = _handlers(small_index, small_searcher, tmp_path, "open")
    from mmsearch.feedback.searchlog import Search, new_query_id

    log = judge.feedback.log
    for query, match in (("green cap", "weak"), ("green cap", "weak"), ("red mug", "good")):
        log.searched(Search(new_query_id(), 1e12, query, "text", "hybrid", "m", match, ("a",), 1.0, None, "ui"))
    import time

    for s in list(log._searches):
        s["at"] = time.time()
    log.flush()
    rows = judge.queue_rows("")
    assert rows[0] == ["green cap", 2, "weak match"] and ["red mug", 1, "no clicks"] in rows


def test_the_analytics_tab_shows_what_was_searched(small_index, small_searcher, tmp_path):
    from conftest import ask

    from mmsearch.ui.analytics_tab import usage_view

    judge = _handlers(small_index, small_searcher, tmp_path, "open")
    feedback = judge.feedback
    for query in ("red mug", "red mug", "green cap"):
        asked = small_searcher.request(q=query, k=3)
        feedback.record(ask(small_searcher, query, 3), asked, "ui", "tester", 0.0)
    figures, plot, top, empty, weak, no_click, mixed = usage_view(judge.events, 7)
    assert figures.startswith("**3** searches in the last 7 days") and plot is not None
    assert top.to_dict("records")[0] == {"query": "red mug", "searches": 2, "clicked": 0}
    assert set(no_click["query"]) == {"red mug", "green cap"} and mixed.empty
