"""Image files encoded in batches, decoded and resized in DataLoader worker processes while the model runs: how a
build encodes a catalog on one machine (ray_data.py spreads the same over a Ray cluster)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset
from tqdm.auto import tqdm

from mmsearch.encode.encoders import Encoder, preprocessed_side
from mmsearch.ingest.images import DEFAULT_MAX_PIXELS, ImageError, load_image


class _ImageFiles(Dataset):
    def __init__(self, paths: list[str], preprocess, max_pixels: int):
        self.paths, self.preprocess, self.max_pixels = paths, preprocess, max_pixels
        self.svg_side = preprocessed_side(preprocess)  # an SVG drawn at the side the model reads

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, i: int):
        try:
            return i, self.preprocess(load_image(self.paths[i], self.max_pixels, svg_side=self.svg_side)), None
        except ImageError as exc:
            return i, None, str(exc)


def _collate(batch):
    ok = [(i, x) for i, x, _ in batch if x is not None]
    bad = [(i, err) for i, x, err in batch if x is None]
    idx = [i for i, _ in ok]
    pixels = torch.stack([x for _, x in ok]) if ok else None
    return idx, pixels, bad


def encode_image_files(
    encoder: Encoder,
    paths: list[str],
    batch_size: int = 64,
    workers: int = 2,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    progress: Callable[[int, int], None] | None = None,
) -> tuple[np.ndarray, dict[int, str]]:
    """Encodes image files; images are decoded and resized in worker processes while the model runs.

    Returns one row per path (zeros for failures) and {position: reason} for the images that could not be decoded.
    """
    out = np.zeros((len(paths), encoder.dim), dtype=np.float32)
    failed: dict[int, str] = {}
    loader = DataLoader(
        _ImageFiles(paths, encoder.preprocess, max_pixels),
        batch_size=batch_size,
        num_workers=workers,
        collate_fn=_collate,
        persistent_workers=False,
    )
    done = 0
    with tqdm(total=len(paths), desc="encoding images", unit="img") as bar:
        for idx, pixels, bad in loader:
            failed.update(dict(bad))
            if pixels is not None:
                out[idx] = encoder.encode_pixels(pixels)
            done += len(idx) + len(bad)
            bar.update(len(idx) + len(bad))
            if progress is not None:
                progress(done, len(paths))
    return out, failed
