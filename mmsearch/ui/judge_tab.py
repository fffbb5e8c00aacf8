"""The Judge tab: a rater picks a query (from the queue of unjudged searches, or typed), sees the pooled results of
every mode and model one at a time, shuffled so no system can be told apart (evaluate/pooling.py), and grades each
0-3 with the keyboard (keys 0, 1, 2, 3) or the buttons. Each grade is committed before the next result shows.

On a server with users (--auth) the rater is the logged-in user; with --judging open, the name typed; otherwise
the tab says judging is off. Query text is shown in text boxes and tables, never rendered as markup.
"""

from __future__ import annotations

import gradio as gr

from mmsearch.evaluate.pooling import pool
from mmsearch.search.results import ItemNotFound, QueryError
from mmsearch.serve.feedback import JUDGING_OFF
from mmsearch.serve.guard import Refusal, refusal
from mmsearch.store.judgments import GRADES, JudgmentError, normalize_query
from mmsearch.ui.events import Events

# Digits grade the result on screen while the Judge tab is shown, unless the cursor is in a text box.
KEYS_JS = """
<script>
document.addEventListener("keydown", (e) => {
  const tab = document.getElementById("mm-judge");
  if (!tab || tab.offsetParent === null || !"0123".includes(e.key) || e.key.length !== 1) return;
  const t = e.target;
  if (t && (t.tagName === "INPUT" || t.tagName === "TEXTAREA" || t.isContentEditable)) return;
  const button = document.getElementById("mm-grade-" + e.key);
  if (button) { e.preventDefault(); button.click(); }
});
</script>
"""


def _grade(value: object) -> int:
    """A grade from a raw API call: a whole number (the range is checked with the other fields)."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise JudgmentError(f"grade must be 0, 1, 2 or 3, not {value!r}") from None
    if not number.is_integer():
        raise JudgmentError(f"grade must be 0, 1, 2 or 3, not {value!r}")
    return int(number)


def judge_tab(events: Events):
    """Adds the tab; returns the ``judge`` API function to register after the tabs (None when judging is off)."""
    feedback = events.feedback
    access, searchers = feedback.access, feedback.searchers

    def rater_of(named: str, request: gr.Request | None) -> str:
        """The rater (a Refusal, shown by ``events.run`` as the UI's error box, when there is none)."""
        return access.rater(getattr(request, "username", None), named)

    def shown(refused: Refusal) -> gr.Error:
        return gr.Error(refused.message, title="Cannot judge")

    def queue_rows(named: str = "", request: gr.Request = None) -> list[list]:
        if not access.enabled:
            return []
        rater = None
        if access.users or (named or "").strip():
            try:
                rater = rater_of(named, request)
            except Refusal as refused:
                raise shown(refused) from refused
        return [[q["query"], q["searches"], q["why"]] for q in feedback.judgments.queue(rater)]

    def show(state: dict) -> tuple:
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

    def start(query: str, named: str, request: gr.Request = None) -> tuple:
        """The pool of ``query``; the rater's own earlier grades are kept, and the first ungraded result shows."""

        def work():
            rater = rater_of(named, request)
            if not isinstance(query, str) or not normalize_query(query):
                raise QueryError("Pick a query from the queue or type one.")
            results = pool(searchers, query)
            mine = feedback.judgments.of_query(query, rater)
            items = [
                {"item_id": r.item_id, "title": r.title, "category": r.category, "image": events.pictures.path(r.image)}
                for r in results
            ]
            state = {"query": normalize_query(query), "rater": rater, "items": items, "graded": mine}
            state["queries_judged"] = feedback.judgments.queries_judged(rater)
            state["at"] = next((i for i, it in enumerate(items) if it["item_id"] not in mine), len(items))
            return show(state), results

        return events.run("judge_pool", request, work, query=query, title="Cannot judge")

    def grade(value: int, state: dict, request: gr.Request = None) -> tuple:
        items, at = state.get("items", []), state.get("at", 0)
        if not items or at >= len(items):
            return show(state)
        try:
            kept = feedback.judge(state["query"], items[at]["item_id"], value, state["rater"])  # committed first
        except (JudgmentError, ItemNotFound) as exc:
            raise shown(refusal(exc)) from exc
        first = not state["graded"]
        state = dict(state, graded={**state["graded"], kept.item_id: kept.grade})
        state["queries_judged"] = state.get("queries_judged", 0) + first
        following = [i for i in range(len(items)) if items[i]["item_id"] not in state["graded"]]
        state["at"] = next((i for i in following if i > at), following[0] if following else len(items))
        return show(state)

    def judge(query: str, item_id: str, grade: int, rater: str = "", request: gr.Request = None) -> dict:
        """Grade one result for a query, 0 irrelevant, 1 related, 2 relevant, 3 perfect (the rater is the logged-in
        user on a server with users); returns the grade as kept."""

        def work():
            return vars(feedback.judge(query, item_id, _grade(grade), rater_of(rater, request))), []

        return events.run("judge", request, work, query=query, title="Cannot judge")

    def back(state: dict) -> tuple:
        state = dict(state, at=max(0, state.get("at", 0) - 1))
        return show(state)

    def grader(value: int):
        def on_click(state: dict, request: gr.Request) -> tuple:
            return grade(value, state, request)

        return on_click

    def picked(evt: gr.SelectData) -> str:
        return str(evt.row_value[0]) if evt.row_value else ""

    with gr.Tab("Judge", elem_id="mm-judge"):
        if not access.enabled:
            gr.Markdown(JUDGING_OFF)
            return None
        gr.Markdown(
            "Grade each result for the query: **0** irrelevant · **1** related · **2** relevant · **3** perfect "
            "(keys 0–3). The results of every mode and model are pooled and shuffled."
        )
        with gr.Row():
            rater = gr.Textbox(
                label="Rater", max_lines=1, visible=not access.users, placeholder="your name", elem_id="mm-rater"
            )
            query = gr.Textbox(label="Query", max_lines=1, placeholder="type a query, or pick one below", scale=3)
            go = gr.Button("Judge this query", variant="primary", scale=1, elem_id="mm-judge-start")
        state = gr.State({})
        with gr.Row():
            picture = gr.Image(label="Result", height=260, interactive=False, show_label=False)
            with gr.Column():
                caption = gr.Textbox(label="Item", interactive=False, elem_id="mm-judge-item")
                progress = gr.Markdown(elem_id="mm-judge-progress")
                with gr.Row():
                    buttons = [
                        gr.Button(f"{g} {name}", elem_id=f"mm-grade-{g}", size="sm") for g, name in GRADES.items()
                    ]
                previous = gr.Button("Back", size="sm")
        with gr.Accordion("Queue: the most searched queries nobody has judged", open=True):
            refresh = gr.Button("Refresh the queue", size="sm")
            queue = gr.Dataframe(
                headers=["query", "searches", "why"], interactive=False, wrap=True, elem_id="mm-judge-queue"
            )
        outputs = [picture, caption, progress, state]
        gr.on([go.click, query.submit], start, [query, rater], outputs, api_name="judge_pool")
        for g, button in zip(GRADES, buttons):
            button.click(grader(g), state, outputs, api_visibility="private")
        previous.click(back, state, outputs, api_visibility="private")
        refresh.click(queue_rows, [rater], queue, api_visibility="private")
        queue.select(picked, None, query, api_visibility="private")
    return judge
