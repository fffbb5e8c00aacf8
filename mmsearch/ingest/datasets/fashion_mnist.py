"""Fashion-MNIST: 70,000 real Zalando product photos (28x28 greyscale) in ten categories, as a catalog
(``fashion-mnist``: the 10,000 test photos; ``fashion-mnist:train``: the 60,000), as training data, and as evaluation
material (zero-shot accuracy beside the published baselines, and two query sets labelled by category: its category
names, and shopper queries written by hand before anything was tuned, dev half for choosing and test half for
reporting).

Read from Debian's package ``dataset-fashion-mnist`` (the original idx files in /usr/share/datasets/fashion-mnist/)
when it is installed, else from the Hugging Face hub (``zalando-datasets/fashion_mnist``) when there is network.
The category names are the dataset's published ones, in label order.
"""

from __future__ import annotations

import gzip
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image
from tqdm.auto import tqdm

from mmsearch.atomic import atomic_write_text
from mmsearch.ingest.datasets._base import Dataset, Labelled, QuerySet
from mmsearch.ingest.errors import CatalogError
from mmsearch.resources import ASSETS_DIR

DEBIAN_DIR = Path("/usr/share/datasets/fashion-mnist")
ASSETS = ASSETS_DIR / "fashion-mnist"  # its templates, synonyms and query sets
HUB_NAME = "zalando-datasets/fashion_mnist"
CATEGORIES = (
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
)
SPLITS = {"train": "train", "test": "t10k"}  # our name -> the idx files' prefix
SOURCE = "fashion-mnist"  # the catalog spec: fashion-mnist (the test split) or fashion-mnist:train
MISSING = (
    "Fashion-MNIST is not installed and the hub cannot be reached ({reason}). Install Debian's package: "
    "apt-get install dataset-fashion-mnist (it puts the dataset in {dir}), or run where huggingface.co is reachable"
)


@dataclass
class Split:
    """One split's photos (uint8, N x 28 x 28) and labels (indices into CATEGORIES)."""

    name: str
    images: np.ndarray
    labels: np.ndarray

    def categories(self) -> list[str]:
        return [CATEGORIES[i] for i in self.labels]

    def item_ids(self) -> list[str]:
        return [f"fmnist-{self.name}-{i:05d}" for i in range(len(self.labels))]


def parse_spec(spec: str) -> str:
    """``fashion-mnist`` -> 'test'; ``fashion-mnist:train`` -> 'train'."""
    name, _, split = spec.partition(":")
    split = split or "test"
    if name != SOURCE or split not in SPLITS:
        raise CatalogError(f"{spec!r}: use {SOURCE} (the 10,000 test photos) or {SOURCE}:train (the 60,000)")
    return split


def read_idx(path: Path) -> np.ndarray:
    """An idx file (gzipped or not): big-endian magic (0, 0, type 0x08 = uint8, dimensions), sizes, then data."""
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as fh:
        data = fh.read()
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] != 0x08:
        raise CatalogError(f"{path} is not an idx file of unsigned bytes")
    dims = data[3]
    shape = tuple(int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(dims))
    body = np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * dims)
    if body.size != int(np.prod(shape)):
        raise CatalogError(f"{path} is truncated: {body.size} bytes for shape {shape}")
    return body.reshape(shape)


def load_split(split: str = "test", directory: Path = DEBIAN_DIR) -> Split:
    """The split from the idx files in ``directory``, else from the hub; a clear CatalogError when neither works."""
    if split not in SPLITS:
        raise CatalogError(f"Fashion-MNIST has the splits {', '.join(SPLITS)}, not {split!r}")
    directory = Path(directory)
    prefix = SPLITS[split]
    images_file = _first(directory, f"{prefix}-images-idx3-ubyte")
    labels_file = _first(directory, f"{prefix}-labels-idx1-ubyte")
    if images_file and labels_file:
        images, labels = read_idx(images_file), read_idx(labels_file)
        if len(images) != len(labels):
            raise CatalogError(f"{directory}: {len(images)} images but {len(labels)} labels")
        return Split(split, images, labels.astype(np.int64))
    return _from_hub(split, directory)


