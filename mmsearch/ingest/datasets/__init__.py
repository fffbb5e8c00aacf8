"""Datasets mmsearch knows by name, one module each (demo.py, fashion_mnist.py), behind the interfaces the rest
already uses: a catalog (ingest/catalog.py), labelled photos for training and zero-shot evaluation, and labelled
query sets (evaluate/quality.py). A module added here is a catalog ``--catalog`` takes by name; docs/layout.md shows
which to copy."""

from __future__ import annotations

from mmsearch.ingest.datasets._base import Dataset, Labelled, QuerySet
from mmsearch.plugins import discover

__all__ = ["Dataset", "Labelled", "QuerySet", "datasets", "find", "query_sets"]


def datasets() -> dict[str, Dataset]:
    return {m.DATASET.name: m.DATASET for m in discover(__name__)}


def find(spec: str) -> Dataset | None:
    """The dataset a catalog or dataset spec names (``fashion-mnist:train``), or None for a file, folder or hub
    dataset of one's own."""
    return next((d for d in datasets().values() if d.names(spec)), None)


def query_sets() -> dict[str, QuerySet]:
    """Every dataset's labelled query sets, by name."""
    return {name: qs for d in datasets().values() for name, qs in d.query_sets.items()}
