"""The settings of ``python -m mmsearch.evaluate``: what is measured (the catalog, search and second model's settings
come from mmsearch/settings.py)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class EvaluateSettings:
    """What is measured"""

    ENV_PREFIX = "MMSEARCH_EVALUATE_"

    dataset: str = field(
        default="demo",
        metadata={
            "help": "demo (attribute precision on held-out renders), fashion-mnist (zero-shot accuracy on its test "
            "photos; the default with --catalog fashion-mnist), hf:<name or folder>[:split], or a captions file "
            "(.csv/.jsonl/.parquet) for Recall@K; Flickr30k 1k test: hf:nlphuji/flickr30k:test --where split=test"
        },
    )
    image_column: str = field(default="image", metadata={"help": "--dataset: the image column"})
    caption_column: str = field(default="caption", metadata={"help": "--dataset: the caption column"})
    where: str = field(
        default="",
        metadata={
            "help": "keep only rows with these values, COLUMN=VALUE[,COLUMN=VALUE...]",
            "metavar": "COLUMN=VALUE",
        },
    )
    limit: int = field(default=0, metadata={"help": "evaluate on the first N images (0: all)"})
    per_combo: int = field(default=12, metadata={"help": "demo: held-out renders per kind/colour/pattern"})
    report: Path | None = field(default=None, metadata={"help": "also write the figures as JSON here"})
    tracker: str = field(
        default="mlflow",
        metadata={
            "help": "where the run is logged (mlflow: a sqlite file in the data directory)",
            "choices": ("mlflow", "wandb", "none"),
        },
    )
    queries: str = field(
        default="",
        metadata={
            "help": "evaluate search instead: 'demo' (the generated labelled demo queries), 'handwritten' (queries "
            "written by hand in other phrasings), 'categories' or 'shopper' (Fashion-MNIST's category names and "
            "hand-written shopper queries), or a queries file (qid, query[, filters, split, form]) with --qrels; "
            "nDCG@10, Recall@10, MRR@10 and strict P@10 for vector, keyword and hybrid search with paired "
            "significance tests, written with a plot into the index directory"
        },
    )
    match: bool = field(
        default=False,
        metadata={
            "help": "evaluate the answers' match flag: the labelled queries (--queries, default the catalog's sets) "
            "against assets/unmatched-queries.csv; thresholds chosen on dev halves, precision/recall on test halves"
        },
    )
    duplicates: bool = field(
        default=False,
        metadata={
            "help": "count the index's byte-identical pictures, near copies by their pixels, and near-duplicates by "
            "embedding, and draw example pairs (duplicates.png in --out-dir or the index directory)"
        },
    )
    qrels: Path | None = field(default=None, metadata={"help": "graded labels for --queries: qid, item_id, grade"})
    judgments: bool = field(
        default=False,
        metadata={
            "help": "judge search on the raters' judgments in the server's database (MMSEARCH_DATABASE_URL, else "
            "the data directory's): every judged query in every mode (and --compare-model's too), nDCG@10, P@10 and "
            "how much of each system's top 10 is judged"
        },
    )
    judged_half: str = field(
        default="all",
        metadata={
            "choices": ("all", "train", "test"),
            "help": "--judgments: only the judged queries of this half (python -m mmsearch.train --judgments "
            "learns from the train half; measure a tuned model on the test half)",
        },
    )
    out_dir: Path | None = field(
        default=None,
        metadata={
            "help": "with --queries: write the report and plot here instead of into the index directory (where the "
            "app's Evaluation tab reads them)"
        },
    )
