"""What the Search tab's events do, apart from its layout (search_tab.py), so they can be called and tested as plain
functions: words (with an optional picture), a picture alone, an item's similar items, a click in the gallery, and
the search of a shared link. Each answers the gallery, the results as JSON and the status line.

Inputs arrive untyped from the Gradio API: each event builds one checked SearchRequest from them (search/request.py)
and runs it through the guard (events.py)."""

from __future__ import annotations

import logging
import time

import gradio as gr

from mmsearch.encode.query_language import NAMES
from mmsearch.inputs import clean
from mmsearch.search.match import WEAK
from mmsearch.search.request import SearchRequest
from mmsearch.search.results import Answer, QueryError
from mmsearch.search.searcher import Searcher
from mmsearch.ui.events import Events

log = logging.getLogger("mmsearch.ui")
SCORE_NOTE = {
    "vector": "scores: cosine similarity",
    "keyword": "scores: BM25",
    "hybrid": "scores: rank fusion, 1 = first by both keywords and embedding",
}
LINK_K_MAX = 48  # the Results slider's top


def status_line(answer: Answer, what: str, hidden: int, say_mode: bool) -> str:
    """The line above the gallery: how many, for what, whether they match, and what the scores mean."""
    if not answer:
        return f"No results for {what}."
    shown = len(answer) - hidden
    if not shown:
        line = f"No results for {what} above the minimum score"
    elif answer.match == WEAK:
        line = f"No item matches {what} well; these are the closest · click one for similar items"
    else:
        line = f"{shown} results for {what} · click one for similar items"
    if hidden and shown:
        line += f" · {hidden} more below the minimum score hidden"
    if answer.language not in (None, "en"):  # said where a multilingual tower read the words in another language
        line += f" · read as {NAMES.get(answer.language, answer.language)}"
    if say_mode:
        line += f" · {answer.mode} · {SCORE_NOTE[answer.mode]}"
    if answer.teams is not None:
        line += " · interleaved with a second ranker"
    return line


class SearchHandlers:
    def __init__(self, searcher: Searcher, events: Events):
        self.searcher, self.events = searcher, events

    def _answer(self, endpoint: str, request, wanted, what: str, min_score, say_mode=False, query=None):
        """Runs ``wanted`` (a function making the SearchRequest, so that its refusals pass the guard too) and shows
        the hits at or above ``min_score`` (the status says how many it hid)."""

        def work():
            started = time.perf_counter()
            asked: SearchRequest = wanted()
            floor = self._number(min_score, "The minimum score") or 0.0
            answer = self.searcher.search(asked)
            query_id = self.events.feedback.record(answer, asked, "ui", self.events.client(request), started)
            kept = [(i, h) for i, h in enumerate(answer, start=1) if h.score >= floor]
            where = f"{what} where {asked.filters}" if asked.filters else what
            rows = [h.public() | {"query_id": query_id, "position": i} for i, h in kept]
            status = status_line(answer, where, len(answer) - len(kept), say_mode)
            return (self.events.gallery([h for _, h in kept]), rows, status), answer

        return self.events.run(endpoint, request, work, query=query)

    @staticmethod
    def _number(value, name: str) -> float | None:
        if value is None or value == "":
            return None
        try:
            return float(value)
        except (TypeError, ValueError):
            raise QueryError(f"{name} must be a number, not {value!r}.") from None

    def search_text(
        self,
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
        """Words in a mode (vector, keyword or hybrid); with an image too, both blend by image_weight."""

        def wanted() -> SearchRequest:
            path = self.events.upload(image)
            fields = dict(q=query, k=k, filters=filters, mode=mode, keyword_weight=keyword_weight)
            return self.searcher.request(**fields, image=path, image_weight=image_weight if path else None)

        words = clean(query).strip() if isinstance(query, str) else ""
        what = f'"{words}"' if words else "the uploaded image"
        if words and image:
            share = self.searcher.config.image_weight if image_weight in (None, "") else image_weight
            shown = f" (image weight {share:.2f})" if isinstance(share, (int, float)) else ""  # else refused below
            what += f" + the uploaded image{shown}"
        return self._answer("search_text", request, wanted, what, min_score, say_mode=True, query=query)

    def search_image(
        self, image: dict | str | None, k: float, min_score: float = 0.0, filters: str = "", request: gr.Request = None
    ) -> tuple[list, list[dict], str]:
        """A picture alone. Gradio's own preprocessing would fail on a non-image upload with an opaque error, so the
        event runs with preprocess=False and the upload's file is decoded (and size-checked) by the searcher."""

        def wanted() -> SearchRequest:
            path = self.events.upload(image)
            if path is None:
                raise QueryError("Upload an image to search with.")
            return self.searcher.request(image=path, k=k, filters=filters)

        return self._answer("search_image", request, wanted, "the uploaded image", min_score)

    def similar(
        self, item_id: str, k: float, min_score: float = 0.0, filters: str = "", request: gr.Request = None
    ) -> tuple[list, list[dict], str]:
        """The items most like an indexed one, by its stored embedding."""

        def wanted() -> SearchRequest:
            return self.searcher.request(item_id=item_id, k=k, filters=filters)

        return self._answer("similar", request, wanted, f"items like {item_id}", min_score)

    def more_like_this(
        self, item_id: str, k: float, min_score: float = 0.0, filters: str = "", request: gr.Request = None
    ) -> tuple[list, list[dict], str]:
        """The Gradio API's old name of ``similar``: answered as it, with a warning in the log."""
        log.warning("the Gradio API's /more_like_this is now /similar; the old name will go")
        return self.similar(item_id, k, min_score, filters, request)

    def on_select(
        self, results: list[dict] | None, k: float, min_score: float, filters: str, evt: gr.SelectData, request=None
    ) -> tuple:
        """A click on a result: kept as an event on its answer, then its similar items."""
        shown = (results or [])[evt.index]
        self.events.clicked(shown, request)
        return (shown["item_id"], *self.similar(shown["item_id"], k, min_score, filters, request))

    def from_link(self, request: gr.Request) -> tuple:
        """Runs the query of a shared link (/?q=red+striped+t-shirt&k=12) when the page opens; the link's k shows in
        the slider."""
        q = (request.query_params.get("q") or "").strip() if request else ""
        if not q:
            return gr.update(), gr.update(), gr.update(), gr.update(), gr.update()
        try:
            count = int(request.query_params.get("k") or self.searcher.config.top_k)
            count = min(max(count, 1), LINK_K_MAX)
            return (q, count, *self.search_text(q, count, request=request))
        except (ValueError, gr.Error) as exc:
            return q, gr.update(), [], [], f"The link's query could not run: {exc}"
