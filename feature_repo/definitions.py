"""Feast definitions for ``feast apply`` from a shell; mmsearch itself applies the same objects from Python.

The objects are built in one place (mmsearch/store/features.py) so the CLI and the app can never disagree.
"""

import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from mmsearch.store.features import definitions  # noqa: E402

_data_dir = Path(os.environ.get("MMSEARCH_DATA_DIR", Path(__file__).resolve().parent.parent / "data"))
catalog, item, revision, model, image_hash, catalog_items, image_embeddings = definitions(_data_dir)
