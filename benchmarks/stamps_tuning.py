"""Does tuning two pretrained towers on a catalog's own pictures and titles beat the zero-shot model? On Tux Paint's
stamps, the way docs/zero-shot.md measured it and a user would run it:

    python benchmarks/stamps_tuning.py                  # needs Debian's tuxpaint-stamps-default; about 3 minutes
    python benchmarks/stamps_tuning.py --epochs 8 --work /tmp/stamps-tuning

Writes the stamps as a manifest with a ``split`` column (``test`` where the sha256 of the item id is odd: about half,
the same on every machine), tunes locked EfficientNet-Lite0 at 160 px and locked MiniLM on the train half's English
titles (``python -m mmsearch.train``, starting at the zero-shot bridge), and prints text->image Recall@1/10 and the
median rank on the test half (``python -m mmsearch.evaluate --dataset ... --where split=test``) for the zero-shot
model, the tuned model before training (as the run measured it) and after.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from mmsearch.ingest.datasets import tuxpaint_stamps  # noqa: E402

MINILM = "sentence-transformers/all-MiniLM-L6-v2"


def split_manifest(folder: Path) -> Path:
    """The stamps' manifest with a train/test column by the parity of each item id's sha256."""
    table = tuxpaint_stamps.table()
    table["split"] = ["test" if hashlib.sha256(i.encode()).digest()[-1] % 2 else "train" for i in table.item_id]
    path = folder / "stamps.csv"
    table.to_csv(path, index=False)
    return path


def run(*args: str) -> None:
    print("$ python", " ".join(args), flush=True)
    subprocess.run([sys.executable, *args], cwd=ROOT, check=True)


def recall(model: str, manifest: Path, report: Path) -> dict:
    run(*("-m", "mmsearch.evaluate", "--model", model, "--dataset", str(manifest), "--where", "split=test"),
        *("--caption-column", "title", "--report", str(report)))  # fmt: skip
    return json.loads(report.read_text())["text_to_image"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--epochs", type=int, default=8, help="training epochs (8 in docs/zero-shot.md)")
    parser.add_argument("--work", type=Path, default=None, help="keep the manifest, model and reports here")
    args = parser.parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="stamps-tuning-"))
    work.mkdir(parents=True, exist_ok=True)
    manifest = split_manifest(work)
    tuned = work / "tuned"
    run(*("-m", "mmsearch.train", "--dataset", str(manifest), "--where", "split=train", "--caption-column", "title"),
        *("--valid-dataset", str(manifest), "--valid-where", "split=test", "--vision-model", "efficientnet-lite0@160"),
        *("--lock-vision", "--text-model", MINILM, "--lock-text", "--epochs", str(args.epochs), "--tracker", "none"),
        *("--out", str(tuned)))  # fmt: skip
    training = json.loads((tuned / "twotower.json").read_text())["training"]
    rows = [
        ("zero-shot (no training)", recall("zero-shot", manifest, work / "zero-shot.json")),
        ("tuned, before training (the linear bridge)", training["validation_before"]),
        (f"tuned, after {args.epochs} epochs", recall(f"two-tower:{tuned}", manifest, work / "tuned.json")),
    ]
    print(f"\ntext->image on the {rows[1][1]['queries']} held-out stamps' titles ({work}):")
    print(f"{'model':46s} {'R@1':>6s} {'R@10':>6s} {'median rank':>12s}")
    for name, r in rows:
        print(f"{name:46s} {r['R@1']:6.1%} {r['R@10']:6.1%} {r['median_rank']:12g}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
