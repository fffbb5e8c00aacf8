"""A catalog that changes every day, with real pictures: a full build, then an update of 1% of the items.

    python benchmarks/update.py --items 100000
    python benchmarks/update.py --items 100000 --model clip:ViT-B-32/random --change 0.05

Renders the demo catalog (JPEG pictures), builds it with ``index_build.py`` (encoding included), then gives ``--change``
of the items a new picture (another render written over the file) and, for as many again, a new title, and runs the
same command: only the new pictures are encoded. Prints both times, the update's counts and its share of the full
build's time (the target: 1% updated in at most 10% of the full build's time).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from scale import run_timed, stages  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--items", type=int, default=100_000, help="demo renders in the catalog")
    parser.add_argument("--change", type=float, default=0.01, help="share of items given a new picture")
    parser.add_argument("--model", default="demo", help="model spec used for the builds")
    parser.add_argument(
        "--work", type=Path, default=Path("/tmp/mmsearch-update"), help="working folder (catalog, data, index)"
    )
    parser.add_argument("--report", type=Path, help="also write the figures as JSON here")
    args = parser.parse_args()

    from mmsearch.ingest import demo

    work = args.work / f"{args.items}"
    shutil.rmtree(work / "data", ignore_errors=True)
    shutil.rmtree(work / "index", ignore_errors=True)
    t = time.time()
    manifest = demo.write_catalog(work / "catalog", n=args.items, workers=os.cpu_count() or 2)
    print(f"rendered {args.items:,} pictures in {time.time() - t:.0f} s (reused if already there)", flush=True)
    cmd = [
        sys.executable,
        "index_build.py",
        "--catalog",
        str(manifest),
        "--model",
        args.model,
        "--index",
        str(work / "index"),
        "--data-dir",
        str(work / "data"),
    ]
    full_s, full_rss, full_lines = run_timed(cmd)
    print(f"full build: {full_s:.1f} s, peak {full_rss:.2f} GiB", flush=True)

    table = pd.read_csv(manifest, dtype=str)
    step = max(1, round(1 / args.change))
    # A seed of this run's own, so the pictures written really differ from what the last run left there.
    others = demo.make_items(args.items, demo.CATALOG_SEED + 1 + int(time.time()) % 100_000, prefix="other")
    for n in range(0, args.items, step):  # a new picture
        demo.render(others[n]).save(work / "catalog" / table["image"][n], quality=90)
    for n in range(step // 2, args.items, step):  # a new title
        table.loc[n, "title"] = table["title"][n] + " (new price tag)"
    manifest_b = work / "catalog" / "manifest-b.csv"
    table.to_csv(manifest_b, index=False)
    shutil.copy(manifest_b, manifest)
    up_s, up_rss, up_lines = run_timed(cmd)
    m = json.loads((work / "index" / "manifest.json").read_text())
    report = {
        "items": args.items,
        "model": args.model,
        "full_build_s": round(full_s, 1),
        "full_peak_rss_gb": round(full_rss, 2),
        "full_stages_s": stages(full_lines),
        "update_s": round(up_s, 1),
        "update_peak_rss_gb": round(up_rss, 2),
        "update_stages_s": stages(up_lines),
        "update_counts": {k: m[k] for k in ("added", "changed", "removed", "unchanged", "encoded")},
        "update_share_of_full": round(up_s / full_s, 3),
    }
    print(json.dumps(report, indent=1))
    if args.report:
        args.report.write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
