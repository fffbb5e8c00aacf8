"""The Search tab's layout: the box, the gallery with "More results", the order and the facets beside it, the
Advanced settings, similar items, and the shared link's search (the address bar follows what is shown, so a view can
be shared). What its events do is in search_handlers.py. Every search event has an ``api_name``, so the same
searches work from gradio_client and curl."""

from __future__ import annotations

from dataclasses import dataclass

import gradio as gr
import pandas as pd

from mmsearch.search.facets import offered
from mmsearch.search.request import MODES
from mmsearch.search.searcher import Searcher
from mmsearch.search.sorting import RELEVANCE, sortable
from mmsearch.ui.events import Events
from mmsearch.ui.search_handlers import LINK_K_MAX, SearchHandlers, three

FACET_COLUMNS = 5  # facets the tab offers, chosen from the catalog's columns (facets.offered)
# Sets the address bar to the view's link, so that copying it shares what is shown.
FOLLOW_LINK = "(link) => { history.replaceState(null, '', link ? '?' + link : location.pathname); }"

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


def suggested(catalog: str, table: pd.DataFrame, most: int = len(EXAMPLES)) -> list[str]:
    """Example queries where none are set: the demo's for the demo catalog; for another, its most common categories'
    names (the last part of a path: "animals/birds" is "birds"), none for a catalog without categories (the demo's
    would suggest things it does not hold)."""
    if catalog == "demo":
        return EXAMPLES
    if "category" not in table.columns:
        return []
    names = table["category"].dropna().astype(str).str.rsplit("/", n=1).str[-1].str.replace("_", " ").str.strip()
    return list(names[names != ""].value_counts().index[:most])


def reopened(was_open):
    """The Advanced area on a page's load: opened again if it was open when the page was left, else left as it is.
    The load's answer can come after a person's first click (seconds after, on a busy server): closing then would
    shut what they just opened."""
    return gr.Accordion(open=True) if was_open else gr.skip()


def search_tab(demo: gr.Blocks, searcher: Searcher, events: Events) -> None:
    """Adds the tab to ``demo`` (call inside its ``with gr.Blocks()``)."""
    cfg = searcher.config
    handlers = SearchHandlers(searcher, events)
    advanced_open = gr.BrowserState(False, storage_key="mmsearch-advanced-open")
    columns = searcher.snapshot.columns
    skip = ("item_id", "image", "picture_text", *cfg.keyword_field_list())
    facet_names = gr.State(",".join(offered(columns, skip, FACET_COLUMNS)))
    orders = [("Relevance", RELEVANCE)]
    for name in sortable(columns, skip):
        orders += [(f"{name}: lowest first", name), (f"{name}: highest first", f"-{name}")]

    examples = [e.strip() for e in cfg.examples.split("|") if e.strip()] or suggested(
        cfg.catalog, searcher.snapshot.table
    )

    with gr.Tab("Search"):
        # The first screen is the box and the results: everything that tunes a search folds away below them.
        with gr.Row(equal_height=True, elem_id="mm-searchbar"):
            query = gr.Textbox(
                label="Search",
                show_label=False,
                container=False,
                scale=8,
                min_width=120,
                placeholder="Describe what you want" + (f", e.g. {examples[0]}" if examples else ""),
                max_lines=1,
                max_length=searcher.config.max_query_chars * 2,
                elem_id="mm-query",
            )
            text_button = gr.Button("Search", variant="primary", scale=0, min_width=72, elem_id="mm-search")
            upload = gr.UploadButton(
                "Image", icon=None, file_types=["image"], scale=0, min_width=72, elem_id="mm-upload"
            )
        if examples:
            gr.Examples(examples, inputs=[query], label=None, elem_id="mm-examples")
        status = gr.Markdown(elem_id="mm-status")
        view = gr.State(None)
        with gr.Row(equal_height=False):
            with gr.Column(scale=5, min_width=320):
                gallery = gr.Gallery(
                    label="Results",
                    show_label=False,
                    columns=6,
                    height="auto",
                    object_fit="contain",
                    allow_preview=False,
                    elem_id="mm-gallery",
                )
                more = gr.Button("More results", visible=False, size="sm", elem_id="mm-more")
                # A clicked product with several pictures shows them all here (its gallery card shows one).
                product = gr.Gallery(
                    visible=False, columns=6, height="auto", object_fit="contain", elem_id="mm-product-pictures"
                )
            # Beside the results on a laptop, under them on a phone (the row wraps below the columns' widths).
            with gr.Column(scale=1, min_width=200, elem_id="mm-refine"):
                sort = gr.Dropdown(orders, value=RELEVANCE, label="Sort by", elem_id="mm-sort")
                facets = [
                    gr.Radio([], label="", visible=False, elem_id=f"mm-facet-{n}", elem_classes="mm-facet")
                    for n in range(FACET_COLUMNS)
                ]
        link = gr.Textbox(visible=False)
        with gr.Accordion("Advanced: number of results, mode, weights, filters, image search", open=False) as advanced:
            with gr.Row():
                k = gr.Slider(1, LINK_K_MAX, value=cfg.top_k, step=1, label="Results (k)", elem_id="mm-k")
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
        with gr.Accordion("Results as JSON · similar items to an item id", open=False):
            results = gr.JSON()
            with gr.Row():
                like_id = gr.Textbox(label="Item id", max_lines=1, scale=3)
                like_button = gr.Button("Similar items", scale=1)
        parts = Parts(
            query,
            k,
            min_score,
            filters,
            mode,
            keyword_weight,
            image,
            image_weight,
            sort,
            facet_names,
            gallery,
            results,
            status,
            view,
            like_id,
            facets,
            more,
            link,
            product,
        )
        tab_events(demo, handlers, parts, text_button, image_button, upload, like_button)
        api_events(handlers, parts)
        advanced.expand(lambda: True, None, advanced_open, api_visibility="private")
        advanced.collapse(lambda: False, None, advanced_open, api_visibility="private")
        demo.load(reopened, advanced_open, advanced, api_visibility="private")


