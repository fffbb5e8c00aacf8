"""The demo catalog: product pictures rendered offline (ingest/demo.py), 8 kinds x 10 colours x 4 patterns, with
its two labelled query sets: queries generated from the items' true attributes in the catalog's own words
(evaluate/demo_labels.py), and queries written by hand in phrasings the generator does not produce (plurals, word
orders, everyday words, typos), never used to choose anything."""

from __future__ import annotations

from pathlib import Path

from mmsearch.ingest import demo
from mmsearch.ingest.datasets._base import Dataset, QuerySet
from mmsearch.resources import ASSETS_DIR


class Demo(Dataset):
    def write_catalog(self, spec: str, data_dir: Path, settings) -> Path:
        return demo.write_catalog(Path(data_dir) / "demo", n=getattr(settings, "demo_size", 2048))


DATASET = Demo(
    "demo",
    "demo",
    {
        "demo": QuerySet("Generated demo queries", ASSETS_DIR / "demo-queries.csv", ASSETS_DIR / "demo-qrels.csv"),
        "handwritten": QuerySet(
            "Hand-written queries (other phrasings)",
            ASSETS_DIR / "handwritten-queries.csv",
            ASSETS_DIR / "handwritten-qrels.csv",
        ),
    },
)
