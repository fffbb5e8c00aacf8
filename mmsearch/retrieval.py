"""Image-caption retrieval evaluation: text->image and image->text Recall@K and median rank.

The protocol of the CLIP and Flickr30k papers: every caption is a text query whose one right answer is its image; every
image is a query whose right answers are all of its captions (the best-ranked one counts). Ranks are 1-based and count
only strictly better candidates, so a tie never costs a query its hit.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from .catalog import CatalogError, load_image
from .encoders import Encoder, encode_image_files, encode_images

KS = (1, 5, 10)


@dataclass
class Pairs:
    """Images and their captions: ``caption_image[i]`` is the image (index into ``images``) of ``captions[i]``."""

    images: Sequence  # file paths, PIL images, or a LazyImages column
    captions: list[str]
    caption_image: np.ndarray


def ranks_text_to_image(sim: np.ndarray, caption_image: np.ndarray) -> np.ndarray:
    """sim is captions x images; returns each caption's rank of its own image."""
    truth = sim[np.arange(len(sim)), caption_image]
    return 1 + (sim > truth[:, None]).sum(axis=1)


def ranks_image_to_text(sim: np.ndarray, caption_image: np.ndarray) -> np.ndarray:
    """For each image, the rank of its best-placed caption among all captions."""
    ranks = np.empty(sim.shape[1], dtype=np.int64)
    for j in range(sim.shape[1]):
        column = sim[:, j]
        own = column[caption_image == j]
        if own.size == 0:
            raise ValueError(f"image {j} has no caption")
        ranks[j] = 1 + (column > own.max()).sum()
    return ranks


def summarize(ranks: np.ndarray, ks=KS) -> dict:
    out = {f"R@{k}": float(np.mean(ranks <= k)) for k in ks}
    out["median_rank"] = float(np.median(ranks))
    out["queries"] = int(len(ranks))
    return out


def retrieval_metrics(sim: np.ndarray, caption_image: np.ndarray, ks=KS) -> dict:
    caption_image = np.asarray(caption_image)
    return {
        "text_to_image": summarize(ranks_text_to_image(sim, caption_image), ks),
        "image_to_text": summarize(ranks_image_to_text(sim, caption_image), ks),
    }


def evaluate_pairs(encoder: Encoder, pairs: Pairs, batch_size: int = 64, workers: int = 2) -> dict:
    """Encodes both sides and scores them; images that cannot be decoded fail loudly (the figures would be wrong)."""
    if len(pairs.images) and isinstance(pairs.images[0], (str, Path)):
        image_emb, failed = encode_image_files(encoder, [str(p) for p in pairs.images], batch_size, workers)
        if failed:
            raise CatalogError(f"{len(failed)} evaluation images cannot be decoded, e.g. {next(iter(failed.values()))}")
    else:
        image_emb = np.concatenate(
            [encode_images(encoder, pairs.images[i : i + batch_size]) for i in range(0, len(pairs.images), batch_size)]
        )
    text_emb = np.concatenate(
        [
            encoder.encode_text(pairs.captions[i : i + batch_size])
            for i in tqdm(range(0, len(pairs.captions), batch_size), desc="encoding captions")
        ]
    )
    return retrieval_metrics(text_emb @ image_emb.T, pairs.caption_image) | {
        "images": len(pairs.images),
        "captions": len(pairs.captions),
    }


def load_pairs(
    source: str,
    image_column: str = "image",
    caption_column: str = "caption",
    where: dict[str, str] | None = None,
    limit: int | None = None,
) -> Pairs:
    """Image-caption pairs from ``hf:<name or saved folder>[:split]`` or a captions file (.csv/.jsonl/.parquet with an
    image path column and a caption column; several rows or a list per image give several captions).

    ``where`` keeps rows whose columns equal the given values, e.g. {"split": "test"} for Flickr30k's Karpathy test
    split as published in one table; ``limit`` keeps the first N images."""
    if source.startswith("hf:"):
        return _hf_pairs(source, image_column, caption_column, where or {}, limit)
    from .catalog import read_manifest

    path = Path(source)
    table = read_manifest(path)
    for col, value in (where or {}).items():
        table = table[table[col].astype(str) == value]
    if image_column not in table.columns or caption_column not in table.columns:
        raise CatalogError(f"{source}: needs columns {image_column!r} and {caption_column!r}")
    images: list[str] = []
    index: dict[str, int] = {}
    captions, owner = [], []
    for rec in table.to_dict("records"):
        image = str(
            Path(rec[image_column]) if Path(rec[image_column]).is_absolute() else path.parent / rec[image_column]
        )
        if image not in index:
            if limit is not None and len(images) >= limit:
                continue
            index[image] = len(images)
            images.append(image)
        for caption in _caption_list(rec[caption_column]):
            captions.append(caption)
            owner.append(index[image])
    return Pairs(images, captions, np.asarray(owner))


def _caption_list(value) -> list[str]:
    if isinstance(value, (list, tuple, np.ndarray)):
        return [str(v) for v in value if str(v).strip()]
    return [str(value)] if str(value).strip() and not pd.isna(value) else []


def _hf_pairs(source: str, image_column: str, caption_column: str, where: dict[str, str], limit: int | None) -> Pairs:
    import datasets

    body = source[len("hf:") :]
    name, split = body.rsplit(":", 1) if ":" in body else (body, "test")
    local = Path(name)
    if local.is_dir():
        ds = datasets.load_from_disk(str(local))
        ds = ds[split] if isinstance(ds, datasets.DatasetDict) else ds
    else:
        ds = datasets.load_dataset(name, split=split)
    for col, value in where.items():
        ds = ds.filter(lambda v, value=value: str(v) == value, input_columns=[col])
    if limit is not None:
        ds = ds.select(range(min(limit, len(ds))))
    captions, owner = [], []
    for n, value in enumerate(ds[caption_column]):  # the caption column alone: no image is decoded here
        for caption in _caption_list(value):
            captions.append(caption)
            owner.append(n)
    return Pairs(LazyImages(ds, image_column), captions, np.asarray(owner))


class LazyImages:
    """A dataset's image column, decoded only when an image is asked for: Flickr30k's 31k images stay on disk."""

    def __init__(self, ds, column: str):
        self.ds, self.column = ds, column

    def __len__(self) -> int:
        return len(self.ds)

    def __getitem__(self, i):
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(len(self)))]
        return load_image(self.ds[int(i)][self.column])
