"""Builds or updates a search index: catalog -> encoder -> Feast (materialized) -> Faiss, written atomically to --out.

Run again on the same --out after the catalog changed, and only new pictures and pictures whose bytes changed are
encoded; removed items leave the index; listing changes are written without encoding. --full rebuilds from scratch.

    python index_build.py --catalog demo --model demo --out data/indexes/demo
    python index_build.py --catalog products.csv --model clip:ViT-L-14/openai --out data/indexes/products

Exit codes: 0 built, 2 bad arguments or unusable catalog/model, 1 unexpected failure.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from mmsearch import config as cfgmod
from mmsearch.build import COUNTS, BuildError, build_index, print_progress
from mmsearch.catalog import CatalogError
from mmsearch.encoders import EncoderError
from mmsearch.features import FeatureStoreError
from mmsearch.index_kinds import KINDS


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    cfgmod.add_arguments(parser, ["catalog", "model", "data_dir", "batch_size", "workers", "device", "demo_size",
                                  "hf_image_column", "hf_text_column", "hf_id_column", "duplicate_threshold",
                                  "keyword_fields", "full", "online_store", "embeddings", "embeddings_model"])
    parser.add_argument("--out", dest="index", type=Path, help="index directory to write or update")
    parser.add_argument("--index", dest="index_type", choices=list(KINDS),
                        help="Faiss index kind: auto (default: by size and memory), flat, hnsw or ivfpq")
    parser.add_argument("--ray", nargs="?", const="local", default=None,
                        help="encode with Ray Data: a local cluster, or the cluster at ADDRESS (ray://host:10001)")
    config = cfgmod.from_args(parser.parse_args(argv))
    try:
        built = build_index(config, progress=print_progress)
    except (BuildError, CatalogError, EncoderError, FeatureStoreError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    m = built.manifest
    print(f"{'built' if m['mode'] == 'full' else 'updated'} {built.path}: {m['item_count']} items "
          f"({', '.join(f'{c} {m[c]}' for c in COUNTS)}), {m['index_kind']} index, dimension {m['dimension']}, "
          f"model {m['model_id']}; {m['skipped']} rows skipped (see {built.path}/skipped.csv); "
          f"{m['build_seconds']} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
