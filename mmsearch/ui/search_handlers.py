"""What the Search tab's events do, apart from its layout (search_tab.py), so they can be called and tested as plain
functions: words (with an optional picture), a picture alone, an item's similar items, a click in the gallery, the
search of a shared link, the next page, and a click on a facet. Each answers the gallery, the results as JSON and
the status line, and the ``View`` the tab's facets and "More results" are drawn from (a gr.State: no part of the
API's answer).

Inputs arrive untyped from the Gradio API: each event builds one checked SearchRequest from them (search/request.py)
and runs it through the guard (events.py)."""

from __future__ import annotations

import functools
import logging
import time
from dataclasses import dataclass, field
from urllib.parse import urlencode

import gradio as gr

from mmsearch.encode.query_language import NAMES
from mmsearch.inputs import clean
from mmsearch.search.match import WEAK
from mmsearch.search.request import SearchRequest
from mmsearch.search.results import Answer, Hit, Page, QueryError
from mmsearch.search.searcher import Searcher
from mmsearch.search.sorting import RELEVANCE
from mmsearch.ui.events import Events

log = logging.getLogger("mmsearch.ui")
SCORE_NOTE = {
    "vector": "scores: cosine similarity",
    "keyword": "scores: BM25",
    "hybrid": "scores: rank fusion, 1 = first by both keywords and embedding",
}
LINK_K_MAX = 48  # the Results slider's top


@dataclass
class View:
    """What the Search tab shows now: the request that made it (its next page is the same request further on),
    the hits shown (every page so far), where they stand, and each facet value's filter clause by its label."""

    asked: SearchRequest | None = None
    hits: list[Hit] = field(default_factory=list)
    page: Page = field(default_factory=Page)
    clauses: dict[str, dict[str, str]] = field(default_factory=dict)
    rows: list[dict] = field(default_factory=list)  # the results as JSON, every page so far
    said: tuple = ()  # how the status line names it: (what, min_score, say_mode, endpoint)
    first: int = 0  # the offset of the first page shown


def facet_choices(facets: dict | None) -> dict[str, dict[str, str]]:
    """Each facet's values as the UI offers them ("mug (12)", "20 – 50 (3)") with the filter clause a click adds."""
    out = {}
    for column, counted in (facets or {}).items():
        choices = {}
        if isinstance(counted, dict):
            for value, n in counted.items():
                choices[f"{value} ({n})"] = f"{column}={value}"
        else:
            for bucket in counted:
                low, high = bucket.get("from"), bucket.get("to")
                if not bucket["count"]:
                    continue
                label = (
                    f"under {high:g}" if low is None else f"{low:g} and over" if high is None else f"{low:g} – {high:g}"
                )
                clause = "; ".join(
                    ([f"{column}>={low:g}"] if low is not None else [])
                    + ([f"{column}<{high:g}"] if high is not None else [])
                )
                choices[f"{label} ({bucket['count']})"] = clause
        out[column] = choices
    return out


def three(handler):
    """``handler`` as the Gradio API's named event answers: the gallery, the results and the status line (the view
    is the tab's own). Its signature stays the handler's, so Gradio still hands it the request."""

    @functools.wraps(handler)
    def answered(*args, **kwargs):
        return handler(*args, **kwargs)[:3]

    return answered


def link_of(view: View | None) -> str:
    """The query string that opens ``view`` again (/?q=...&filters=...&sort=...&offset=...): text searches only."""
    asked = view.asked if view is not None else None
    if asked is None or asked.kind != "text":
        return ""
    fields = {
        "q": asked.q,
        "k": asked.k,
        "filters": asked.filters,
        "sort": asked.sort if asked.sort not in (None, RELEVANCE) else None,
        "mode": asked.mode,
        "offset": view.first or None,
    }
    return urlencode({name: value for name, value in fields.items() if value not in (None, "")})


def added(filters: str | None, clause: str) -> str:
    """``filters`` with ``clause`` after them (once)."""
    present = [c.strip() for c in (filters or "").split(";") if c.strip()]
    for part in clause.split(";"):
        if part.strip() not in present:
            present.append(part.strip())
    return "; ".join(present)


