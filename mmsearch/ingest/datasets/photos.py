"""Twenty-four real photographs, the ones scikit-image's and scikit-learn's wheels ship (a cat, a cup of coffee, a
rocket, a motorcycle, an astronaut, the moon, a Chinese temple, a flower, micrographs, textures ...), as a small
catalog (``photos``) saved under meaningless names, so that only the pictures can answer, and a query set of twelve
questions with one right answer each (MRR), written by hand, dev and test halves.

The photographs are written once into the data directory from the installed packages (BSD-licensed: scikit-image's
data and scikit-learn's sample images)."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

from mmsearch.atomic import atomic_write_text
from mmsearch.ingest.datasets._base import Dataset, QuerySet
from mmsearch.ingest.errors import CatalogError
from mmsearch.resources import ASSETS_DIR

SOURCE = "photos"
ASSETS = ASSETS_DIR / "photos"
# scikit-image's data functions, by the name the query set judges with (chelsea is the same cat as cat: left out).
SKIMAGE = (
    "astronaut brick camera cat cell clock coffee coins colorwheel grass gravel horse hubble_deep_field "
    "immunohistochemistry logo microaneurysms moon page retina rocket stereo_motorcycle text"
).split()
SKLEARN = ("china.jpg", "flower.jpg")


def pictures() -> dict[str, np.ndarray]:
    """Each photograph by its name, as uint8 pixels."""
    try:
        import skimage.data
        from sklearn.datasets import load_sample_images
    except ImportError as exc:
        raise CatalogError(f"the photos come with scikit-image and scikit-learn: pip install them ({exc})") from exc
    found = {}
    for name in SKIMAGE:
        pixels = getattr(skimage.data, name)()
        pixels = pixels[0] if isinstance(pixels, tuple) else pixels  # the motorcycle is a stereo pair
        if pixels.dtype == bool:
            pixels = (~pixels).astype(np.uint8) * 255  # the horse: a black silhouette on white
        found[name] = pixels
    sample = load_sample_images()
    for filename, pixels in zip(sample.filenames, sample.images):
        found[Path(filename).stem] = pixels
    return found


def meaningless(name: str) -> str:
    return "photo-" + hashlib.sha256(name.encode()).hexdigest()[:8]


def write_catalog(data_dir: Path) -> Path:
    out = Path(data_dir) / SOURCE
    manifest = out / "items.csv"
    if manifest.exists():
        return manifest
    out.mkdir(parents=True, exist_ok=True)
    rows = []
    for name, pixels in pictures().items():
        item_id = meaningless(name)
        path = out / f"{item_id}.png"
        tmp = path.with_name(f".{path.name}.tmp")
        Image.fromarray(pixels).save(tmp, format="PNG")
        tmp.replace(path)
        rows.append({"item_id": item_id, "image": path.name, "title": item_id})
    atomic_write_text(manifest, pd.DataFrame(rows).to_csv(index=False))
    return manifest


class Photos(Dataset):
    def write_catalog(self, spec: str, data_dir: Path, settings) -> Path:
        if spec != SOURCE:
            raise CatalogError(f"{spec!r}: the photographs have one catalog, {SOURCE}")
        return write_catalog(Path(data_dir))


DATASET = Photos(
    SOURCE,
    "Photographs from scikit-image and scikit-learn",
    {"photos": QuerySet("Photos: one right answer each", ASSETS / "queries.csv", ASSETS / "qrels.csv")},
)
