"""Fashion-MNIST's figures beside the published ones: zero-shot accuracy on the 10,000 test photos with a confusion
matrix plot, and image->image precision@10 (more-like-this staying in the photo's category).

The published baselines are the dataset authors' (Xiao, Rasul and Vollgraf, 2017, and the dataset's README): their best
scikit-learn classifier, an SVC (C=10, RBF kernel), at 89.7%, and people without fashion expertise at 83.5% (majority
of three crowd workers on 1,000 test photos). ``write`` puts the report and plot where the app's Evaluation tab reads
them (the index directory).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from mmsearch.atomic import atomic_save_figure, atomic_write_text
from mmsearch.encode.encoders import Encoder
from mmsearch.ingest import fashion_mnist
from mmsearch.ingest.captions import CategoryCaptions, load_templates
from mmsearch.ingest.phrasing import Synonyms
from mmsearch.resources import FASHION_MNIST_DIR
from mmsearch.train import classification

REPORT_FILE, PLOT_FILE = "zero-shot.json", "zero-shot.png"
BASELINES = {
    "best scikit-learn classifier in the Fashion-MNIST paper (SVC, C=10, RBF)": 0.897,
    "human, no fashion expertise (Fashion-MNIST's authors)": 0.835,
}
TEMPLATES_FILE = FASHION_MNIST_DIR / "templates.txt"
SYNONYMS_FILE = FASHION_MNIST_DIR / "synonyms.txt"


def fashion_mnist_report(
    encoder: Encoder,
    directory: Path = fashion_mnist.DEBIAN_DIR,
    templates: Path = TEMPLATES_FILE,
    synonyms: Path = SYNONYMS_FILE,
    progress: bool = True,
) -> dict:
    test = fashion_mnist.load_split("test", directory)
    captioner = CategoryCaptions(load_templates(templates), Synonyms.load(synonyms))
    figures = classification.evaluate(
        encoder, test.images, test.labels, fashion_mnist.CATEGORIES, captioner, progress=progress
    )
    return figures | {
        "model": encoder.model_id,
        "dataset": "Fashion-MNIST test split",
        "baselines": BASELINES,
        "generated": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
    }


def print_report(report: dict) -> None:
    print(
        f"model {report['model']}: zero-shot accuracy {report['accuracy']:.1%} on {report['photos']} "
        f"Fashion-MNIST test photos (prompt ensemble); image->image P@10 {report['image_to_image_P@10']:.1%}"
    )
    for name, value in report["baselines"].items():
        print(f"  published: {value:.1%}  {name}")
    print("per category: " + ", ".join(f"{c} {v:.1%}" for c, v in report["per_category"].items()))
    confused = report["most_confused"]
    print("most confused: " + "; ".join(f"{m['true']} as {m['predicted']} ({m['count']})" for m in confused))


def plot(report: dict, out: Path) -> Path:
    """The confusion matrix (rows: true category, columns: predicted), counts in the cells."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    confusion = np.asarray(report["confusion"])
    names = report["categories"]
    fig, ax = plt.subplots(figsize=(7.2, 6.2))
    ax.imshow(confusion, cmap="Blues")
    ax.set_xticks(range(len(names)), names, rotation=45, ha="right", fontsize=8)
    ax.set_yticks(range(len(names)), names, fontsize=8)
    ax.set_xlabel("predicted (zero-shot)")
    ax.set_ylabel("true category")
    top = confusion.max()
    for (i, j), n in np.ndenumerate(confusion):
        if n:
            ax.text(j, i, str(n), ha="center", va="center", fontsize=7, color="white" if n > top / 2 else "black")
    ax.set_title(f"{report['model']}: zero-shot accuracy {report['accuracy']:.1%}", fontsize=9)
    fig.tight_layout()
    return atomic_save_figure(fig, out)


def write(report: dict, directory: Path) -> tuple[Path, Path]:
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    return atomic_write_text(directory / REPORT_FILE, json.dumps(report, indent=2)), plot(report, directory / PLOT_FILE)


def saved(directory: Path | None) -> dict | None:
    path = Path(directory) / REPORT_FILE if directory else None
    return json.loads(path.read_text()) if path is not None and path.exists() else None
