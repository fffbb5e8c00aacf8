"""Pictures into a text tower's space through ImageNet's 1,000 classes, with no training (ConSE: Norouzi et al.,
"Zero-Shot Learning by Convex Combination of Semantic Embeddings", ICLR 2014).

Each class is captioned by its names (WordNet's lemmas) in prompt templates ("a photo of a {}."), and its vector is
the mean of the text tower's vectors for those captions. A picture's vector is the mix of its ``classes`` most likely
classes' vectors, weighted by their probabilities sharpened or softened by ``temperature`` (p ** (1 / T)).

The classes, templates and settings are data (assets/zero-shot/), chosen on the dev halves of the stamps and the
photographs (docs/zero-shot.md). Class vectors are computed once per text tower and kept in the user's cache.
"""

from __future__ import annotations

import csv
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mmsearch.atomic import atomic_write_npy
from mmsearch.resources import ASSETS_DIR, cache_dir

ZERO_SHOT_DIR = ASSETS_DIR / "zero-shot"
CLASSES_FILE = ZERO_SHOT_DIR / "imagenet-classes.tsv"
TEMPLATES_FILE = ZERO_SHOT_DIR / "templates.txt"
SETTINGS_FILE = ZERO_SHOT_DIR / "bridge.json"


@dataclass(frozen=True)
class BridgeSettings:
    classes: int = 20  # classes mixed per picture
    temperature: float = 1.0  # p ** (1 / T): below 1 sharpens toward the top class, above 1 spreads
    names: int = 3  # a class's first names used in captions (WordNet lists the common ones first)
    definition: bool = False  # also caption a class by its WordNet definition

    @classmethod
    def load(cls, path: Path = SETTINGS_FILE) -> BridgeSettings:
        return cls(**json.loads(Path(path).read_text()))


def class_names(path: Path = CLASSES_FILE) -> list[tuple[list[str], str]]:
    """Each class's names and definition, in the classifier's order."""
    with open(path, newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh, delimiter="\t"))
    return [([n.strip() for n in row["names"].split(",") if n.strip()], row["definition"]) for row in rows]


def templates(path: Path = TEMPLATES_FILE) -> list[str]:
    lines = [line.strip() for line in Path(path).read_text(encoding="utf-8").splitlines()]
    return [line for line in lines if line and not line.startswith("#")]


def captions(
    classes: list[tuple[list[str], str]], forms: list[str], settings: BridgeSettings
) -> tuple[list[str], np.ndarray]:
    """Every caption, and the class each belongs to."""
    texts, owners = [], []
    for index, (names, definition) in enumerate(classes):
        for name in names[: settings.names]:
            for form in forms:
                texts.append(form.format(name))
                owners.append(index)
        if settings.definition and definition:
            texts.append(f"{names[0]}: {definition}")
            owners.append(index)
    return texts, np.asarray(owners)


def class_vectors(encode, texts: list[str], owners: np.ndarray, batch: int = 256) -> np.ndarray:
    """The unit mean of each class's caption vectors (``encode``: texts -> unit rows)."""
    rows = np.concatenate([encode(texts[i : i + batch]) for i in range(0, len(texts), batch)])
    sums = np.zeros((int(owners.max()) + 1, rows.shape[1]), dtype=np.float64)
    np.add.at(sums, owners, rows)
    return _unit(sums)


def _unit(a: np.ndarray) -> np.ndarray:
    a = np.asarray(a, dtype=np.float64)
    return (a / np.maximum(np.linalg.norm(a, axis=-1, keepdims=True), 1e-12)).astype(np.float32)


class ClassBridge:
    """Maps ImageNet probabilities to unit vectors in one text tower's space."""

    def __init__(self, text_tower, settings: BridgeSettings | None = None):
        self.settings = settings or BridgeSettings.load()
        classes, forms = class_names(), templates()
        texts, owners = captions(classes, forms, self.settings)
        key = hashlib.sha256(
            json.dumps([text_tower.name, text_tower.sha256, texts, owners.tolist()]).encode()
        ).hexdigest()[:16]
        self.key = key
        cached = cache_dir("class-vectors") / f"{key}.npy"
        if cached.is_file():
            self.vectors = np.load(cached)
        else:
            self.vectors = class_vectors(text_tower.encode, texts, owners)
            try:
                cached.parent.mkdir(parents=True, exist_ok=True)
                atomic_write_npy(cached, self.vectors)
            except OSError:  # a read-only home: computed again next time (about 10 s), nothing lost
                pass

    def __call__(self, probabilities: np.ndarray) -> np.ndarray:
        p = np.asarray(probabilities, dtype=np.float64)
        k = min(self.settings.classes, p.shape[1])
        top = np.argpartition(-p, k - 1, axis=1)[:, :k]
        weights = np.take_along_axis(p, top, axis=1) ** (1.0 / self.settings.temperature)
        mixed = np.einsum("nk,nkd->nd", weights, self.vectors[top].astype(np.float64))
        return _unit(mixed)
