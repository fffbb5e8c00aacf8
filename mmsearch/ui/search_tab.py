"""The Search tab: the box, the gallery, the Advanced settings, more-like-this, and the shared link's search. Every
event has an ``api_name``, so the same searches work from gradio_client and curl."""

from __future__ import annotations

import math
import time

import gradio as gr

from mmsearch.search.match import GOOD, WEAK
from mmsearch.search.results import QueryError, Result
from mmsearch.search.searcher import MODES, Searcher
from mmsearch.ui.events import Events

EXAMPLES = [
    "red striped t-shirt",
    "blue dotted mug",
    "sneaker -white",
    "yellow checked cap",
    "green striped bag",
    "white lamp",
    "pink dotted bottle",
    "brown checked chair",
]


def _outputs(
    results: list[Result],
    what: str,
    hidden: int = 0,
    note: str = "",
    gallery=None,
    match: str = GOOD,
    query_id: str | None = None,
    positions: list[int] | None = None,
) -> tuple[list, list[dict], str]:
    """The gallery, the results as JSON (each with its answer's ``query_id`` and its ``position`` in it, 1 = first,
    what an event on it names) and the status line."""
    gallery = gallery(results) if gallery else [(r.image, r.caption()) for r in results]
    positions = positions or list(range(1, len(results) + 1))
    shown = [r.public() | {"query_id": query_id, "position": p} for r, p in zip(results, positions)]
    if not results:
        status = f"No results for {what}."
    elif match == WEAK:
        status = f"No item matches {what} well; these are the closest · click one for more like it"
    else:
        status = f"{len(results)} results for {what} · click one for more like it"
    if hidden:
        status += f" · {hidden} more below the minimum score hidden"
    if note:
        status += f" · {note}"
    return gallery, shown, status


def _number(value, name: str, whole: bool = False) -> float | int | None:
    """A number from a raw API call, where anything may come: null keeps the default, the rest is refused plainly."""
    if value is None or value == "":
        return None
    try:
        number = float(value)
        if not math.isfinite(number) or isinstance(value, bool):
            raise ValueError
        return int(number) if whole else number
    except (TypeError, ValueError, OverflowError):
        raise QueryError(f"{name} must be a number, not {value!r}.") from None


def _run(
    search, what: str, k: float, min_score: float, filters: str | None, say_mode=False, gallery=None, record=None
) -> tuple:
    """Runs a search for the UI; the minimum score is applied here so the status can say how many it hid (and, with
    ``say_mode``, which mode ranked the results); ``record`` gives the answer its query_id. Returns the event's
    outputs and the searcher's answer."""
    started = time.perf_counter()
    if filters is not None and not isinstance(filters, str):
        raise QueryError(f"The filters must be text such as 'category=mug; price<=20', not {filters!r}.")
    if filters and filters.strip():
        what += f" where {filters.strip()}"
    floor = _number(min_score, "The minimum score") or 0.0
    answer = search(_number(k, "k", whole=True), None, filters)  # None: the server's default k
    query_id = record(answer, started) if record else None
    kept = [(i, r) for i, r in enumerate(answer, start=1) if r.score >= floor]
    note = f"{answer.mode} · {SCORE_NOTE[answer.mode]}" if say_mode else ""
    if answer.teams is not None:
        note = (note + " · " if note else "") + "interleaved with a second ranker"
    match = getattr(answer, "match", GOOD)
    outputs = _outputs(
        [r for _, r in kept],
        what,
        hidden=len(answer) - len(kept),
        note=note,
        gallery=gallery,
        match=match,
        query_id=query_id,
        positions=[i for i, _ in kept],
    )
    return outputs, answer


SCORE_NOTE = {
    "vector": "scores: cosine similarity",
    "keyword": "scores: BM25",
    "hybrid": "scores: rank fusion, 1 = first by both keywords and embedding",
}


