"""Two models side by side: the same query against each model's own index, and their evaluation reports in one table.

A model's report is ``evaluation.json`` in its index directory (``python -m mmsearch.evaluate --report``); for a
two-tower model without one, the held-out figures recorded when it was trained.
"""

from __future__ import annotations

import json
from pathlib import Path

from mmsearch.search.results import Hit, QueryError
from mmsearch.search.searcher import Searcher

REPORT_FILE = "evaluation.json"
COLUMNS = [
    "model",
    "items",
    "report",
    "attribute P@10",
    "kind",
    "colour",
    "pattern",
    "t→i R@1",
    "t→i R@5",
    "t→i R@10",
    "i→t R@1",
]


def model_report(searcher: Searcher) -> dict:
    index_dir = searcher.index.path
    if index_dir is not None and (Path(index_dir) / REPORT_FILE).exists():
        return json.loads((Path(index_dir) / REPORT_FILE).read_text()) | {"source": str(Path(index_dir) / REPORT_FILE)}
    model_dir = getattr(searcher.encoder, "path", None)
    if model_dir is not None and (Path(model_dir) / "twotower.json").exists():
        training = json.loads((Path(model_dir) / "twotower.json").read_text()).get("training", {})
        if "heldout_attribute_precision_at_10" in training:
            return {
                "precision_at_k": training["heldout_attribute_precision_at_10"],
                "per_attribute": training.get("heldout_per_attribute", {}),
                "source": "training record",
            }
    return {"source": "none (run python -m mmsearch.evaluate --report <index>/evaluation.json)"}


def _pct(value) -> str:
    return f"{100 * value:.1f}%" if isinstance(value, (int, float)) else "–"


def report_rows(searchers: list[Searcher]) -> list[list[str]]:
    rows = []
    for s in searchers:
        r = model_report(s)
        attrs = r.get("per_attribute", {})
        t2i, i2t = r.get("text_to_image", {}), r.get("image_to_text", {})
        rows.append(
            [
                s.encoder.model_id,
                f"{len(s.index):,}",
                r["source"],
                _pct(r.get("precision_at_k")),
                _pct(attrs.get("kind")),
                _pct(attrs.get("colour")),
                _pct(attrs.get("pattern")),
                _pct(t2i.get("R@1")),
                _pct(t2i.get("R@5")),
                _pct(t2i.get("R@10")),
                _pct(i2t.get("R@1")),
            ]
        )
    return rows


def compare(searchers: list[Searcher], query: str | None, image, k: int) -> list[list[Hit]]:
    """An uploaded image wins over text; one of the two is needed."""
    if not image and not (isinstance(query, str) and query.strip()):
        raise QueryError("Type a query or upload an image to compare the two models on.")
    fields = {"image": image} if image else {"q": query}
    return [s.search(s.request(**fields, k=k)) for s in searchers]
