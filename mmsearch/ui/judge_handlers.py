"""What the Judge tab's events do, apart from its layout (judge_tab.py): the queue of queries to judge, a query's
pool shown one result at a time, a grade (committed before the next result shows), going back, and ``judge``, the
Gradio API's way to grade one result. The tab's state is a plain dict: the query, the rater, the pool, the grades
given, and the result on screen."""

from __future__ import annotations

import gradio as gr

from mmsearch.feedback.judgments import JudgmentError, normalize_query
from mmsearch.feedback.pooling import pool
from mmsearch.search.results import ItemNotFound, QueryError
from mmsearch.serve.guard import refusal
from mmsearch.ui.events import Events


def whole_grade(value: object) -> int:
    """A grade from a raw API call: a whole number (the range is checked with the other fields)."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise JudgmentError(f"grade must be 0, 1, 2 or 3, not {value!r}") from None
    if not number.is_integer():
        raise JudgmentError(f"grade must be 0, 1, 2 or 3, not {value!r}")
    return int(number)


def shown(state: dict) -> tuple:
    """The picture, caption and progress line for the result on screen, and the state."""
    items, at = state.get("items", []), state.get("at", 0)
    done = sum(1 for i in items if i["item_id"] in state.get("graded", {}))
    progress = f"{done} of {len(items)} rated" + (" · all done" if items and done == len(items) else "")
    if state.get("rater"):
        n = state.get("queries_judged", 0)
        progress += f" · {state['rater']} has judged {n} quer{'y' if n == 1 else 'ies'}"
    if not items or at >= len(items):
        return None, "", progress, state
    item = items[at]
    caption = f"{item['title']} · {item['category']}".strip(" ·")
    return item["image"], caption, f"Result {at + 1} of {len(items)} · {progress}", state


class JudgeHandlers:
    def __init__(self, events: Events):
        self.events, self.feedback = events, events.feedback

    def rater_of(self, named: str, request: gr.Request | None) -> str:
        """The rater: the logged-in user, or the name typed on an open judging server (else a refusal)."""
        return self.feedback.access.rater(getattr(request, "username", None), named)

    def queue_rows(self, named: str = "", request: gr.Request = None) -> list[list]:
        """The most searched queries nobody (or this rater) has judged yet."""
        access = self.feedback.access
        if not access.enabled:
            return []
        rater = None
        if access.users or (named or "").strip():
            try:
                rater = self.rater_of(named, request)
            except Exception as exc:  # noqa: BLE001 - the guard's table words it
                raise gr.Error(refusal(exc).message, title="Cannot judge") from exc
        return [[q["query"], q["searches"], q["why"]] for q in self.feedback.judgments.queue(rater)]

    def start(self, query: str, named: str, request: gr.Request = None) -> tuple:
        """The pool of ``query``; the rater's own earlier grades are kept, and the first ungraded result shows."""

        def work():
            rater = self.rater_of(named, request)
            if not isinstance(query, str) or not normalize_query(query):
                raise QueryError("Pick a query from the queue or type one.")
            results = pool(self.feedback.searchers, query)
            mine = self.feedback.judgments.of_query(query, rater)
            pictures = self.events.pictures
            items = [
                {"item_id": r.item_id, "title": r.title, "category": r.category, "image": pictures.path(r.image)}
                for r in results
            ]
            state = {"query": normalize_query(query), "rater": rater, "items": items, "graded": mine}
            state["queries_judged"] = self.feedback.judgments.queries_judged(rater)
            state["at"] = next((i for i, it in enumerate(items) if it["item_id"] not in mine), len(items))
            return shown(state), results

        return self.events.run("judge_pool", request, work, query=query, title="Cannot judge")

    def grade(self, value: int, state: dict, request: gr.Request = None) -> tuple:
        """Keeps ``value`` for the result on screen, then shows the next ungraded one."""
        items, at = state.get("items", []), state.get("at", 0)
        if not items or at >= len(items):
            return shown(state)
        try:
            kept = self.feedback.judge(state["query"], items[at]["item_id"], value, state["rater"])  # committed first
        except (JudgmentError, ItemNotFound) as exc:
            raise gr.Error(refusal(exc).message, title="Cannot judge") from exc
        first = not state["graded"]
        state = dict(state, graded={**state["graded"], kept.item_id: kept.grade})
        state["queries_judged"] = state.get("queries_judged", 0) + first
        following = [i for i in range(len(items)) if items[i]["item_id"] not in state["graded"]]
        state["at"] = next((i for i in following if i > at), following[0] if following else len(items))
        return shown(state)

    def judge(self, query: str, item_id: str, grade: int, rater: str = "", request: gr.Request = None) -> dict:
        """Grade one result for a query, 0 irrelevant, 1 related, 2 relevant, 3 perfect (the rater is the logged-in
        user on a server with users); returns the grade as kept."""

        def work():
            return vars(self.feedback.judge(query, item_id, whole_grade(grade), self.rater_of(rater, request))), []

        return self.events.run("judge", request, work, query=query, title="Cannot judge")

    @staticmethod
    def back(state: dict) -> tuple:
        return shown(dict(state, at=max(0, state.get("at", 0) - 1)))

    def grader(self, value: int):
        """The click handler of one grade's button."""

        def on_click(state: dict, request: gr.Request) -> tuple:
            return self.grade(value, state, request)

        return on_click
