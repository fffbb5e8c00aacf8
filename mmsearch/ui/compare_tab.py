"""The Compare tab: the same query against two models, each with its own index, and both models' reports."""

from __future__ import annotations

import gradio as gr

from mmsearch.evaluate.compare import COLUMNS, compare, report_rows
from mmsearch.search.searcher import Searcher
from mmsearch.ui.events import Events


def compare_tab(first: Searcher, second: Searcher, events: Events) -> None:
    """The same query against two models, each with its own index, and both models' evaluation reports."""

    def compare_models(
        query: str, image: dict | str | None, k: float, request: gr.Request = None
    ) -> tuple[list, list, dict]:
        """The same query (or picture) against both models; each model's results."""

        def work():
            a, b = compare([first, second], query, events.upload(image), int(k))
            outputs = (
                events.gallery(a),
                events.gallery(b),
                {first.encoder.model_id: [r.public() for r in a], second.encoder.model_id: [r.public() for r in b]},
            )
            return outputs, a

        return events.run("compare", request, work, query=query, title="Cannot compare")

    with gr.Tab("Compare"):
        with gr.Row(equal_height=True):
            with gr.Column(scale=3):
                query = gr.Textbox(label="Query for both models", placeholder="blue dotted mug", max_lines=1)
                with gr.Row():
                    button = gr.Button("Compare", variant="primary")
                    k = gr.Slider(1, 24, value=6, step=1, label="Results per model (k)")
            image = gr.Image(type="filepath", label="…or an image (used instead of the text)", height=150, scale=2)
        with gr.Row():
            left = gr.Gallery(label=f"A: {first.encoder.model_id}", columns=3, height="auto", object_fit="contain")
            right = gr.Gallery(label=f"B: {second.encoder.model_id}", columns=3, height="auto", object_fit="contain")
        gr.Markdown(
            "**Evaluation reports** (`python -m mmsearch.evaluate --model M --report <index>/evaluation.json` "
            "adds or refreshes one)"
        )
        gr.Dataframe(report_rows([first, second]), headers=COLUMNS, interactive=False, wrap=True)
        with gr.Accordion("Both result lists as JSON", open=False):
            both = gr.JSON()
        gr.on(
            [button.click, query.submit],
            compare_models,
            [query, image, k],
            [left, right, both],
            api_name="compare",
            preprocess=False,
        )
