"""Zero-shot classification of a labelled dataset's test photos (ingest/datasets/) beside its published baselines,
with a confusion matrix plot, and image->image precision@10 (similar items staying in the photo's category).
``write`` puts the report and plot where the app's Evaluation tab reads them (the index directory).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from mmsearch.atomic import atomic_save_figure, atomic_write_text
from mmsearch.encode.encoders import Encoder
from mmsearch.ingest.captions import CategoryCaptions, load_templates
from mmsearch.ingest.datasets import Dataset
from mmsearch.ingest.phrasing import Synonyms
from mmsearch.train import classification

REPORT_FILE, PLOT_FILE = "zero-shot.json", "zero-shot.png"
# Categories one confusion matrix can name legibly at its size: the stamps' 124 folders ran into one smear of labels.
READABLE = 20


def report(encoder: Encoder, dataset: Dataset, settings=None, progress: bool = True) -> dict:
    """Zero-shot accuracy of ``encoder`` on ``dataset``'s test photos, its categories captioned by the dataset's
    templates and synonyms."""
    test = dataset.labelled("test", settings)
    if test is None or dataset.templates is None:
        raise ValueError(f"{dataset.title} has no labelled photos to classify")
    captioner = CategoryCaptions(load_templates(dataset.templates), Synonyms.load(dataset.synonyms or ""))
    figures = classification.evaluate(encoder, test.images, test.labels, test.categories, captioner, progress=progress)
    return figures | {
        "model": encoder.model_id,
        "dataset": f"{dataset.title} {dataset.classified}".strip(),
        "baselines": dataset.baselines,
        "generated": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
    }


def print_report(report: dict) -> None:
    print(
        f"model {report['model']}: zero-shot accuracy {report['accuracy']:.1%} on the {report['photos']} photos of the "
        f"{report['dataset']} (prompt ensemble); image->image P@10 {report['image_to_image_P@10']:.1%}"
    )
    for name, value in report["baselines"].items():
        print(f"  published: {value:.1%}  {name}")
    print("per category: " + ", ".join(f"{c} {v:.1%}" for c, v in report["per_category"].items()))
    confused = report["most_confused"]
    print("most confused: " + "; ".join(f"{m['true']} as {m['predicted']} ({m['count']})" for m in confused))


def most_mistaken(confusion: np.ndarray, names: list[str], most: int = READABLE) -> tuple[np.ndarray, list[str]]:
    """The confusion matrix of the ``most`` categories most often in a mistake (taken for another or another taken
    for them), in their own order; all of them where there are no more."""
    if len(names) <= most:
        return confusion, names
    mistakes = confusion - np.diag(np.diag(confusion))
    keep = np.sort(np.argsort(-(mistakes.sum(0) + mistakes.sum(1)), kind="stable")[:most])
    return confusion[np.ix_(keep, keep)], [names[i] for i in keep]


def plot(report: dict, out: Path) -> Path:
    """The confusion matrix (rows: true category, columns: predicted), counts in the cells."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    confusion, names = most_mistaken(np.asarray(report["confusion"]), list(report["categories"]))
    shown = f"\nthe {len(names)} of {len(report['categories'])} categories most often in a mistake"
    shown = shown if len(names) < len(report["categories"]) else ""
    names = [n if len(n) <= 28 else "…" + n[-27:] for n in names]  # the end tells "… filled lowercase" apart
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
    ax.set_title(f"{report['model']}: zero-shot accuracy {report['accuracy']:.1%}{shown}", fontsize=9)
    fig.tight_layout()
    return atomic_save_figure(fig, out)


def write(report: dict, directory: Path) -> tuple[Path, Path]:
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    return atomic_write_text(directory / REPORT_FILE, json.dumps(report, indent=2)), plot(report, directory / PLOT_FILE)


def saved(directory: Path | None) -> dict | None:
    path = Path(directory) / REPORT_FILE if directory else None
    return json.loads(path.read_text()) if path is not None and path.exists() else None