def _first(directory: Path, stem: str) -> Path | None:
    return next((p for p in (directory / f"{stem}.gz", directory / stem) if p.is_file()), None)


def _from_hub(split: str, directory: Path) -> Split:
    try:
        import datasets

        ds = datasets.load_dataset(HUB_NAME, split=split)
    except Exception as exc:  # offline, the hub's errors come in many types; all mean the same to a user
        raise CatalogError(MISSING.format(reason=f"{type(exc).__name__}", dir=directory)) from exc
    names = ds.features["label"].names
    if [n.lower() for n in names] != [c.lower() for c in CATEGORIES]:
        raise CatalogError(f"{HUB_NAME} has labels {names}, not Fashion-MNIST's {list(CATEGORIES)}")
    images = np.stack([np.asarray(img.convert("L")) for img in ds["image"]])
    return Split(split, images, np.asarray(ds["label"], dtype=np.int64))


def write_catalog(data_dir: Path, split: str = "test", directory: Path = DEBIAN_DIR) -> Path:
    """The split as a manifest (item_id, image, title, category) beside one PNG per photo; written once, the
    manifest last and atomically, so an interrupted run is finished by the next one and a finished one is reused."""
    out = Path(data_dir) / SOURCE / split
    manifest = out / "items.csv"
    if manifest.exists():
        return manifest
    data = load_split(split, directory)
    pictures = out / "images"
    pictures.mkdir(parents=True, exist_ok=True)
    ids = data.item_ids()
    for item_id, pixels in tqdm(zip(ids, data.images), total=len(ids), desc=f"writing Fashion-MNIST {split}"):
        path = pictures / f"{item_id}.png"
        if not path.exists():
            tmp = path.with_name(path.name + ".tmp")
            Image.fromarray(pixels, mode="L").save(tmp, format="PNG")
            tmp.replace(path)
    categories = data.categories()
    table = pd.DataFrame(
        {"item_id": ids, "image": [f"images/{i}.png" for i in ids], "title": categories, "category": categories}
    )
    atomic_write_text(manifest, table.to_csv(index=False))
    return manifest


class FashionMNIST(Dataset):
    def write_catalog(self, spec: str, data_dir: Path, settings) -> Path:
        return write_catalog(Path(data_dir), parse_spec(spec), _folder(settings))

    def labelled(self, split: str, settings) -> Labelled:
        photos = load_split(split, _folder(settings))
        return Labelled(photos.name, photos.images, photos.labels, CATEGORIES)


def _folder(settings) -> Path:
    """Where the idx files are: ``--fashion-mnist-dir``, Debian's folder by default."""
    return Path(getattr(settings, "fashion_mnist_dir", None) or DEBIAN_DIR)


DATASET = FashionMNIST(
    SOURCE,
    "Fashion-MNIST",
    {
        "categories": QuerySet("Category names", ASSETS / "category-queries.csv", ASSETS / "category-qrels.csv"),
        "shopper": QuerySet(
            "Shopper queries (written by hand)", ASSETS / "shopper-queries.csv", ASSETS / "shopper-qrels.csv"
        ),
    },
    templates=ASSETS / "templates.txt",
    synonyms=ASSETS / "synonyms.txt",
    # The dataset authors' (Xiao, Rasul and Vollgraf, 2017, and the dataset's README): their best scikit-learn
    # classifier, an SVC (C=10, RBF kernel), and people without fashion expertise (majority of three crowd workers on
    # 1,000 test photos).
    baselines={
        "best scikit-learn classifier in the Fashion-MNIST paper (SVC, C=10, RBF)": 0.897,
        "human, no fashion expertise (Fashion-MNIST's authors)": 0.835,
    },
)
