"""The duplicates a catalog holds: pictures that are byte for byte the same (one content hash under two ids), near
copies by their pixels (each picture as 16x16 grey values, compared by cosine of the mean-removed values: a re-shot or
re-cropped photo of one product), and near-duplicates by the model's embedding at several cosine thresholds, with a
picture of example pairs.

A model trained on ten categories puts a category's photos close together (Fashion-MNIST's: thousands of pairs above
0.999), so its embedding finds "the same kind of thing", and pixels find copies.

``python -m mmsearch.evaluate --duplicates`` prints the counts for the index and writes ``duplicates.png``. The build
itself reports both counts at its own ``--duplicate-threshold`` (near_duplicates.csv beside the index).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from mmsearch.atomic import atomic_save_figure
from mmsearch.index import vectors as vindex

THRESHOLDS = (0.9999, 0.999, 0.99)
PIXEL_THRESHOLDS = (0.995, 0.99)
PIXEL_SIDE = 16
PIXEL_LIMIT = 50_000  # pictures compared pixel by pixel (all pairs, in blocks); a larger catalog skips it
PICTURE_FILE = "duplicates.png"


def exact_pairs(index: vindex.VectorIndex) -> list[tuple[str, str]]:
    """Pairs of items whose pictures have the same content hash."""
    groups = index.items.groupby("image_hash")["item_id"].apply(list)
    return sorted((str(a), str(b)) for ids in groups if len(ids) > 1 for i, a in enumerate(ids) for b in ids[i + 1 :])


def pixel_pairs(paths: list[str], ids: list[str], threshold: float, block: int = 2048) -> list[tuple[str, str, float]]:
    """Pairs whose 16x16 grey pictures, less their mean, have a cosine of at least ``threshold``."""
    from PIL import Image

    rows = []
    for path in paths:
        with Image.open(path) as img:
            rows.append(np.asarray(img.convert("L").resize((PIXEL_SIDE, PIXEL_SIDE), Image.Resampling.BOX), float))
    x = np.stack(rows).reshape(len(rows), -1)
    x -= x.mean(axis=1, keepdims=True)
    x /= np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-9)
    x = x.astype(np.float32)
    out = []
    for start in range(0, len(x), block):
        sims = x[start : start + block] @ x.T
        for i, j in zip(*np.nonzero(sims >= threshold)):
            if start + i < j:
                out.append((ids[start + i], ids[j], round(float(sims[i, j]), 4)))
    return sorted(out, key=lambda p: -p[2])


def report(index: vindex.VectorIndex, thresholds: tuple[float, ...] = THRESHOLDS) -> dict:
    exact = exact_pairs(index)
    exact_set = set(exact)
    near = {t: index.near_duplicates(t) for t in thresholds}
    found = {
        "items": len(index),
        "exact_pairs": len(exact),
        "exact_examples": exact[:6],
        "near_pairs": {str(t): len(pairs) for t, pairs in near.items()},
        "near_examples": [],
    }
    if len(index) <= PIXEL_LIMIT and "image" in index.items.columns:
        ids, paths = index.items["item_id"].astype(str).tolist(), index.items["image"].astype(str).tolist()
        loosest = pixel_pairs(paths, ids, min(PIXEL_THRESHOLDS))
        found["pixel_pairs"] = {str(t): sum(s >= t for _, _, s in loosest) for t in PIXEL_THRESHOLDS}
        # Pairs whose bytes differ: what the pixels find that a hash cannot.
        found["near_examples"] = [p for p in loosest if (p[0], p[1]) not in exact_set][:6]
    return found


def picture(found: dict, images: dict[str, str], out: Path) -> Path:
    """Example pairs side by side: exact copies in one row, near copies by their pixels in another."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from PIL import Image

    rows = [("byte-identical", [(a, b, None) for a, b in found["exact_examples"]]), ("pixels", found["near_examples"])]
    rows = [row for row in rows if row[1]] or rows[:1]  # a kind with no pairs takes no space
    columns = max(1, max(len(pairs) for _, pairs in rows))
    fig, axes = plt.subplots(len(rows), columns, figsize=(2.2 * columns, 2.5 * len(rows)), squeeze=False)
    for r, (label, pairs) in enumerate(rows):
        for c in range(columns):
            ax = axes[r][c]
            ax.axis("off")
            if c >= len(pairs):
                continue
            a, b, score = pairs[c]
            left, right = (np.asarray(Image.open(images[x]).convert("L").resize((56, 56), 0)) for x in (a, b))
            ax.imshow(np.hstack([left, np.full((56, 4), 255, np.uint8), right]), cmap="gray", vmin=0, vmax=255)
            note = "same bytes" if score is None else f"cosine {score:.4f}"
            ax.set_title(f"{a[-5:]} / {b[-5:]}\n{label}: {note}", fontsize=7)
    fig.tight_layout()
    return atomic_save_figure(fig, out)


def image_paths(index: vindex.VectorIndex, ids: list[str]) -> dict[str, str]:
    table = index.items.set_index("item_id")
    if "image" not in table.columns:
        raise ValueError("the index keeps no image paths")
    return {i: str(table.loc[i, "image"]) for i in ids if i in table.index}


def examples_ids(found: dict) -> list[str]:
    pairs = [*found["exact_examples"], *((a, b) for a, b, _ in found["near_examples"])]
    return list(dict.fromkeys(x for pair in pairs for x in pair))
