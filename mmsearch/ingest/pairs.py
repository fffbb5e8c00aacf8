"""Image-caption pairs to train on or measure with: Hugging Face datasets (hub or ``save_to_disk``) and captions files.

The figures made from them (Recall@K) are in mmsearch/train/validation.py."""

from __future__ import annotations

import hashlib
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from mmsearch.ingest.catalog import CatalogError
from mmsearch.ingest.images import DEFAULT_MAX_PIXELS, ImageError, check_header, load_image


@dataclass
class Pairs:
    """Images and their captions: ``caption_image[i]`` is the image (index into ``images``) of ``captions[i]``."""

    images: Sequence  # file paths, PIL images, or a LazyImages column
    captions: list[str]
    caption_image: np.ndarray

    def pictures(self, keep: Sequence[int]) -> Pairs:
        """These pairs with only the pictures at ``keep`` (in that order) and their captions."""
        keep = list(keep)
        new = np.full(len(self.images), -1)
        new[keep] = np.arange(len(keep))
        mine = new[self.caption_image] >= 0
        if isinstance(self.images, LazyImages):
            images = LazyImages(self.images.ds.select(keep), self.images.column)
        else:
            images = [self.images[i] for i in keep]
        return Pairs(images, [c for c, m in zip(self.captions, mine) if m], new[self.caption_image[mine]])

    def hold_out(self, share: float, most: int) -> tuple[Pairs, Pairs | None]:
        """(what training learns from, the held-out pairs): ``share`` of the pictures, ``most`` at the outside,
        chosen by the sha256 of each picture's path (its row in a Hugging Face dataset), so the same pictures stay
        out on every run and a picture's captions all fall on one side; None when nothing can be spared."""
        count = min(most, round(share * len(self.images)), len(self.images) - 1)
        if count < 1:
            return self, None
        keys = [im if isinstance(im, str) else str(n) for n, im in enumerate(self.images)]
        order = sorted(range(len(keys)), key=lambda n: hashlib.sha256(keys[n].encode()).hexdigest())
        out = set(order[:count])
        return (
            self.pictures([n for n in range(len(keys)) if n not in out]),
            self.pictures(sorted(out)),
        )


def parse_where(text: str) -> dict[str, str]:
    """``COLUMN=VALUE[,COLUMN=VALUE...]`` (the --where flags) as a dict; empty: no condition."""
    try:
        return dict(part.split("=", 1) for part in text.split(",") if part.strip())
    except ValueError:
        raise ValueError(f"--where takes COLUMN=VALUE[,COLUMN=VALUE...], not {text!r}") from None


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
    from mmsearch.ingest.catalog import read_catalog_table

    path = Path(source)
    table = read_catalog_table(path)
    for col, value in (where or {}).items():
        table = table[table[col].astype(str) == value]
    if image_column not in table.columns or caption_column not in table.columns:
        raise CatalogError(f"{source}: needs columns {image_column!r} and {caption_column!r}")
    images: list[str] = []
    index: dict[str, int] = {}
    captions, owner = [], []
    unreadable: dict[str, str] = {}
    for rec in table.to_dict("records"):
        image = str(
            Path(rec[image_column]) if Path(rec[image_column]).is_absolute() else path.parent / rec[image_column]
        )
        if image in unreadable:
            continue
        if image not in index:
            if limit is not None and len(images) >= limit:
                continue
            try:  # a picture that cannot be read is left out here, with its reason, not met mid-training
                check_header(image, DEFAULT_MAX_PIXELS)
            except ImageError as exc:
                unreadable[image] = str(exc)
                continue
            index[image] = len(images)
            images.append(image)
        for caption in _caption_list(rec[caption_column]):
            captions.append(caption)
            owner.append(index[image])
    if unreadable:
        said = "; ".join(f"{image}: {reason}" for image, reason in list(unreadable.items())[:3])
        more = f" and {len(unreadable) - 3} more" if len(unreadable) > 3 else ""
        print(
            f"warning: {source}: {len(unreadable)} picture(s) left out, they cannot be read ({said}{more})",
            file=sys.stderr,
        )
    if unreadable and not images:
        raise CatalogError(f"{source}: no readable picture among its rows")
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
