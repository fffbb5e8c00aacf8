"""Builds a search index: catalog -> encoder -> Feast (materialized) -> Faiss, written atomically to --out.

    python index_build.py --catalog demo --model demo --out data/indexes/demo
    python index_build.py --catalog products.csv --model clip:ViT-L-14/openai --out data/indexes/products

Exit codes: 0 built, 2 bad arguments or unusable catalog/model, 1 unexpected failure.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from mmsearch import config as cfgmod
from mmsearch.build import BuildError, build_index, print_progress
from mmsearch.catalog import CatalogError
from mmsearch.encoders import EncoderError


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    cfgmod.add_arguments(parser, ["catalog", "model", "data_dir", "batch_size", "workers", "device", "demo_size",
                                  "hf_image_column", "hf_text_column", "hf_id_column", "duplicate_threshold",
                                  "keyword_fields"])
    parser.add_argument("--out", dest="index", type=Path, help="index directory to write")
    parser.add_argument("--index", dest="index_type", choices=["flat"], help="Faiss index kind (default flat)")
    config = cfgmod.from_args(parser.parse_args(argv))
    try:
        built = build_index(config, progress=print_progress)
    except (BuildError, CatalogError, EncoderError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    m = built.manifest
    print(f"built {built.path}: {m['item_count']} items, dimension {m['dimension']}, model {m['model_id']}; "
          f"{m['skipped']} rows skipped (see {built.path}/skipped.csv)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