def status_line(answer: Answer, what: str, hidden: int, say_mode: bool, earlier: int = 0) -> str:
    """The line above the gallery: how many (with the ``earlier`` pages' ones), of how many in all, for what,
    whether they match, and what the scores mean."""
    if not answer and not earlier:
        return f"No results for {what}."
    shown = earlier + len(answer) - hidden
    more = f" · {answer.page.total} in all" if answer.page.next_offset is not None else ""
    if not shown:
        line = f"No results for {what} above the minimum score"
    elif answer.match == WEAK:
        line = f"No item matches {what} well; these are the closest{more} · click one for similar items"
    else:
        line = f"{shown} results for {what}{more} · click one for similar items"
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

    def _answer(
        self, endpoint: str, request, wanted, what: str, min_score, say_mode=False, query=None, before: View = None
    ):
        """Runs ``wanted`` (a function making the SearchRequest, so that its refusals pass the guard too) and shows
        the hits at or above ``min_score`` (the status says how many it hid), after ``before``'s when it is the
        previous page."""

        def work():
            started = time.perf_counter()
            asked: SearchRequest = wanted()
            floor = self._number(min_score, "The minimum score") or 0.0
            answer = self.searcher.search(asked)
            query_id = self.events.feedback.record(answer, asked, "ui", self.events.client(request), started)
            kept = [(i, h) for i, h in enumerate(answer, start=1) if h.score >= floor]  # positions in this answer
            where = f"{what} where {asked.filters}" if asked.filters else what
            rows = [h.public() | {"query_id": query_id, "position": i} for i, h in kept]
            earlier = before.hits if before is not None else []
            hits = earlier + [h for _, h in kept]
            status = status_line(answer, where, len(answer) - len(kept), say_mode, len(earlier))
            shown_rows = (before.rows if before is not None else []) + rows
            # A later page counts no facets: they count every match, so the first page's stay.
            clauses = before.clauses if before is not None else facet_choices(answer.page.facets)
            view = View(asked, hits, answer.page, clauses, shown_rows)
            view.said = (what, min_score, say_mode, endpoint)
            view.first = before.first if before is not None else answer.page.offset
            return (self.events.gallery(hits), shown_rows, status, view), answer

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
        sort: str = "",
        facets: str = "",
        offset: int = 0,
        request: gr.Request = None,
    ) -> tuple[list, list[dict], str, View]:
        """Words in a mode (vector, keyword or hybrid); with an image too, both blend by image_weight; ``sort`` by
        a column (-price: dearest first), from place ``offset``, counting ``facets``."""

        def wanted() -> SearchRequest:
            path = self.events.upload(image)
            fields = dict(q=query, k=k, filters=filters, mode=mode, keyword_weight=keyword_weight)
            fields |= dict(sort=sort, offset=offset or None, facets=facets)
            return self.searcher.request(**fields, image=path, image_weight=image_weight if path else None)

        words = clean(query).strip() if isinstance(query, str) else ""
        what = f'"{words}"' if words else "the uploaded image"
        if words and image:
            share = self.searcher.config.image_weight if image_weight in (None, "") else image_weight
            shown = f" (image weight {share:.2f})" if isinstance(share, (int, float)) else ""  # else refused below
            what += f" + the uploaded image{shown}"
        return self._answer("search_text", request, wanted, what, min_score, say_mode=True, query=query)

    def search_image(
        self,
        image: dict | str | None,
        k: float,
        min_score: float = 0.0,
        filters: str = "",
        sort: str = "",
        facets: str = "",
        request: gr.Request = None,
    ) -> tuple[list, list[dict], str, View]:
        """A picture alone. Gradio's own preprocessing would fail on a non-image upload with an opaque error, so the
        event runs with preprocess=False and the upload's file is decoded (and size-checked) by the searcher."""

        def wanted() -> SearchRequest:
            path = self.events.upload(image)
            if path is None:
                raise QueryError("Upload an image to search with.")
            return self.searcher.request(image=path, k=k, filters=filters, sort=sort, facets=facets)

        return self._answer("search_image", request, wanted, "the uploaded image", min_score)

    def similar(
        self,
        item_id: str,
        k: float,
        min_score: float = 0.0,
        filters: str = "",
        sort: str = "",
        facets: str = "",
        request: gr.Request = None,
    ) -> tuple[list, list[dict], str, View]:
        """The items most like an indexed one, by its stored embedding."""

        def wanted() -> SearchRequest:
            return self.searcher.request(item_id=item_id, k=k, filters=filters, sort=sort, facets=facets)

        return self._answer("similar", request, wanted, f"items like {item_id}", min_score)

    def more(self, view: View | None, request: gr.Request = None) -> tuple[list, list[dict], str, View]:
        """The next page of what the tab shows, after it."""
        if view is None or view.asked is None or view.page.next_offset is None:
            raise gr.Error("There are no more results for this search.", title="No more results")
        what, min_score, say_mode, endpoint = view.said
        asked = view.asked.but(offset=view.page.next_offset, facets=None)
        return self._answer(endpoint, request, lambda: asked, what, min_score, say_mode, before=view)

    def refiner(self, position: int):
        """The event of the ``position``-th facet's radio: a click on a value adds its filter to the filters and
        runs the search again from its top."""

        def refine(
            view: View | None, choice: str | None, filters: str, request: gr.Request = None
        ) -> tuple[list, list[dict], str, View, str]:
            columns = list(view.clauses) if view is not None else []
            column = columns[position] if position < len(columns) else None
            if view is None or view.asked is None or column is None or choice not in view.clauses[column]:
                raise gr.Error("Search first, then pick a value to narrow the results to.", title="Nothing to narrow")
            narrowed = added(filters, view.clauses[column][choice])
            return (*self.again(view, request, filters=narrowed), narrowed)

        return refine

    def resorted(self, view: View | None, sort: str, request: gr.Request = None) -> tuple[list, list[dict], str, View]:
        """What the tab shows, in another order, from its top."""
        if view is None or view.asked is None:
            return gr.update(), gr.update(), gr.update(), view
        return self.again(view, request, sort=sort)

    def again(self, view: View, request, **changes) -> tuple[list, list[dict], str, View]:
        """The view's search again from its top, with ``changes``, checked as a new request is."""
        what, min_score, say_mode, endpoint = view.said
        asked = view.asked.but(offset=None, **changes)
        return self._answer(endpoint, request, lambda: self._checked(asked), what, min_score, say_mode)

    def _checked(self, asked: SearchRequest) -> SearchRequest:
        """A changed request checked again, as a new one would be (its filter text and depth)."""
        fields = asked.model_dump(exclude_none=True) | ({"image": asked.image} if asked.image is not None else {})
        return self.searcher.request(**fields)

    def more_like_this(
        self, item_id: str, k: float, min_score: float = 0.0, filters: str = "", request: gr.Request = None
    ) -> tuple[list, list[dict], str, View]:
        """The Gradio API's old name of ``similar``: answered as it, with a warning in the log."""
        log.warning("the Gradio API's /more_like_this is now /similar; the old name will go")
        return self.similar(item_id, k, min_score, filters, request=request)

    def on_select(
        self,
        results: list[dict] | None,
        k: float,
        min_score: float,
        filters: str,
        sort: str,
        facets: str,
        evt: gr.SelectData,
        request=None,
    ) -> tuple:
        """A click on a result: kept as an event on its answer, then its similar items, and its pictures when it
        has several."""
        shown = (results or [])[evt.index]
        self.events.clicked(shown, request)
        similar = self.similar(shown["item_id"], k, min_score, filters, sort, facets, request)
        return (shown["item_id"], *similar, self.pictures_of(shown["item_id"], shown.get("title") or ""))

    def pictures_of(self, item_id: str, title: str) -> gr.Gallery:
        """A product's pictures, in its catalog's order, for the gallery under the results (hidden for one)."""
        index = self.searcher.snapshot.index
        paths = index.picture_paths(item_id) if item_id in index else []
        if len(paths) < 2:
            return gr.Gallery(value=None, visible=False)
        shown = [(self.events.pictures.path(p), f"{n} of {len(paths)}") for n, p in enumerate(paths, 1)]
        return gr.Gallery(value=shown, visible=True, label=f"{title}: {len(paths)} pictures", show_label=True)

    @staticmethod
    def shown(view: View | None, columns: int) -> tuple:
        """What the tab draws from a ``view``: each facet's values (the first ``columns`` facets: a radio each, with
        its column's name), "More results" while there are, and the view's link (its query string)."""
        clauses = list((view.clauses if view is not None else {}).items())
        radios = []
        for n in range(columns):
            if n < len(clauses) and clauses[n][1]:
                column, choices = clauses[n]
                radios.append(gr.Radio(choices=list(choices), value=None, label=column, visible=True))
            else:
                radios.append(gr.Radio(choices=[], value=None, visible=False))
        more = view is not None and view.page.next_offset is not None
        return (*radios, gr.Button(visible=more), link_of(view))

    def from_link(self, facets: str = "", request: gr.Request = None) -> tuple:
        """Runs the search of a shared link (/?q=red+striped+t-shirt&k=12&filters=category%3Dmug&sort=-price
        &offset=12&mode=keyword) when the page opens; its settings show in their inputs."""
        params = request.query_params if request else {}
        q = (params.get("q") or "").strip()
        if not q:
            return tuple([gr.update()] * 9)
        filters, sort, mode = params.get("filters") or "", params.get("sort") or "", params.get("mode") or None
        try:
            count = int(params.get("k") or self.searcher.config.top_k)
            count = min(max(count, 1), LINK_K_MAX)
            offset = int(params.get("offset") or 0)
            found = self.search_text(q, count, 0.0, filters, mode, None, None, None, sort, facets, offset, request)
            return (q, count, filters, sort or RELEVANCE, gr.update(value=mode) if mode else gr.update(), *found)
        except (ValueError, gr.Error) as exc:
            return (q, *[gr.update()] * 4, [], [], f"The link's search could not run: {exc}", None)
