"""The stakeholders' loop end to end on the demo catalog, with the catalog's own labels standing in for a rater:

    python benchmarks/judgments_loop.py                  # a fresh data directory under /tmp
    python benchmarks/judgments_loop.py --data-dir DIR
    python benchmarks/judgments_loop.py --preset fashion-mnist   # the shopper queries on Fashion-MNIST's photos

1. Judge: for each hand-written query (the demo's assets/handwritten-queries.csv without filters, or Fashion-MNIST's
   shopper queries) the Judge tab's pool (top 10 of every mode, feedback/pooling.py) is graded from the catalog's
   labels (a full match: 3 perfect, one attribute off: 1 related, else 0), written as CSV and imported with
   ``mmsearch judgments import``.
2. Evaluate the served demo model on the test half of the judged queries (``python -m mmsearch.evaluate --judgments
   --judged-half test``), tune it on the train half (``python -m mmsearch.train --judgments``), evaluate the tuned
   model on the same test half.
3. Agree (demo only): a second rater's grades of six queries' pools (benchmarks/data/demo-second-rater.csv, graded
   by looking at the pictures, without the labels) are imported too, and the raters' agreement is computed as
   GET /api/judgments/agreement computes it.
4. Interleave: ``python app.py --interleave keyword --interleave-share 1`` and a scripted visitor who, for each query
   (three times), clicks the first result the labels call a full match; the Analytics figures of the comparison.

The labels are not a person: the figures show the loop working, and how a tuned model moves on held-out queries; a
real judged set comes from people in the Judge tab.
"""

from __future__ import annotations

import argparse
import csv
import json
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
LABEL_GRADES = {2: 3, 1: 1}  # the labels' 2 (all named attributes match) and 1 (one off) on the 0-3 scale


QUERY_SETS = {"demo": "handwritten", "fashion-mnist": "shopper"}
SECOND_RATER = ROOT / "benchmarks" / "data" / "demo-second-rater.csv"


def run(*args: str, data: Path, preset: str = "") -> str:
    started = time.time()
    command = [sys.executable, *args, "--data-dir", str(data)]
    if preset and "mmsearch.train" not in args:
        command += ["--preset", preset]
    elif preset:
        command += ["--judged-model", preset, "--judged-catalog", preset]
    out = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=False)
    if out.returncode:
        raise SystemExit(f"{' '.join(args)} failed:\n{out.stderr[-3000:]}")
    print(f"$ {' '.join(args)}  ({time.time() - started:.0f} s)\n{out.stdout.strip()}\n", flush=True)
    return out.stdout


def labelled(preset: str):
    from mmsearch.evaluate import quality

    queries, labels = quality.load_set(QUERY_SETS[preset or "demo"])
    return queries[queries["filters"] == ""], labels


def judge_with_labels(data: Path, preset: str) -> tuple[Path, dict, dict]:
    from mmsearch import settings as cfgmod
    from mmsearch.builder.pipeline import ensure_index
    from mmsearch.encode.encoders import load_encoder
    from mmsearch.evaluate import quality
    from mmsearch.feedback.pooling import pool
    from mmsearch.search.searcher import Searcher

    queries, labels = labelled(preset)
    config = cfgmod.from_env(data_dir=data, **({"preset": preset} if preset else {}))
    encoder = load_encoder(config.model, config.device)
    searcher = Searcher.open(ensure_index(config, encoder), encoder)
    labels = quality.resolve(labels, quality.searcher_items(searcher))  # Fashion-MNIST's are by category
    path = data / "label-judgments.csv"
    grades = {0: 0, 1: 0, 3: 0}
    with open(path, "w", newline="") as fh:
        out = csv.writer(fh)
        out.writerow(["query", "item_id", "grade", "rater"])
        for q in queries.itertuples(index=False):
            for result in pool([searcher], q.query):
                grade = LABEL_GRADES.get(labels.get(q.qid, {}).get(result.item_id, 0), 0)
                grades[grade] += 1
                out.writerow([q.query, result.item_id, grade, "catalog-labels"])
    return path, {"queries": len(queries), "grades": grades}, labels


def interleaving(data: Path, preset: str, labels: dict) -> dict:
    queries, _ = labelled(preset)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    app = subprocess.Popen(
        [
            sys.executable,
            "app.py",
            "--port",
            str(port),
            "--data-dir",
            str(data),
            "--interleave",
            "keyword",
            "--interleave-share",
            "1",
            "--judging",
            "open",
        ],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(600):
            try:
                if httpx.get(url + "/readyz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(1)
        with httpx.Client(base_url=url, timeout=60) as http:
            # Each query three times: one interleaved search is a coin toss of team orders; three per query make a
            # session of 240 (80 hand-written queries), and a second run of the script lands near the first.
            for q in [*queries.itertuples(index=False)] * 3:
                body = http.get("/api/search", params={"q": q.query, "k": 10}).json()
                relevant = labels.get(q.qid, {})
                for position, hit in enumerate(body["results"], start=1):
                    if relevant.get(hit["item_id"], 0) == 2:  # the visitor clicks the first full match
                        event = {"query_id": body["query_id"], "item_id": hit["item_id"], "position": position}
                        http.post("/api/events", json=event | {"action": "click"}).raise_for_status()
                        break
            found = http.get("/api/analytics", params={"days": 1}).json()
            found["agreement"] = http.get("/api/judgments/agreement").json()
            return found
    finally:
        app.terminate()
        app.wait(30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", type=Path, help="where the database, indexes and tuned model go")
    parser.add_argument(
        "--preset", default="", choices=["", "fashion-mnist"], help="the catalog and model (the demo's)"
    )
    args = parser.parse_args()
    data = args.data_dir or Path(tempfile.mkdtemp(prefix="mmsearch-loop-"))
    preset = args.preset
    csv_path, judged, labels = judge_with_labels(data, preset)
    print(f"judged the pools of {judged['queries']} queries: grades {judged['grades']}", flush=True)
    run("-m", "mmsearch.cli", "judgments", "import", str(csv_path), data=data)
    tuned = data / "models" / "judged"
    before, after = data / "before.json", data / "after.json"
    on_test_half = ["-m", "mmsearch.evaluate", "--judgments", "--judged-half", "test", "--tracker", "none"]
    run(*on_test_half, "--report", str(before), data=data, preset=preset)
    run("-m", "mmsearch.train", "--judgments", "--out", str(tuned), "--tracker", "none", data=data, preset=preset)
    run(*on_test_half, "--model", f"two-tower:{tuned}", "--report", str(after), data=data, preset=preset)
    if not preset:
        run("-m", "mmsearch.cli", "judgments", "import", str(SECOND_RATER), data=data)
    found = interleaving(data, preset, labels)
    mixed = found["interleaving"]
    result = {
        "judged": judged,
        "before_test_half": json.loads(before.read_text())["systems"],
        "after_test_half": json.loads(after.read_text())["systems"],
        "interleaving": {k: v for k, v in mixed.items() if k != "per_query"},
        "agreement": {k: v for k, v in found["agreement"].items() if k != "disagreements"},
        "click_through_rate": found["click_through_rate"],
        "mean_click_position": found["mean_click_position"],
    }
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
