"""The app's page: its heading, the Search, Evaluation and Compare tabs, and the agent tools."""

from __future__ import annotations

import gradio as gr

from mmsearch.feedback.loop import Feedback
from mmsearch.search.searcher import Searcher
from mmsearch.serve.guard import Guard
from mmsearch.ui.analytics_tab import analytics_tab
from mmsearch.ui.compare_tab import compare_tab
from mmsearch.ui.evaluation_tab import evaluation_tab
from mmsearch.ui.events import Events
from mmsearch.ui.judge_tab import judge_tab
from mmsearch.ui.search_tab import search_tab
from mmsearch.ui.tools import register_tools

# Gradio's gallery has a fixed column count: this lets the columns follow the screen (about 170 px a picture, at
# least two on a phone), keeps the example queries to one scrolling line, trims the space above the results, and lets
# a card's caption wrap onto three lines instead of cutting the title after a few letters. A clicked product's own
# pictures are smaller (a row of up to six, 150 px each, rather than two filling the width).
CSS = """
#mm-gallery .grid-container { grid-template-columns: repeat(auto-fill, minmax(min(170px, 45%), 1fr)) !important; }
#mm-product-pictures .grid-container { grid-template-columns: repeat(auto-fill, minmax(96px, 150px)) !important; }
#mm-examples .gallery, #mm-examples [class*="gallery"] { flex-wrap: nowrap !important; overflow-x: auto; }
#mm-examples button { white-space: nowrap; flex-shrink: 0; }
#mm-gallery .caption-label { white-space: normal; max-width: calc(100% - 8px); display: -webkit-box;
  -webkit-line-clamp: 3; -webkit-box-orient: vertical; line-height: 1.25; }
@media (max-width: 640px) {
  #mm-heading h2 { font-size: 1.05rem; }
  #mm-heading p { display: none; }
  #mm-status p { font-size: 0.8rem; }
}
#mm-heading h2 { margin: 0 0 2px 0; font-size: 1.25rem; }
#mm-heading p { margin: 0; font-size: 0.8rem; opacity: 0.8; }
#mm-status p { margin: 0; }
"""


def build_ui(searcher: Searcher, other: Searcher | None, guard: Guard, feedback: Feedback) -> gr.Blocks:
    events = Events(guard, feedback)

    def header() -> str:
        """Read at every page load: the index may have been swapped for a newer build since the app started."""
        index = searcher.index
        m = index.manifest
        return (
            f"## mmsearch — multimodal product search\n"
            f"Model `{searcher.encoder.model_id}` · {len(index):,} items from "
            f"`{m.get('catalog_name', m.get('catalog'))}` · built {m.get('built_at', '?')} · "
            f"{m.get('skipped', 0)} catalog rows skipped at build"
        )

    with gr.Blocks(title="mmsearch") as demo:
        heading = gr.Markdown(header(), elem_id="mm-heading")
        demo.load(header, None, heading, api_visibility="private")
        search_tab(demo, searcher, events)
        evaluation_tab(searcher, feedback)
        if other is not None:
            compare_tab(searcher, other, events)
        judge = judge_tab(events)
        analytics_tab(events)
        # After the tabs: anything between two tabs (even an API-only function) would split them into two tab bars.
        register_tools(searcher, events)
        if judge is not None:
            gr.api(judge, api_name="judge")
    return demo
