"""The Judge tab's layout (what its events do is in judge_handlers.py): a rater picks a query (from the queue of
unjudged searches, or typed), sees the pooled results of every mode and model one at a time, shuffled so no system
can be told apart (feedback/pooling.py), and grades each 0-3 with the keyboard (keys 0, 1, 2, 3) or the buttons. Each
grade is committed before the next result shows.

On a server with users (--auth) the rater is the logged-in user; with --judging open, the name typed; otherwise
the tab says judging is off. Query text is shown in text boxes and tables, never rendered as markup.
"""

from __future__ import annotations

import gradio as gr

from mmsearch.feedback.access import JUDGING_OFF
from mmsearch.feedback.judgments import GRADES
from mmsearch.ui.events import Events
from mmsearch.ui.judge_handlers import JudgeHandlers

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


def judge_tab(events: Events):
    """Adds the tab; returns the ``judge`` API function to register after the tabs (None when judging is off)."""
    handlers = JudgeHandlers(events)
    access = events.feedback.access

    def picked(evt: gr.SelectData) -> str:
        return str(evt.row_value[0]) if evt.row_value else ""

    with gr.Tab("Judge", elem_id="mm-judge") as tab:
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
        gr.on([go.click, query.submit], handlers.start, [query, rater], outputs, api_name="judge_pool")
        for g, button in zip(GRADES, buttons):
            button.click(handlers.grader(g), state, outputs, api_visibility="private")
        previous.click(handlers.back, state, outputs, api_visibility="private")
        gr.on([refresh.click, tab.select], handlers.queue_rows, [rater], queue, api_visibility="private")
        queue.select(picked, None, query, api_visibility="private")
    return handlers.judge
