"""The Gradio interface. Every event has an ``api_name``, so the same searches work from gradio_client and curl."""
from __future__ import annotations

import gradio as gr

from .compare import COLUMNS, compare, report_rows
from .search import QueryError, Result, Searcher

EXAMPLES = ["red striped t-shirt", "blue dotted mug", "sneaker -white", "yellow checked cap", "green striped bag",
            "white lamp", "pink dotted bottle", "brown checked chair"]


def _outputs(results: list[Result], what: str, hidden: int = 0) -> tuple[list, list[dict], str]:
    gallery = [(r.image, r.caption()) for r in results]
    status = f"{len(results)} results for {what}" if results else f"No results for {what}."
    if hidden:
        status += f" · {hidden} more below the minimum score hidden"
    return gallery, [r.to_dict() for r in results], status


def _run(search, what: str, k: float, min_score: float, filters: str | None) -> tuple[list, list[dict], str]:
    """Runs a search for the UI; the minimum score is applied here so the status can say how many it hid."""
    if filters and filters.strip():
        what += f" where {filters.strip()}"
    try:
        results = search(int(k), None, filters)
    except QueryError as exc:
        raise gr.Error(str(exc), duration=None, title="Cannot search") from exc
    floor = float(min_score or 0.0)
    kept = [r for r in results if r.score >= floor] if floor else results
    return _outputs(kept, what, hidden=len(results) - len(kept))


def build_ui(searcher: Searcher, other: Searcher | None = None) -> gr.Blocks:
    def search_text(query: str, k: float, min_score: float = 0.0, filters: str = "") -> tuple[list, list[dict], str]:
        return _run(lambda n, m, f: searcher.search_text(query, n, m, f), f"“{(query or '').strip()}”", k,
                    min_score, filters)

    def search_image(image: dict | str | None, k: float, min_score: float = 0.0,
                     filters: str = "") -> tuple[list, list[dict], str]:
        # Gradio's own preprocessing would fail on a non-image upload with an opaque error, so the event runs
        # with preprocess=False and the upload's file is decoded (and size-checked) by the searcher.
        path = image.get("path") if isinstance(image, dict) else image
        return _run(lambda n, m, f: searcher.search_image(path, n, m, f), "the uploaded image", k, min_score, filters)

    def more_like_this(item_id: str, k: float, min_score: float = 0.0,
                       filters: str = "") -> tuple[list, list[dict], str]:
        return _run(lambda n, m, f: searcher.more_like_this(item_id, n, m, f), f"items like {item_id}", k,
                    min_score, filters)

    def on_select(results: list[dict] | None, k: float, min_score: float, filters: str,
                  evt: gr.SelectData) -> tuple:
        item_id = (results or [])[evt.index]["item_id"]
        return (item_id, *more_like_this(item_id, k, min_score, filters))

    manifest = searcher.index.manifest
    with gr.Blocks(title="mmsearch") as demo:
        gr.Markdown(f"## mmsearch — multimodal product search\n"
                    f"Model `{searcher.encoder.model_id}` · {len(searcher.index):,} items from "
                    f"`{manifest.get('catalog_name', manifest.get('catalog'))}` · "
                    f"{manifest.get('skipped', 0)} catalog rows skipped at build")
        with gr.Tab("Search"):
            with gr.Row(equal_height=True):
                with gr.Column(scale=3):
                    query = gr.Textbox(label="Describe what you are looking for", placeholder="red striped t-shirt",
                                       max_lines=1, max_length=searcher.config.max_query_chars * 2)
                    with gr.Row():
                        text_button = gr.Button("Search", variant="primary")
                        k = gr.Slider(1, 48, value=searcher.config.top_k, step=1, label="Results (k)")
                        min_score = gr.Slider(0.0, 1.0, value=0.0, step=0.01, label="Minimum score")
                    filters = gr.Textbox("", label="Filters", max_lines=1,
                                         placeholder="category=mug; colour=blue|red; price<=20")
                    gr.Examples(EXAMPLES, inputs=[query], label="Try")
                with gr.Column(scale=2):
                    image = gr.Image(type="filepath", label="…or search with an image", height=190,
                                     sources=["upload", "clipboard"])
                    image_button = gr.Button("Search by image")
            status = gr.Markdown()
            gallery = gr.Gallery(label="Results · click one for more like it", columns=6, height="auto",
                                 object_fit="contain", allow_preview=False)
            with gr.Accordion("Results as JSON · more like an item id", open=False):
                results = gr.JSON()
                with gr.Row():
                    like_id = gr.Textbox(label="Item id", max_lines=1, scale=3)
                    like_button = gr.Button("More like this", scale=1)
            gr.on([text_button.click, query.submit], search_text, [query, k, min_score, filters],
                  [gallery, results, status], api_name="search_text")
            gr.on([image_button.click, image.upload], search_image, [image, k, min_score, filters],
                  [gallery, results, status], api_name="search_image", preprocess=False)
            gr.on([like_button.click, like_id.submit], more_like_this, [like_id, k, min_score, filters],
                  [gallery, results, status], api_name="more_like_this")
            gallery.select(on_select, [results, k, min_score, filters], [like_id, gallery, results, status],
                           api_visibility="private")

        def from_link(request: gr.Request) -> tuple:
            """Runs the query of a shared link (/?q=red+striped+t-shirt&k=12) when the page opens."""
            q = (request.query_params.get("q") or "").strip() if request else ""
            if not q:
                return gr.update(), gr.update(), gr.update(), gr.update()
            try:
                count = int(request.query_params.get("k") or searcher.config.top_k)
                return (q, *search_text(q, count))
            except (ValueError, gr.Error) as exc:
                return q, [], [], f"The link's query could not run: {exc}"

        # The browser's own page load, not an API call: the same search is /search_text for scripts.
        demo.load(from_link, None, [query, gallery, results, status], api_name="open_link",
                  api_visibility="private")
        if other is not None:
            compare_tab(searcher, other)
    return demo


def compare_tab(first: Searcher, second: Searcher) -> None:
    """The same query against two models, each with its own index, and both models' evaluation reports."""
    def run(query: str, image: dict | str | None, k: float) -> tuple[list, list, dict]:
        path = image.get("path") if isinstance(image, dict) else image
        try:
            a, b = compare([first, second], query, path, int(k))
        except QueryError as exc:
            raise gr.Error(str(exc), duration=None, title="Cannot compare") from exc
        return ([(r.image, r.caption()) for r in a], [(r.image, r.caption()) for r in b],
                {first.encoder.model_id: [r.to_dict() for r in a], second.encoder.model_id: [r.to_dict() for r in b]})

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
        gr.Markdown("**Evaluation reports** (`python -m mmsearch.evaluate --model M --report <index>/evaluation.json` "
                    "adds or refreshes one)")
        gr.Dataframe(report_rows([first, second]), headers=COLUMNS, interactive=False, wrap=True)
        with gr.Accordion("Both result lists as JSON", open=False):
            both = gr.JSON()
        gr.on([button.click, query.submit], run, [query, image, k], [left, right, both], api_name="compare",
              preprocess=False)
