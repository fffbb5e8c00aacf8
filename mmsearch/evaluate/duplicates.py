"""The duplicates a catalog holds: pictures that are byte for byte the same (one content hash under two ids) and
near-duplicates by embedding at several cosine thresholds, with a picture of example pairs.

``python -m mmsearch.evaluate --duplicates`` prints the counts for the index and writes ``duplicates.png``. The build
itself reports both counts at its own ``--duplicate-threshold`` (near_duplicates.csv beside the index).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from mmsearch.index import vectors as vindex

THRESHOLDS = (0.9999, 0.999, 0.99)
PICTURE_FILE = "duplicates.png"


def exact_pairs(index: vindex.VectorIndex) -> list[tuple[str, str]]:
    """Pairs of items whose pictures have the same content hash."""
    groups = index.items.groupby("picture")["item_id"].apply(list)
    return sorted((str(a), str(b)) for ids in groups if len(ids) > 1 for i, a in enumerate(ids) for b in ids[i + 1 :])


def report(index: vindex.VectorIndex, thresholds: tuple[float, ...] = THRESHOLDS) -> dict:
    exact = exact_pairs(index)
    exact_set = set(exact)
    near = {t: index.near_duplicates(t) for t in thresholds}
    return {
        "items": len(index),
        "exact_pairs": len(exact),
        "exact_examples": exact[:6],
        "near_pairs": {str(t): len(pairs) for t, pairs in near.items()},
        # At the loosest threshold, pairs whose pictures differ: what an embedding finds that a hash cannot.
        "near_examples": [
            (a, b, s) for a, b, s in near[min(thresholds)] if (a, b) not in exact_set and (b, a) not in exact_set
        ][:6],
    }


def picture(found: dict, images: dict[str, str], out: Path) -> Path:
    """Example pairs side by side: exact copies in the first row, near ones (different pictures) in the second."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from PIL import Image

    rows = [("byte-identical", [(a, b, None) for a, b in found["exact_examples"]]), ("near", found["near_examples"])]
    columns = max(1, max(len(pairs) for _, pairs in rows))
    fig, axes = plt.subplots(2, columns, figsize=(2.2 * columns, 5.0), squeeze=False)
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
    out = Path(out)
    tmp = out.with_name(f".{out.name}.tmp.png")
    fig.savefig(tmp, dpi=110)
    plt.close(fig)
    tmp.replace(out)
    return out


def image_paths(index: vindex.VectorIndex, ids: list[str]) -> dict[str, str]:
    table = index.items.set_index("item_id")
    column = "image" if "image" in table.columns else None
    if column is None:
        raise ValueError("the index keeps no image paths")
    return {i: str(table.loc[i, column]) for i in ids if i in table.index}


def examples_ids(found: dict) -> list[str]:
    pairs = [*found["exact_examples"], *((a, b) for a, b, _ in found["near_examples"])]
    return list(pd.unique([x for pair in pairs for x in pair]))
