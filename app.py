"""mmsearch: multimodal product search in a Gradio app. ``python app.py`` serves the demo at http://127.0.0.1:7860."""
from __future__ import annotations

import argparse
import json
import sys

import gradio as gr

from mmsearch import config as cfgmod
from mmsearch.app_ui import build_ui
from mmsearch.build import BuildError, ensure_index
from mmsearch.catalog import CatalogError
from mmsearch.encoders import EncoderError, load_encoder
from mmsearch.index import IndexLoadError
from mmsearch.search import Searcher


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    cfgmod.add_arguments(parser, ["index", "model", "catalog", "data_dir", "host", "port", "device", "top_k",
                                  "search_mode", "online_store", "reload_interval", "keyword_weight", "rrf_k", "image_weight", "keyword_fields",
                                  "compare_model", "compare_index"])
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
    demo = build_ui(searcher, other)
    print(json.dumps({"model": searcher.encoder.model_id, "items": len(searcher.index),
                      "url": f"http://{config.host}:{config.port}"}))
    demo.queue(default_concurrency_limit=4).launch(
        server_name=config.host, server_port=config.port, allowed_paths=searcher.index.manifest.get("image_roots", []),
        max_file_size=f"{config.max_upload_mb}mb", footer_links=["api"], theme=gr.themes.Soft())
    return 0


if __name__ == "__main__":
    sys.exit(main())
