"""Search as tools: typed functions for scripts and agents, registered with ``gr.api``.

They show in the app's API docs (``gradio_client``) and, with ``--mcp``, as Model Context Protocol tools at
``/gradio_api/mcp/`` (Gradio's MCP server reads their type hints and the Args sections below). Unlike the UI's
events they answer JSON text: no gallery pictures to download, picture URLs a client can open. Text, because Gradio's
MCP server hands a tool's value to the agent as ``str(value)``, and a Python repr is not what an agent should parse.
"""

from __future__ import annotations

import json
import time

import gradio as gr
from gradio.data_classes import FileData

from mmsearch.search.results import Answer, Listing, QueryError
from mmsearch.search.searcher import Searcher
from mmsearch.ui.events import Events


def _absolute(shown: dict, request: gr.Request | None) -> dict:
    """A hit or listing with a picture URL an agent can fetch: the server's own address in front of the REST route."""
    root = str(request.request.base_url).rstrip("/") if request is not None and request.request is not None else ""
    return shown | {"image_url": root + shown["image_url"]}


def register_tools(searcher: Searcher, events: Events) -> None:
    """Adds the four tools to the Blocks being built (call inside ``with gr.Blocks()``)."""

    def answer(endpoint: str, request: gr.Request | None, wanted) -> str:
        """JSON text of a search's ``{"query_id", "match", "mode", "results", "next_offset", ...}`` through the guard (results with
        absolute picture URLs; match ``weak`` when nothing in the catalog matches well). ``wanted`` makes the
        checked request, so that its refusals pass the guard too."""

        def found():
            started = time.perf_counter()
            asked = wanted()
            result: Answer = searcher.search(asked)
            events.feedback.record(result, asked, "tool", events.client(request), started)
            shown = result.public()
            shown["results"] = [_absolute(h, request) for h in shown["results"]]
            return shown, result

        return json.dumps(events.run(endpoint, request, found), ensure_ascii=False)

    def search_products(
        query: str,
        k: int = 10,
        mode: str = "hybrid",
        filters: str = "",
        offset: int = 0,
        sort: str = "",
        facets: str = "",
        request: gr.Request = None,
    ) -> str:
        """Search the product catalog with words; returns the best matches first.

        Args:
            query: what to look for, as a shopper would type it, e.g. "red striped t-shirt"; a word starting with '-' excludes what it names, e.g. "sneaker -white".
            k: how many products to return, 1 to 100.
            mode: "hybrid" (keywords and image embeddings fused; the default), "vector" (embeddings only, best for colours and looks) or "keyword" (BM25 over titles and descriptions).
            filters: optional conditions on catalog columns separated by ';', e.g. "category=mug; colour=red|blue; price<=20".
            offset: skip this many results, for the next page: pass the answer's next_offset.
            sort: "" for relevance, or a column of numbers or dates, e.g. "price", or "-price" for the dearest first.
            facets: optional columns to count the matches by, separated by commas, e.g. "category,price".
        Returns:
            JSON: results (a list of products, item_id, score, title, image_url, price, category, description, picture_text (the words printed in the picture, where read), image_urls (every picture of the product), metadata, matched_image_url (its picture closest to the query), similarity and keyword_score), next_offset, total and, when asked, facets.
        """
        return answer(
            "tool_search_products",
            request,
            lambda: searcher.request(q=query, k=k, mode=mode, filters=filters, offset=offset, sort=sort, facets=facets),
        )

    def search_by_image(
        image: FileData,
        k: int = 10,
        filters: str = "",
        offset: int = 0,
        sort: str = "",
        facets: str = "",
        request: gr.Request = None,
    ) -> str:
        """Find the products that look most like a picture.

        Args:
            image: the picture, as an http(s) URL or an uploaded file (PNG, JPEG, WebP, ...).
            k: how many products to return, 1 to 100.
            filters: optional conditions on catalog columns separated by ';', e.g. "category=sneaker; price<=80".
            offset: skip this many results, for the next page: pass the answer's next_offset.
            sort: "" for likeness, or a column of numbers or dates, e.g. "price", or "-price" for the dearest first.
            facets: optional columns to count the matches by, separated by commas, e.g. "category,price".
        Returns:
            JSON: results (a list of products, most similar first, item_id, score (cosine similarity), title, image_url, price, category, description, picture_text, image_urls, metadata, matched_image_url), next_offset, total and, when asked, facets.
        """

        def wanted():
            path = events.upload(image)
            if path is None:
                raise QueryError("Send a picture to search with: an http(s) URL or an uploaded file.")
            return searcher.request(image=path, k=k, filters=filters, offset=offset, sort=sort, facets=facets)

        return answer("tool_search_by_image", request, wanted)

    def similar_products(
        item_id: str,
        k: int = 10,
        filters: str = "",
        offset: int = 0,
        sort: str = "",
        facets: str = "",
        request: gr.Request = None,
    ) -> str:
        """Find the products that look most like a product already in the catalog (similar items).

        Args:
            item_id: the catalog id of the product, as returned by the other tools.
            k: how many products to return, 1 to 100 (the product itself comes first, with score 1).
            filters: optional conditions on catalog columns separated by ';', e.g. "price<=20".
            offset: skip this many results, for the next page: pass the answer's next_offset.
            sort: "" for likeness, or a column of numbers or dates, e.g. "price", or "-price" for the dearest first.
            facets: optional columns to count the matches by, separated by commas, e.g. "category,price".
        Returns:
            JSON: the same fields as search_products.
        """
        return answer(
            "tool_similar_products",
            request,
            lambda: searcher.request(item_id=item_id, k=k, filters=filters, offset=offset, sort=sort, facets=facets),
        )

    def get_product(item_id: str, request: gr.Request = None) -> str:
        """Look up one product of the catalog by its id.

        Args:
            item_id: the catalog id of the product, as returned by the search tools.
        Returns:
            JSON: the product, item_id, title, image_url, price, category, description, picture_text, image_urls and every other catalog column under metadata.
        """

        def found():
            listing = searcher.item(item_id)
            return _absolute(listing.public(Listing.PUBLIC), request), listing

        return json.dumps(events.run("tool_get_product", request, found), ensure_ascii=False)

    for tool in (search_products, search_by_image, similar_products, get_product):
        gr.api(tool, api_name=tool.__name__)
