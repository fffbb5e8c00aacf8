"""The whole service on one port: the HTTP side (mmsearch/serve: REST, metrics, health) with the Gradio UI
(mmsearch/ui) mounted at ``/``, both behind one guard, so a client's REST calls and UI events spend tokens from the
same bucket and are counted, refused and logged the same way."""

from __future__ import annotations

from pathlib import Path

import gradio as gr
from fastapi import FastAPI
from gradio.utils import get_upload_folder
from threadpoolctl import threadpool_limits

from mmsearch.builder.pipeline import BuildError, ensure_index
from mmsearch.encode.encoders import EncoderError, load_encoder
from mmsearch.evaluate import reports
from mmsearch.feedback.interleave import Interleaved
from mmsearch.feedback.loop import Feedback
from mmsearch.index.vectors import IndexLoadError
from mmsearch.ingest.catalog import CatalogError
from mmsearch.ingest.phrasing import SynonymsError
from mmsearch.resources import DEMO_MODEL_DIR, IN_CHECKOUT, PACKAGE_DIR, SOURCE_ROOT
from mmsearch.search.background import BackgroundError
from mmsearch.search.request import MODES
from mmsearch.search.searcher import Searcher
from mmsearch.serve.auth import parse_auth
from mmsearch.serve.deployment import Deployment
from mmsearch.serve.gradio_guard import GradioGuard, event_inputs
from mmsearch.serve.guard import Guard, SearchQueue, TokenBuckets
from mmsearch.serve.image_work import ImageWork
from mmsearch.serve.server import create_api
from mmsearch.settings import Settings, replace
from mmsearch.ui.blocks import CSS, build_ui
from mmsearch.ui.judge_tab import KEYS_JS


def open_searchers(config: Settings) -> tuple[Searcher, Searcher | None, Searcher | None]:
    """The served searcher (its index built first when missing), the Compare tab's second one (--compare-model) and
    the rival --interleave compares online (the second one when it names the same model); OPENING_ERRORS say why
    not, in a line for people."""
    encoder = load_encoder(config.model, config.device)
    config = ensure_index(config, encoder)
    # numpy's OpenBLAS threads spin after each call and take the cores from torch's text tower: an uncached
    # MiniLM search took 24 ms instead of 12 (p50 on 2 cores, the stamps); a search's own numpy work is small.
    threadpool_limits(1, user_api="blas")
    searcher = Searcher.open(config, encoder)
    reports.ensure(searcher)  # a bundled catalog's figures, for the Evaluation tab from the first start
    other = None
    if config.compare_model:
        second = load_encoder(config.compare_model, config.device)
        second_cfg = ensure_index(replace(config, model=config.compare_model, index=config.compare_index), second)
        other = Searcher.open(second_cfg, second)
    rival = None  # --interleave <model>: the second ranker compared online
    if config.interleave and config.interleave not in MODES:
        if other is not None and config.interleave == config.compare_model:
            rival = other
        else:
            third = load_encoder(config.interleave, config.device)
            third_cfg = ensure_index(replace(config, model=config.interleave, index=None), third)
            rival = Searcher.open(third_cfg, third)
    return searcher, other, rival


# What stops a server before it serves, each with a message for people.
OPENING_ERRORS = (EncoderError, IndexLoadError, BuildError, CatalogError, BackgroundError, SynonymsError)


def private_paths(config: Settings, searchers: list[Searcher]) -> list[str]:
    """What Gradio must never serve, even if a path to it is guessed: the data directory (Feast stores, indexes),
    the indexes and models wherever they are, and the project's sources."""
    paths = {Path(config.data_dir), PACKAGE_DIR, DEMO_MODEL_DIR, *([SOURCE_ROOT] if IN_CHECKOUT else [])}
    for s in searchers:
        paths.add(Path(s.index.path))
        paths.add(Path(s.store.data_dir))
        model_dir = getattr(s.encoder, "path", None)
        if model_dir:
            paths.add(Path(model_dir))
    return sorted(str(p.resolve()) for p in paths)


def create_app(searcher: Searcher, other: Searcher | None = None, rival: Searcher | None = None) -> FastAPI:
    """The app ``python app.py`` serves: ``other`` is the Compare tab's second model, ``rival`` the model that
    --interleave compares online (it may be ``other``)."""
    config = searcher.config
    credentials = parse_auth(config.auth)
    guard = Guard(TokenBuckets(config.rate_limit, config.rate_burst), config.log_queries)
    feedback = Feedback(config, [s for s in (searcher, other) if s is not None], users=credentials is not None)
    served = interleaved(searcher, rival)
    deployment = Deployment(
        served,
        feedback,
        guard,
        credentials,
        SearchQueue(config.concurrency, config.max_queue),
        config.max_upload_mb * 2**20,
        ImageWork(config.image_workers, config.image_queue),
    )
    app = create_api(deployment)
    demo = build_ui(served, other, guard, feedback)
    # Gradio's own queue bounds its events as SearchQueue bounds the REST routes.
    demo.queue(default_concurrency_limit=config.concurrency, max_size=config.max_queue)
    searchers = [s for s in (searcher, other, rival) if s is not None]
    # Gradio copies any file an event's input names into its cache before the event runs (its own check is off
    # when it is mounted rather than launched): the middleware refuses such inputs before Gradio sees them.
    app.add_middleware(GradioGuard, upload_dir=get_upload_folder(), inputs=event_inputs(demo))
    return gr.mount_gradio_app(
        app,
        demo,
        path="/",
        auth=credentials,
        allowed_paths=[],
        blocked_paths=private_paths(config, searchers),
        max_file_size=f"{config.max_upload_mb}mb",
        footer_links=["api"],
        theme=gr.themes.Soft(),
        css=CSS,
        head=KEYS_JS,
        mcp_server=config.mcp,
    )


def interleaved(searcher: Searcher, rival: Searcher | None):
    """The served searcher, or with --interleave the searcher that answers a share of text searches from it and a
    second ranker interleaved (a second model's searcher, or the served one in another mode)."""
    config = searcher.config
    if not config.interleave or config.interleave_share <= 0:
        return searcher
    mode = config.interleave if config.interleave in MODES else None
    return Interleaved(searcher, None if mode else rival, mode, config.interleave_share)