@dataclass
class Parts:
    """The Search tab's components its events read and write."""

    query: gr.Textbox
    k: gr.Slider
    min_score: gr.Slider
    filters: gr.Textbox
    mode: gr.Radio
    keyword_weight: gr.Slider
    image: gr.Image
    image_weight: gr.Slider
    sort: gr.Dropdown
    facet_names: gr.State  # the catalog's columns the tab counts (facets.offered)
    gallery: gr.Gallery
    results: gr.JSON
    status: gr.Markdown
    view: gr.State  # what is shown (search_handlers.View): no part of the API's answer
    like_id: gr.Textbox
    facets: list[gr.Radio]
    more: gr.Button
    link: gr.Textbox
    product: gr.Gallery  # the pictures of the product last clicked, when it has several

    @property
    def shown(self) -> list:
        return [self.gallery, self.results, self.status, self.view]

    @property
    def text_inputs(self) -> list:
        return [
            self.query,
            self.k,
            self.min_score,
            self.filters,
            self.mode,
            self.keyword_weight,
            self.image,
            self.image_weight,
        ]


def tab_events(demo, handlers: SearchHandlers, c: Parts, text_button, image_button, upload, like_button) -> None:
    """The tab's own events: each search with the order and the catalog's facets, then the facets, More results
    and the address bar drawn from the view; a click on a result, a facet, More results, a new order; a shared link."""
    shown, narrowing = c.shown, [c.sort, c.facet_names]

    def drawn(event) -> None:
        event.then(
            lambda v: handlers.shown(v, FACET_COLUMNS), c.view, [*c.facets, c.more, c.link], api_visibility="private"
        ).then(None, c.link, None, js=FOLLOW_LINK, api_visibility="private")

    # Private events with names of their own: the API's names (api_events) keep the inputs and the three outputs
    # their callers know (Gradio's raw API takes every input of an event, in order).
    by_image, by_item = [c.image, c.k, c.min_score, c.filters], [c.like_id, c.k, c.min_score, c.filters]
    searches = [
        ([text_button.click, c.query.submit], handlers.search_text, c.text_inputs, "tab_search_text", False),
        ([image_button.click, c.image.upload], handlers.search_image, by_image, "tab_search_image", False),
        ([like_button.click, c.like_id.submit], handlers.similar, by_item, "tab_similar", True),
    ]
    for triggers, handler, inputs, name, preprocess in searches:
        drawn(
            gr.on(
                triggers,
                handler,
                [*inputs, *narrowing],
                shown,
                preprocess=preprocess,
                api_name=name,
                api_visibility="private",
            )
        )
    # The small button beside the box puts its picture into the image input, then searches with it.
    drawn(
        upload.upload(lambda path: path, upload, c.image, api_visibility="private").then(
            handlers.search_image,
            [*by_image, *narrowing],
            shown,
            preprocess=False,
            api_name="tab_upload_search",
            api_visibility="private",
        )
    )
    drawn(
        c.gallery.select(
            handlers.on_select,
            [c.results, c.k, c.min_score, c.filters, *narrowing],
            [c.like_id, *shown, c.product],
            api_visibility="private",
        )
    )
    drawn(c.more.click(handlers.more, c.view, shown, api_visibility="private"))
    for n, facet in enumerate(c.facets):
        drawn(
            facet.input(handlers.refiner(n), [c.view, facet, c.filters], [*shown, c.filters], api_visibility="private")
        )
    # A new order re-runs what is shown, from its top.
    drawn(c.sort.input(handlers.resorted, [c.view, c.sort], shown, api_visibility="private"))
    # The browser's own page load, not an API call: the same search is /search_text for scripts.
    drawn(
        demo.load(
            handlers.from_link,
            c.facet_names,
            [c.query, c.k, c.filters, c.sort, c.mode, *shown],
            api_name="open_link",
            api_visibility="private",
        )
    )


def api_events(handlers: SearchHandlers, c: Parts) -> None:
    """The searches by name for scripts, answered from buttons no one sees (a click runs one search)."""
    api, by_item = [c.gallery, c.results, c.status], [c.like_id, c.k, c.min_score, c.filters]
    gr.Button(visible=False).click(
        three(handlers.search_text), c.text_inputs, api, api_name="search_text", preprocess=False
    )
    gr.Button(visible=False).click(
        three(handlers.search_image),
        [c.image, c.k, c.min_score, c.filters],
        api,
        api_name="search_image",
        preprocess=False,
    )
    gr.Button(visible=False).click(three(handlers.similar), by_item, api, api_name="similar")
    # The name it had before "similar" was the one word for it: still answered, no longer listed.
    gr.Button(visible=False).click(
        three(handlers.more_like_this), by_item, api, api_name="more_like_this", api_visibility="undocumented"
    )
