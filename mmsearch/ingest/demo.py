"""The bundled demo catalog: product renders drawn with PIL, deterministic for a given seed.

Every render is a (kind, colour, pattern) combination with its own size, position, background and pattern scale, so a
model has to learn the attributes rather than memorise pixels. Seeds keep catalog, training and held-out renders apart.
"""

from __future__ import annotations

import csv
import random
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, ImageChops, ImageDraw, ImageFilter

from mmsearch.ingest.phrasing import Synonyms, varied_caption

KINDS = ["t-shirt", "mug", "sneaker", "cap", "bag", "lamp", "bottle", "chair"]
COLOURS = {
    "red": (205, 30, 35),
    "orange": (240, 130, 20),
    "yellow": (245, 215, 40),
    "green": (40, 150, 60),
    "blue": (35, 80, 200),
    "purple": (120, 50, 160),
    "pink": (240, 120, 180),
    "brown": (120, 75, 40),
    "black": (25, 25, 28),
    "white": (248, 248, 248),
}
PATTERNS = ["solid", "striped", "dotted", "checked"]
PATTERN_WORDS = {"solid": "plain", "striped": "stripes", "dotted": "dots", "checked": "checks"}
BASE_PRICE = {"t-shirt": 19, "mug": 9, "sneaker": 69, "cap": 15, "bag": 39, "lamp": 45, "bottle": 12, "chair": 89}
MATERIAL = {
    "t-shirt": "cotton",
    "mug": "ceramic",
    "sneaker": "canvas",
    "cap": "twill",
    "bag": "canvas",
    "lamp": "metal",
    "bottle": "steel",
    "chair": "wooden",
}
# How shops name things in their listings, beside the plain words shoppers type: the catalog's text is written with
# these now and then (see listing()), so keyword search meets the gaps it meets in real catalogs.
SHOP_COLOURS = {
    "red": ["crimson", "scarlet"],
    "orange": ["tangerine", "amber"],
    "yellow": ["mustard", "lemon"],
    "green": ["olive", "emerald"],
    "blue": ["navy", "cobalt"],
    "purple": ["violet", "plum"],
    "pink": ["rose", "blush"],
    "brown": ["chocolate", "tan"],
    "black": ["charcoal", "onyx"],
    "white": ["ivory", "snow"],
}
SHOP_KINDS = {
    "t-shirt": "tee",
    "mug": "cup",
    "sneaker": "trainer",
    "cap": "baseball hat",
    "bag": "tote",
    "lamp": "light",
    "bottle": "flask",
    "chair": "seat",
}
TAGS = {
    "Everyday essential.": "essential",
    "A customer favourite.": "favourite",
    "New this season.": "new",
    "Made to last.": "durable",
}  # what only the text knows about an item
RENDER_SIZE = 192
# Seeds of the disjoint render sets; the model is trained on one and judged on another it never saw.
CATALOG_SEED, TRAIN_SEED, HELDOUT_SEED, VALID_SEED = 0, 1, 2, 3


@dataclass(frozen=True)
class DemoItem:
    item_id: str
    kind: str
    colour: str
    pattern: str
    title: str
    description: str
    price: float
    variant: int  # seeds the layout of this render

    @property
    def category(self) -> str:
        return self.kind


def combos() -> list[tuple[str, str, str]]:
    return [(k, c, p) for k in KINDS for c in COLOURS for p in PATTERNS]


def describe(kind: str, colour: str, pattern: str, rng: random.Random) -> tuple[str, str]:
    adjective = "" if pattern == "solid" else f"{pattern} "
    title = f"{colour.capitalize()} {adjective}{MATERIAL[kind]} {kind}"
    finish = "in plain " + colour if pattern == "solid" else f"in {colour} with {PATTERN_WORDS[pattern]}"
    extra = rng.choice(["Everyday essential.", "A customer favourite.", "New this season.", "Made to last."])
    return title, f"A {MATERIAL[kind]} {kind} {finish}. {extra}"


def tag(item: DemoItem) -> str:
    """The item's non-visual tag (essential, favourite, new, durable), from the closing sentence of its description."""
    return TAGS[item.description.split(". ", 1)[1]]


