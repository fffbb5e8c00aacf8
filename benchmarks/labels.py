"""Product-label pictures with known words, for measuring OCR (benchmarks/ocr.py, tests/builder/test_picture_text.py).

Each label is a product's name and a second line (a size, a variety) rendered in one of matplotlib's DejaVu fonts on
one of four backgrounds: a flat colour, a gradient, a noisy texture, or a crop of a real photo (scikit-image's and
scikit-learn's samples) behind a card. ``TEXTLESS`` are real photos without words in them, which should read as "".
The words, colours and layouts are drawn from a seeded generator, so a set is the same on every machine.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

NAMES = [
    "ORGANIC HONEY", "DARK CHOCOLATE", "GREEN TEA", "OLIVE OIL", "SEA SALT", "COFFEE BEANS", "MAPLE SYRUP",
    "PEANUT BUTTER", "TOMATO SAUCE", "BASMATI RICE", "OAT MILK", "APPLE JUICE", "STRAWBERRY JAM", "CORN FLAKES",
    "GOAT CHEESE", "BLACK PEPPER", "COCONUT WATER", "ALMOND FLOUR", "LEMON SOAP", "HAND CREAM",
]  # fmt: skip
SECOND = ["250 g", "500 ml", "1 kg", "EXTRA VIRGIN", "FAIR TRADE", "NO SUGAR", "Family Size", "Made in Italy"]
FONTS = ["DejaVuSans-Bold.ttf", "DejaVuSerif-Bold.ttf", "DejaVuSans.ttf", "DejaVuSansMono-Bold.ttf"]
BACKGROUNDS = ("flat", "gradient", "texture", "photo")


@dataclass
class Label:
    path: Path
    words: list[str]  # what is printed, word by word
    background: str


def _font(name: str, size: int) -> ImageFont.FreeTypeFont:
    import matplotlib

    return ImageFont.truetype(
        os.path.join(os.path.dirname(matplotlib.__file__), "mpl-data", "fonts", "ttf", name), size
    )


# Of the photos that ship with scikit-image and scikit-learn (the photos dataset's), those without words in them.
TEXTLESS = ("cat", "astronaut", "coffee", "rocket", "camera", "coins", "moon", "china", "flower")


def photos() -> dict[str, np.ndarray]:
    """The real photos without words (RGB arrays), by name."""
    from mmsearch.ingest.datasets.photos import pictures

    found = pictures()
    out = {n: found[n] if found[n].ndim == 3 else np.stack([found[n]] * 3, axis=-1) for n in TEXTLESS}
    return {n: np.ascontiguousarray(a[:, :, :3]).astype(np.uint8) for n, a in out.items()}


def _background(kind: str, size: tuple[int, int], rng: np.random.Generator, scenery: list[np.ndarray]) -> Image.Image:
    w, h = size
    if kind == "flat":
        return Image.new("RGB", size, tuple(int(c) for c in rng.integers(0, 256, 3)))
    if kind == "gradient":
        a, b = rng.integers(0, 256, 3), rng.integers(0, 256, 3)
        ramp = np.linspace(0, 1, w)[None, :, None]
        return Image.fromarray((a + (b - a) * ramp).repeat(h, axis=0).astype(np.uint8))
    if kind == "texture":
        base = rng.integers(40, 216, 3)
        noise = rng.normal(0, 28, (h, w, 1))
        return Image.fromarray(np.clip(base + noise, 0, 255).astype(np.uint8))
    photo = scenery[int(rng.integers(len(scenery)))]
    return Image.fromarray(photo).resize(size)


def make_labels(folder: Path, count: int = 40, seed: int = 0) -> list[Label]:
    """``count`` label pictures in ``folder`` (PNG), cycling through the backgrounds."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    scenery = list(photos().values())
    out = []
    for n in range(count):
        name, second = NAMES[n % len(NAMES)], SECOND[int(rng.integers(len(SECOND)))]
        kind = BACKGROUNDS[n % len(BACKGROUNDS)]
        size = (int(rng.integers(420, 640)), int(rng.integers(300, 480)))
        im = _background(kind, size, rng, scenery)
        draw = ImageDraw.Draw(im)
        font = _font(FONTS[int(rng.integers(len(FONTS)))], int(rng.integers(30, 44)))
        small = _font(FONTS[0], int(rng.integers(22, 30)))
        width = draw.textlength(name, font=font)
        if width > size[0] - 40:  # too wide for this picture: a wider one
            size = (int(width) + 60, size[1])
            im = _background(kind, size, rng, scenery)
            draw = ImageDraw.Draw(im)
        x, y = 30, int(rng.integers(30, size[1] - 150))
        card = kind == "photo"  # on a photo, words sit on a card as on a real package
        ink = (20, 20, 20) if card or np.asarray(im).mean() > 128 else (245, 245, 245)
        if card:
            draw.rectangle([x - 14, y - 12, x + width + 14, y + 110], fill=(245, 240, 225))
        draw.text((x, y), name, fill=ink, font=font)
        draw.text((x, y + 60), second, fill=ink, font=small)
        path = folder / f"label-{n:03d}.png"
        im.save(path)
        out.append(Label(path, f"{name} {second}".split(), kind))
    return out


def save_textless(folder: Path) -> list[Path]:
    """The photos without words, as PNG files in ``folder``."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, array in photos().items():
        paths.append(folder / f"{name}.png")
        Image.fromarray(array).save(paths[-1])
    return paths
