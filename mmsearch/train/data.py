"""What the trainer learns from: demo renders held in memory, the labelled photos of a dataset held in memory with
captions made from their categories, or image-caption pairs decoded in DataLoader workers.

Both hand the loop the same things for a list of sample indices: pixels, one caption per sample (drawn with the
loop's RNG, so a resumed run draws the same ones) and group ids (samples whose captions describe the same thing).
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor

import numpy as np
import torch
from PIL import Image
from torch.utils.data import DataLoader, Dataset

from mmsearch.ingest import demo
from mmsearch.ingest.captions import CategoryCaptions
from mmsearch.ingest.images import load_image
from mmsearch.ingest.pairs import Pairs
from mmsearch.ingest.phrasing import Synonyms


def _render_small(args: tuple[demo.DemoItem, int]) -> np.ndarray:
    # Workers only draw and resize with PIL: torch in a forked child can deadlock on the parent's thread pool.
    item, size = args
    return np.asarray(demo.render(item).resize((size, size), Image.Resampling.BICUBIC))


def render_pixels(items: list[demo.DemoItem], preprocess, image_size: int, workers: int = 2) -> torch.Tensor:
    """Renders demo items straight to model input tensors (no files), drawing in parallel processes."""
    with ProcessPoolExecutor(max_workers=max(1, workers)) as pool:
        arrays = list(pool.map(_render_small, [(it, image_size) for it in items], chunksize=64))
    return torch.stack([preprocess(Image.fromarray(a)) for a in arrays])


class DemoData:
    def __init__(
        self,
        renders: int,
        preprocess: Callable,
        image_size: int,
        workers: int,
        synonyms: Synonyms | None = None,
        varied_max: float = 0.5,
    ):
        self.synonyms = synonyms  # other words for each facet, for captions the way people type them
        self.varied = 0.0  # share of captions phrased the way shoppers type; the loop raises it (set_epoch)
        self.varied_max = varied_max
        self.items = demo.make_items(renders, demo.TRAIN_SEED, prefix="train")
        self.pixels = render_pixels(self.items, preprocess, image_size, workers).to(torch.float16)
        combo_id = {c: i for i, c in enumerate(demo.combos())}
        self.groups = torch.tensor([combo_id[(it.kind, it.colour, it.pattern)] for it in self.items])

    def __len__(self) -> int:
        return len(self.items)

    def batches(self, index_lists: list[list[int]]) -> Iterator[torch.Tensor]:
        for idx in index_lists:
            yield self.pixels[idx]  # float16; the loop converts on the device

    def set_epoch(self, epoch: int, epochs: int) -> None:
        """A curriculum: the catalog's plain phrasings alone for the first quarter of the epochs, so the image tower
        learns shapes from clean text; then shoppers' phrasings rise to ``varied_max`` by three quarters."""
        self.varied = self.varied_max * min(1.0, max(0.0, (epoch - epochs / 4) / (epochs / 2)))

    def captions(self, idx: list[int], rng: random.Random) -> list[str]:
        return [demo.captions(self.items[i], rng, self.synonyms, self.varied) for i in idx]


class _Images(Dataset):
    def __init__(self, images: list, preprocess: Callable):
        self.images, self.preprocess = images, preprocess

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int) -> torch.Tensor:
        return self.preprocess(load_image(self.images[i]))


class PairsData:
    """One sample per image per epoch, with one of its captions; an image's captions are all positives."""

    def __init__(self, pairs: Pairs, preprocess: Callable, workers: int):
        self.pairs, self.workers = pairs, workers
        self.dataset = _Images(pairs.images, preprocess)
        self.by_image: list[list[str]] = [[] for _ in pairs.images]
        for caption, owner in zip(pairs.captions, pairs.caption_image):
            self.by_image[owner].append(caption)
        self.groups = torch.arange(len(pairs.images))

    def __len__(self) -> int:
        return len(self.pairs.images)

    def batches(self, index_lists: list[list[int]]) -> Iterator[torch.Tensor]:
        # The batch sampler fixes the order, so workers only decode: the data order stays the loop's.
        loader = DataLoader(self.dataset, batch_sampler=index_lists, num_workers=self.workers)
        yield from loader

    def captions(self, idx: list[int], rng: random.Random) -> list[str]:
        return [rng.choice(self.by_image[i]) for i in idx]


class ClassData:
    """Small photos of a labelled dataset (uint8, N x H x W, greyscale), kept in memory as bytes, each batch shifted
    by up to ``shift`` pixels at random and normalised on the way out.
    Captions come from the category through templates and synonyms; a category is a group (its pictures' captions are
    all positives for each other)."""

    def __init__(
        self,
        images: np.ndarray,
        labels: np.ndarray,
        categories: tuple[str, ...],
        captioner: CategoryCaptions,
        image_size: int,
        mean: list[float],
        std: list[float],
        shift: int = 0,
        seed: int = 0,
    ):
        self.pixels = torch.from_numpy(np.array(images, dtype=np.uint8))  # a copy: idx arrays are read-only
        self.groups = torch.as_tensor(labels, dtype=torch.long)
        self.categories, self.captioner, self.image_size, self.shift = categories, captioner, image_size, shift
        self.mean = torch.tensor(mean).view(1, -1, 1, 1)
        self.std = torch.tensor(std).view(1, -1, 1, 1)
        self.seed, self.epoch = seed, 0

    def __len__(self) -> int:
        return len(self.pixels)

    def set_epoch(self, epoch: int, epochs: int) -> None:
        self.epoch = epoch

    def batches(self, index_lists: list[list[int]]) -> Iterator[torch.Tensor]:
        for idx in index_lists:
            # Seeded by the epoch and the batch's first sample, so a resumed run draws the same shifts.
            gen = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch * 100_003 + int(idx[0]))
            yield self.tensor(self.pixels[idx], gen)

    def tensor(self, pixels: torch.Tensor, gen: torch.Generator | None = None) -> torch.Tensor:
        """uint8 N x H x W -> normalised float N x 3 x size x size, shifted when a generator is given."""
        x = pixels.float().div_(255).unsqueeze(1)
        if x.shape[-1] != self.image_size:
            x = torch.nn.functional.interpolate(x, size=(self.image_size, self.image_size), mode="bicubic")
        if gen is not None and self.shift:
            x = _shifted(x, self.shift, gen)
        return ((x.expand(-1, 3, -1, -1) - self.mean) / self.std).contiguous()

    def captions(self, idx: list[int], rng: random.Random) -> list[str]:
        return [self.captioner.caption(self.categories[int(self.groups[i])], rng) for i in idx]


def _shifted(x: torch.Tensor, shift: int, gen: torch.Generator) -> torch.Tensor:
    """Each picture moved by up to ``shift`` pixels in each direction, the border filled with the background (0)."""
    n, _, h, w = x.shape
    padded = torch.nn.functional.pad(x, (shift, shift, shift, shift))
    dx = torch.randint(0, 2 * shift + 1, (n,), generator=gen)
    dy = torch.randint(0, 2 * shift + 1, (n,), generator=gen)
    rows = (dy[:, None] + torch.arange(h)[None, :])[:, None, :, None].expand(n, 1, h, w + 2 * shift)
    out = padded.gather(2, rows)
    cols = (dx[:, None] + torch.arange(w)[None, :])[:, None, None, :].expand(n, 1, h, w)
    return out.gather(3, cols)