def listing(item: DemoItem) -> tuple[str, str]:
    """The catalog's title and description for an item, as a shop writes them: a shop colour name in 40% of
    listings, a shop word for the kind in 25%, and the pattern left unsaid in 30% of patterned items.
    The item's true attributes stay in the catalog's category, colour and pattern columns."""
    rng = random.Random(item.variant * 7 + 1)
    colour = item.colour if rng.random() < 0.6 else rng.choice(SHOP_COLOURS[item.colour])
    kind = item.kind if rng.random() < 0.75 else SHOP_KINDS[item.kind]
    where = rng.random()
    in_title = item.pattern != "solid" and where < 0.4
    in_text = item.pattern != "solid" and 0.4 <= where < 0.7
    title = f"{colour.capitalize()} {item.pattern + ' ' if in_title else ''}{MATERIAL[item.kind]} {kind}"
    finish = f" with {PATTERN_WORDS[item.pattern]}" if in_text else ""
    extra = item.description.split(". ", 1)[1]
    return title, f"A {MATERIAL[item.kind]} {kind} in {colour}{finish}. {extra}"


def make_items(n: int, seed: int, prefix: str = "demo") -> list[DemoItem]:
    """``n`` items cycling through every combination, so each one appears n/len(combos) times."""
    all_combos = combos()
    order = random.Random(seed).sample(range(len(all_combos)), len(all_combos))
    items = []
    for i in range(n):
        kind, colour, pattern = all_combos[order[i % len(all_combos)]]
        rng = random.Random(seed * 1_000_003 + i)
        title, description = describe(kind, colour, pattern, rng)
        price = round(BASE_PRICE[kind] * rng.uniform(0.8, 1.3), 0) - 0.01
        items.append(
            DemoItem(f"{prefix}-{i:05d}", kind, colour, pattern, title, description, price, seed * 1_000_003 + i)
        )
    return items


# --- drawing -----------------------------------------------------------------------------------------------------


def _shape_mask(kind: str, box: tuple[float, float, float, float], size: int) -> Image.Image:
    x0, y0, x1, y1 = box
    w, h = x1 - x0, y1 - y0
    mask = Image.new("L", (size, size), 0)
    d = ImageDraw.Draw(mask)

    def px(u: float, v: float) -> tuple[float, float]:
        return (x0 + u * w, y0 + v * h)

    if kind == "t-shirt":
        d.polygon(
            [
                px(*p)
                for p in [
                    (0.32, 0.05),
                    (0.42, 0.12),
                    (0.58, 0.12),
                    (0.68, 0.05),
                    (1, 0.25),
                    (0.88, 0.45),
                    (0.78, 0.38),
                    (0.78, 1),
                    (0.22, 1),
                    (0.22, 0.38),
                    (0.12, 0.45),
                    (0, 0.25),
                ]
            ],
            fill=255,
        )
    elif kind == "mug":
        d.rectangle([px(0.1, 0.15), px(0.72, 0.95)], fill=255)
        d.ellipse([px(0.58, 0.32), px(0.98, 0.75)], fill=255)
        d.ellipse([px(0.68, 0.44), px(0.86, 0.63)], fill=0)
    elif kind == "sneaker":
        d.polygon(
            [
                px(*p)
                for p in [
                    (0, 0.55),
                    (0.05, 0.35),
                    (0.3, 0.32),
                    (0.45, 0.15),
                    (0.62, 0.15),
                    (0.7, 0.3),
                    (0.95, 0.45),
                    (1, 0.62),
                    (1, 0.72),
                    (0, 0.72),
                ]
            ],
            fill=255,
        )
        d.rectangle([px(0, 0.72), px(1, 0.85)], fill=255)
    elif kind == "cap":
        d.pieslice([px(0.05, 0.2), px(0.8, 1.2)], 180, 360, fill=255)
        d.polygon([px(0.7, 0.62), px(1, 0.66), px(1, 0.76), px(0.65, 0.74)], fill=255)
        d.ellipse([px(0.38, 0.14), px(0.47, 0.24)], fill=255)
    elif kind == "bag":
        d.rectangle([px(0.05, 0.38), px(0.95, 1)], fill=255)
        d.arc([px(0.25, 0.02), px(0.75, 0.7)], 180, 360, fill=255, width=max(2, int(w * 0.07)))
    elif kind == "lamp":
        d.polygon([px(0.25, 0.05), px(0.75, 0.05), px(0.95, 0.42), px(0.05, 0.42)], fill=255)
        d.rectangle([px(0.46, 0.42), px(0.54, 0.9)], fill=255)
        d.ellipse([px(0.2, 0.86), px(0.8, 1)], fill=255)
    elif kind == "bottle":
        d.rectangle([px(0.4, 0), px(0.6, 0.12)], fill=255)
        d.polygon([px(0.4, 0.12), px(0.6, 0.12), px(0.78, 0.3), px(0.22, 0.3)], fill=255)
        d.rounded_rectangle([px(0.22, 0.28), px(0.78, 1)], radius=max(1, int(w * 0.08)), fill=255)
    elif kind == "chair":
        d.rectangle([px(0.2, 0), px(0.8, 0.45)], fill=255)
        d.rectangle([px(0.15, 0.45), px(0.85, 0.58)], fill=255)
        for u in (0.18, 0.74):
            d.rectangle([px(u, 0.58), px(u + 0.08, 1)], fill=255)
    else:
        raise ValueError(f"unknown kind {kind!r}")
    return mask


