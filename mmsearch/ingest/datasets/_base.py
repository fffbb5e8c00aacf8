"""What a named dataset brings: its pictures as a catalog (``--catalog NAME[:split]``), labelled photos to train on
and to measure zero-shot classification with (``--dataset NAME[:split]``), the labelled query sets that judge search
on its catalog, and the files that caption its categories. Each capability is optional: a dataset without labelled
photos answers None, one without query sets has none to offer.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np


@dataclass(frozen=True)
class Labelled:
    """One split's photos (uint8, N x H x W or N x H x W x 3), their labels (indices into ``categories``)."""

    name: str
    images: np.ndarray
    labels: np.ndarray
    categories: tuple[str, ...]


@dataclass(frozen=True)
class QuerySet:
    """Labelled queries (qid, query[, filters, split, form]) and their graded labels (qid, item_id or category,
    grade); ``title`` names the set for people."""

    title: str
    queries: Path
    qrels: Path


@dataclass(frozen=True)
class Dataset:
    name: str  # as catalog and dataset specs name it: NAME or NAME:split
    title: str  # for people
    query_sets: dict[str, QuerySet] = field(default_factory=dict)
    templates: Path | None = None  # prompt templates that caption a category ("a photo of a {}")
    synonyms: Path | None = None  # the categories' other words
    baselines: dict[str, float] = field(default_factory=dict)  # published accuracies beside zero-shot's
    unmatched: Path | None = None  # queries for things the catalog lacks (the match flag's negatives); None: the demo's
    default_split: str = "test"
    classified: str = "test split"  # which labelled photos zero-shot classification reads, in words ("" for all)

    def names(self, spec: str) -> bool:
        """Whether a catalog or dataset spec names this dataset."""
        return spec.split(":", 1)[0] == self.name

    def split(self, spec: str) -> str:
        return spec.partition(":")[2] or self.default_split

    def write_catalog(self, spec: str, data_dir: Path, settings) -> Path:
        """The catalog ``spec`` names, written under ``data_dir`` as a manifest (written once); its path."""
        raise NotImplementedError

    def labelled(self, split: str, settings) -> Labelled | None:
        """A split's labelled photos, or None when this dataset has none."""
        return None
