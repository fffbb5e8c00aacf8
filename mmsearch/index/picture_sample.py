"""How a catalog's pictures look to a pretrained image tower, kept beside the index so that an uploaded picture unlike
all of them can be told, whatever model serves the catalog.

A catalog's own model may map every picture into its own small world: the demo model calls a photo of an astronaut a
good match for its renders of bags and mugs. A tower trained on ImageNet's photographs sees the difference. The build
keeps the tower's features of up to ``SIZE`` of the catalog's pictures (``pictures.npy``, float16) and the nearness
below which a picture is unlike the catalog: ``MARGIN`` times the first percentile of each sampled picture's nearness
to its nearest other (so 99% of the catalog's own pictures, and then some, stand above it). An upload's nearness is its
cosine to the nearest sampled picture.

Chosen on the demo (docs/zero-shot.md): its sampled renders' nearest-other cosines have a first percentile of 0.79,
its held-out renders stand at 0.77 or more, the 24 photographs of scikit-image and scikit-learn at 0.44 at most.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mmsearch.atomic import atomic_write_npy

FILE, ABOUT = "pictures.npy", "pictures.json"
SIZE = 512  # pictures sampled: about 8 s of the tower on 2 cores; the first percentile of 512 is 5 pictures
PERCENTILE, MARGIN = 1.0, 0.9
TOWER = "efficientnet-lite0@160"


@dataclass(frozen=True)
class PictureSample:
    features: np.ndarray  # unit rows, the tower's pooled features
    tower: str
    threshold: float

    @classmethod
    def of(cls, features: np.ndarray, tower: str = TOWER) -> PictureSample:
        features = _unit(features)
        if len(features) < 2:
            return cls(features, tower, -1.0)  # one picture says nothing about the catalog's spread
        near = features @ features.T
        np.fill_diagonal(near, -np.inf)
        return cls(features, tower, float(MARGIN * np.percentile(near.max(axis=1), PERCENTILE)))

    def nearness(self, features: np.ndarray) -> float:
        """The cosine of a picture's features to the nearest sampled picture."""
        return float(np.max(self.features.astype(np.float32) @ _unit(features)[0]))

    def familiar(self, features: np.ndarray) -> bool:
        return self.nearness(features) >= self.threshold

    def save(self, folder: Path) -> None:
        atomic_write_npy(Path(folder) / FILE, self.features.astype(np.float16))
        about = {"tower": self.tower, "threshold": self.threshold, "pictures": len(self.features)}
        (Path(folder) / ABOUT).write_text(json.dumps(about, indent=2))

    @classmethod
    def load(cls, folder: Path) -> PictureSample | None:
        """The index's sample; None for an index built before samples were kept (uploads are then judged by the
        model's own standing alone)."""
        try:
            about = json.loads((Path(folder) / ABOUT).read_text())
            return cls(np.load(Path(folder) / FILE), about["tower"], float(about["threshold"]))
        except (OSError, ValueError, KeyError):
            return None


def sampled_rows(count: int, size: int = SIZE, seed: int = 0) -> np.ndarray:
    """Which rows of a catalog of ``count`` to sample, in order."""
    if count <= size:
        return np.arange(count)
    return np.sort(np.random.default_rng(seed).choice(count, size, replace=False))


def _unit(features: np.ndarray) -> np.ndarray:
    f = np.atleast_2d(np.asarray(features, dtype=np.float32))
    return f / np.maximum(np.linalg.norm(f, axis=1, keepdims=True), 1e-12)