def _pattern_fill(colour: str, pattern: str, size: int, rng: random.Random) -> Image.Image:
    base = COLOURS[colour]
    light = sum(base) / 3 > 150
    second = (70, 70, 78) if light else (250, 250, 250)
    img = Image.new("RGB", (size, size), base)
    d = ImageDraw.Draw(img)
    step = rng.randint(14, 24)
    if pattern == "striped":
        width = max(3, step // 2 - rng.randint(0, 2))
        if rng.random() < 0.5:
            for y in range(rng.randint(0, step), size, step):
                d.rectangle([0, y, size, y + width - 1], fill=second)
        else:
            for x in range(rng.randint(0, step), size, step):
                d.rectangle([x, 0, x + width - 1, size], fill=second)
    elif pattern == "dotted":
        r = max(2, step // 4)
        off = rng.randint(0, step)
        for row, y in enumerate(range(off, size + step, step)):
            shift = step // 2 if row % 2 else 0
            for x in range(off + shift, size + step, step):
                d.ellipse([x - r, y - r, x + r, y + r], fill=second)
    elif pattern == "checked":
        for yi, y in enumerate(range(0, size, step)):
            for xi, x in enumerate(range(0, size, step)):
                if (xi + yi) % 2:
                    d.rectangle([x, y, x + step - 1, y + step - 1], fill=second)
    return img


def render(item: DemoItem, size: int = RENDER_SIZE) -> Image.Image:
    """Draws one product photo: a patterned shape with an outline on a soft background."""
    rng = random.Random(item.variant)
    bg = tuple(rng.randint(200, 240) for _ in range(3))
    canvas = Image.new("RGB", (size, size), bg)
    if rng.random() < 0.5:  # a floor line gives some renders a studio look
        floor = tuple(max(0, c - rng.randint(15, 35)) for c in bg)
        ImageDraw.Draw(canvas).rectangle([0, int(size * rng.uniform(0.72, 0.9)), size, size], fill=floor)
    scale = rng.uniform(0.55, 0.88)
    w = h = scale * size
    if item.kind in ("sneaker", "cap"):
        h *= 0.8
    x0 = rng.uniform(0.04 * size, size - w - 0.04 * size)
    y0 = rng.uniform(0.04 * size, size - h - 0.04 * size)
    mask = _shape_mask(item.kind, (x0, y0, x0 + w, y0 + h), size)
    flip = rng.random() < 0.5
    if flip:
        mask = mask.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    fill = _pattern_fill(item.colour, item.pattern, size, rng)
    edge = ImageChops.subtract(mask.filter(ImageFilter.MaxFilter(3)), mask)
    canvas.paste(fill, (0, 0), mask)
    canvas.paste((60, 60, 66), (0, 0), edge)
    if item.kind == "sneaker":  # a white sole reads as "shoe" at a glance
        sole = Image.new("L", (size, size), 0)
        ImageDraw.Draw(sole).rectangle([x0, y0 + 0.72 * h, x0 + w, y0 + 0.85 * h], fill=255)
        if flip:
            sole = sole.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
        canvas.paste((235, 235, 235), (0, 0), ImageChops.multiply(sole, mask))
    return canvas


def _render_to(args: tuple[DemoItem, str]) -> None:
    item, path = args
    render(item).save(path, quality=90)


def _render_missing(items: list[DemoItem], images: Path, workers: int, progress=None) -> None:
    """Renders each item to ``images/<item_id>.jpg`` unless it is there already, in ``workers`` processes."""
    images.mkdir(parents=True, exist_ok=True)
    todo = [(it, str(images / f"{it.item_id}.jpg")) for it in items if not (images / f"{it.item_id}.jpg").exists()]
    if not todo:
        return
    with ProcessPoolExecutor(max_workers=max(1, workers)) as pool:
        for i, _ in enumerate(pool.map(_render_to, todo, chunksize=max(1, len(todo) // 64))):
            if progress is not None:
                progress(i + 1, len(todo))


def _write_csv(path: Path, header: list[str], rows) -> Path:
    """Writes a CSV atomically: a reader sees the old file or the whole new one."""
    tmp = path.with_suffix(".csv.tmp")
    with tmp.open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(header)
        writer.writerows(rows)
    tmp.replace(path)
    return path


def write_catalog(out_dir: Path, n: int = 2048, seed: int = CATALOG_SEED, workers: int = 2, progress=None) -> Path:
    """Renders ``n`` items into ``out_dir/images`` and writes ``out_dir/manifest.csv``; returns the manifest path.

    Existing renders are reused, so a second call is nearly free.
    """
    out_dir = Path(out_dir)
    items = make_items(n, seed)
    _render_missing(items, out_dir / "images", workers, progress)
    header = ["item_id", "image", "title", "description", "category", "colour", "pattern", "tag", "price"]
    rows = (
        [
            it.item_id,
            f"images/{it.item_id}.jpg",
            *listing(it),
            it.category,
            it.colour,
            it.pattern,
            tag(it),
            f"{it.price:.2f}",
        ]
        for it in items
    )
    return _write_csv(out_dir / "manifest.csv", header, rows)


def query_for(kind: str, colour: str, pattern: str) -> str:
    """The natural query a shopper types for a combination ("red striped t-shirt", "plain blue mug")."""
    return f"{colour} {kind}" if pattern == "solid" else f"{colour} {pattern} {kind}"


def captions(item: DemoItem, rng: random.Random, synonyms: Synonyms | None = None, varied: float = 0.5) -> str:
    """Training text for one render: with probability ``varied`` a phrasing a shopper might type (varied_caption),
    otherwise one of the catalog's own forms."""
    k, c, p = item.kind, item.colour, item.pattern
    if synonyms is not None and rng.random() < varied:
        return varied_caption(k, c, p, rng, synonyms)
    choices = [
        query_for(k, c, p),
        item.title.lower(),
        item.description.lower(),
        f"{k} in {c} with {PATTERN_WORDS[p]}" if p != "solid" else f"plain {c} {k}",
        f"a {c} {k}, {p}",
    ]
    return rng.choice(choices)


def write_heldout_pairs(out_dir: Path, per_combo: int = 2, workers: int = 2) -> Path:
    """Renders ``per_combo`` held-out pictures of every combination (a seed apart from the catalog's and training's)
    with the plain query for each as its caption: a captions file for Recall@K (python -m mmsearch.evaluate
    --dataset FILE). Returns its path."""
    out_dir = Path(out_dir)
    items = make_items(len(combos()) * per_combo, HELDOUT_SEED, prefix="heldout")
    _render_missing(items, out_dir / "images", workers)
    rows = ([f"images/{it.item_id}.jpg", query_for(it.kind, it.colour, it.pattern)] for it in items)
    return _write_csv(out_dir / "captions.csv", ["image", "caption"], rows)


def main(argv: list[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(description="Renders the demo catalog (and held-out pairs) into a folder.")
    parser.add_argument("--out", type=Path, required=True, help="folder for manifest.csv and images/")
    parser.add_argument("--size", type=int, default=2048, help="items in the catalog (default: 2048)")
    parser.add_argument("--heldout", type=Path, help="also write held-out image-caption pairs for Recall@K here")
    parser.add_argument("--per-combo", type=int, default=2, help="held-out renders per kind/colour/pattern")
    parser.add_argument("--workers", type=int, default=2, help="rendering processes")
    args = parser.parse_args(argv)
    print(f"wrote {write_catalog(args.out, args.size, workers=args.workers)}")
    if args.heldout:
        print(f"wrote {write_heldout_pairs(args.heldout, args.per_combo, args.workers)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
