"""mmsearch: multimodal product search. ``python app.py`` serves the demo at http://127.0.0.1:7860: the Gradio app at
``/``, the REST API at ``/api`` (docs at ``/docs``), ``/metrics``, ``/healthz`` and ``/readyz``."""
from __future__ import annotations

import argparse
import json
import sys

from mmsearch import config as cfgmod
from mmsearch.build import BuildError, ensure_index
from mmsearch.catalog import CatalogError
from mmsearch.encoders import EncoderError, load_encoder
from mmsearch.index import IndexLoadError
from mmsearch.search import Searcher
from mmsearch.server import create_app, serve


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    cfgmod.add_arguments(parser, ["index", "model", "catalog", "data_dir", "host", "port", "device", "top_k",
                                  "search_mode", "online_store", "reload_interval", "keyword_weight", "rrf_k",
                                  "image_weight", "keyword_fields", "compare_model", "compare_index",
                                  "concurrency", "max_queue", "rate_limit", "rate_burst", "auth", "log_queries",
                                  "query_cache", "listing_cache", "synonyms"])
    config = cfgmod.from_args(parser.parse_args(argv))
    try:
        encoder = load_encoder(config.model, config.device)
        config = ensure_index(config, encoder)
        searcher = Searcher.open(config, encoder)
        other = None
        if config.compare_model:
            second = load_encoder(config.compare_model, config.device)
            second_cfg = ensure_index(cfgmod.replace(config, model=config.compare_model, index=config.compare_index),
                                      second)
            other = Searcher.open(second_cfg, second)
    except (EncoderError, IndexLoadError, BuildError, CatalogError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    for s in (searcher, other):  # a rebuilt or updated index is swapped in without a restart
        if s is not None:
            s.watch()
    try:
        app = create_app(searcher, other)
    except ValueError as exc:  # a malformed MMSEARCH_AUTH
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(json.dumps({"model": searcher.encoder.model_id, "items": len(searcher.index),
                      "url": f"http://{config.host}:{config.port}", "api_docs": f"http://{config.host}:{config.port}/docs",
                      "auth": bool(config.auth)}), flush=True)
    serve(app, config.host, config.port)
    return 0


if __name__ == "__main__":
    sys.exit(main())