def search_tab(demo: gr.Blocks, searcher: Searcher, events: Events) -> None:
    """Adds the tab to ``demo`` (call inside its ``with gr.Blocks()``)."""
    cfg = searcher.config
    advanced_open = gr.BrowserState(False, storage_key="mmsearch-advanced-open")

    def search_text(
        query: str,
        k: float,
        min_score: float = 0.0,
        filters: str = "",
        mode: str | None = None,
        keyword_weight: float | None = None,
        image: dict | str | None = None,
        image_weight: float | None = None,
        request: gr.Request = None,
    ) -> tuple[list, list[dict], str]:
        """Text search in a mode (vector, keyword or hybrid); with an image too, both blend by image_weight."""
        has_text = isinstance(query, str) and bool(query.strip())

        def work():
            path = events.upload(image)
            parts = [f'"{query.strip()}"'] if has_text else []
            if path:
                share = _number(image_weight, "The image weight")
                share = cfg.image_weight if share is None else share
                parts.append(f"the uploaded image (image weight {share:.2f})" if has_text else "the uploaded image")

            def search(n, m, f):
                if path is None and has_text:  # a text search, which --interleave may answer with two rankers
                    return events.feedback.text_answer(searcher, query, n, m, f, mode or None, keyword_weight)
                return searcher.search(query, path, n, m, f, mode, keyword_weight, image_weight)

            return _run(
                search,
                " + ".join(parts),
                k,
                min_score,
                filters,
                say_mode=True,
                gallery=events.gallery,
                record=events.recorder(query, "ui", request),
            )

        return events.run("search_text", request, work, query=query)

    def search_image(
        image: dict | str | None, k: float, min_score: float = 0.0, filters: str = "", request: gr.Request = None
    ) -> tuple[list, list[dict], str]:
        # Gradio's own preprocessing would fail on a non-image upload with an opaque error, so the event runs
        # with preprocess=False and the upload's file is decoded (and size-checked) by the searcher.
        def work():
            path = events.upload(image)
            return _run(
                lambda n, m, f: searcher.search_image(path, n, m, f),
                "the uploaded image",
                k,
                min_score,
                filters,
                gallery=events.gallery,
                record=events.recorder(None, "ui", request),
            )

        return events.run("search_image", request, work)

    def more_like_this(
        item_id: str, k: float, min_score: float = 0.0, filters: str = "", request: gr.Request = None
    ) -> tuple[list, list[dict], str]:
        return events.run(
            "more_like_this",
            request,
            lambda: _run(
                lambda n, m, f: searcher.more_like_this(item_id, n, m, f),
                f"items like {item_id}",
                k,
                min_score,
                filters,
                gallery=events.gallery,
                record=events.recorder(None, "ui", request),
            ),
        )

    def on_select(
        results: list[dict] | None, k: float, min_score: float, filters: str, evt: gr.SelectData, request: gr.Request
    ) -> tuple:
        shown = (results or [])[evt.index]
        item_id = shown["item_id"]
        events.clicked(shown, request)  # recorded as POST /api/events records a shop's click
        return (item_id, *more_like_this(item_id, k, min_score, filters, request))

    with gr.Tab("Search"):
        # The first screen is the box and the results: everything that tunes a search folds away below them.
        with gr.Row(equal_height=True, elem_id="mm-searchbar"):
            query = gr.Textbox(
                label="Search",
                show_label=False,
                container=False,
                scale=8,
                min_width=120,
                placeholder="Describe what you want, e.g. red striped t-shirt",
                max_lines=1,
                max_length=searcher.config.max_query_chars * 2,
                elem_id="mm-query",
            )
            text_button = gr.Button("Search", variant="primary", scale=0, min_width=72, elem_id="mm-search")
            upload = gr.UploadButton(
                "Image", icon=None, file_types=["image"], scale=0, min_width=72, elem_id="mm-upload"
            )
        examples = [e.strip() for e in cfg.examples.split("|") if e.strip()] or EXAMPLES
        gr.Examples(examples, inputs=[query], label=None, elem_id="mm-examples")
        status = gr.Markdown(elem_id="mm-status")
        gallery = gr.Gallery(
            label="Results",
            show_label=False,
            columns=6,
            height="auto",
            object_fit="contain",
            allow_preview=False,
            elem_id="mm-gallery",
        )
        with gr.Accordion("Advanced: number of results, mode, weights, filters, image search", open=False) as advanced:
            with gr.Row():
                k = gr.Slider(1, 48, value=cfg.top_k, step=1, label="Results (k)", elem_id="mm-k")
                min_score = gr.Slider(0.0, 1.0, value=0.0, step=0.01, label="Minimum score")
            with gr.Row():
                mode = gr.Radio(
                    list(MODES),
                    value=cfg.search_mode,
                    label="Mode",
                    scale=2,
                    info="embedding, BM25 keywords, or both fused",
                )
                keyword_weight = gr.Slider(
                    0.0, 1.0, value=cfg.keyword_weight, step=0.05, scale=1, label="Keyword weight (hybrid)"
                )
            filters = gr.Textbox(
                "", label="Filters", max_lines=1, placeholder="category=mug; colour=blue|red; price<=20"
            )
            with gr.Row(equal_height=False):
                image = gr.Image(
                    type="filepath",
                    label="Search with an image (alone, or with the text above)",
                    height=190,
                    sources=["upload", "clipboard"],
                )
                with gr.Column():
                    image_weight = gr.Slider(
                        0.0,
                        1.0,
                        value=cfg.image_weight,
                        step=0.05,
                        label="Image weight when searching text + image",
                    )
                    image_button = gr.Button("Search by image")
        with gr.Accordion("Results as JSON · more like an item id", open=False):
            results = gr.JSON()
            with gr.Row():
                like_id = gr.Textbox(label="Item id", max_lines=1, scale=3)
                like_button = gr.Button("More like this", scale=1)
        gr.on(
            [text_button.click, query.submit],
            search_text,
            [query, k, min_score, filters, mode, keyword_weight, image, image_weight],
            [gallery, results, status],
            api_name="search_text",
            preprocess=False,
        )
        gr.on(
            [image_button.click, image.upload],
            search_image,
            [image, k, min_score, filters],
            [gallery, results, status],
            api_name="search_image",
            preprocess=False,
        )
        # The small button beside the box puts its picture into the image input, then searches with it.
        upload.upload(lambda path: path, upload, image, api_visibility="private").then(
            search_image,
            [image, k, min_score, filters],
            [gallery, results, status],
            preprocess=False,
            api_visibility="private",
        )
        gr.on(
            [like_button.click, like_id.submit],
            more_like_this,
            [like_id, k, min_score, filters],
            [gallery, results, status],
            api_name="more_like_this",
        )
        gallery.select(
            on_select,
            [results, k, min_score, filters],
            [like_id, gallery, results, status],
            api_visibility="private",
        )
        advanced.expand(lambda: True, None, advanced_open, api_visibility="private")
        advanced.collapse(lambda: False, None, advanced_open, api_visibility="private")
        demo.load(lambda was_open: gr.Accordion(open=bool(was_open)), advanced_open, advanced, api_visibility="private")

    def from_link(request: gr.Request) -> tuple:
        """Runs the query of a shared link (/?q=red+striped+t-shirt&k=12) when the page opens; the link's k
        shows in the slider."""
        q = (request.query_params.get("q") or "").strip() if request else ""
        if not q:
            return gr.update(), gr.update(), gr.update(), gr.update(), gr.update()
        try:
            count = int(request.query_params.get("k") or searcher.config.top_k)
            count = min(max(count, 1), 48)
            return (q, count, *search_text(q, count, request=request))
        except (ValueError, gr.Error) as exc:
            return q, gr.update(), [], [], f"The link's query could not run: {exc}"

    # The browser's own page load, not an API call: the same search is /search_text for scripts.
    demo.load(from_link, None, [query, k, gallery, results, status], api_name="open_link", api_visibility="private")
