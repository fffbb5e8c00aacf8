"""Speed with the real text tower (all-MiniLM-L6-v2, locked, in the Fashion-MNIST model), as a script meets it.

    python benchmarks/text_tower.py                    # builds the Fashion-MNIST index if needed, starts the app
    python benchmarks/text_tower.py --runs 100 --skip-build

Prints:
- the build's images per second on the 10,000 real test photos (a full rebuild into a scratch index: reading,
  fingerprinting, encoding, Feast, Faiss), and the encoder's alone;
- MiniLM encoding one query in this process, p50/p95 ms;
- text searches through the REST API with httpx against ``python app.py --preset fashion-mnist``, p50/p95 ms: each
  query new to the server (uncached: the text tower runs) and the same queries again (answered from the query cache).
"""

from __future__ import annotations

import argparse
import csv
import json
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from load import start_app  # noqa: E402

from mmsearch.ingest.datasets.fashion_mnist import ASSETS as FASHION_MNIST_ASSETS  # noqa: E402


def percentiles(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    return statistics.median(ordered), ordered[int(0.95 * (len(ordered) - 1))]


def queries(n: int) -> list[str]:
    """The shopper queries, then the same words in other frames, so that every one is new to the query cache."""
    with open(FASHION_MNIST_ASSETS / "shopper-queries.csv", newline="") as fh:
        base = [row["query"] for row in csv.DictReader(fh)]
    frames = ["{}", "a {}", "{} please", "looking for {}", "cheap {}", "{} for sale", "new {}", "my {}"]
    out = [frame.format(q) for frame in frames for q in base]
    return out[:n]


def build_rate(data_dir: Path, preset: str = "fashion-mnist", *more: str) -> dict:
    """A full rebuild of ``preset``'s catalog into a scratch index (``more``: further flags), as images per second."""
    scratch = Path(tempfile.mkdtemp(prefix="mmsearch-bench-index-"))
    try:
        start = time.perf_counter()
        run = subprocess.run(
            [
                sys.executable,
                "index_build.py",
                "--preset",
                preset,
                *more,
                "--full",
                "--data-dir",
                str(data_dir),
                "--index",
                str(scratch / "index"),
            ],
            cwd=ROOT,
            capture_output=True,
            text=True,
        )
        seconds = time.perf_counter() - start
        if run.returncode:
            raise SystemExit(f"index_build.py failed:\n{run.stderr[-2000:]}")
        manifest = json.loads((scratch / "index" / "manifest.json").read_text())
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    items = manifest["item_count"]
    # the encoding stage's own rate, as its progress bar ends (decoding and preprocessing included)
    rates = re.findall(r"encoding images: 100%[^\r\n]*?([\d.]+)img/s", run.stderr)
    return {
        "items": items,
        "seconds": round(seconds, 1),
        "images_per_second": round(items / seconds, 1),
        "encoding_images_per_second": float(rates[-1]) if rates else None,
    }


def encoder_rates(runs: int) -> dict:
    import numpy as np

    from mmsearch.encode.encoders import encode_pixel_tensor, load_encoder
    from mmsearch.ingest.datasets import fashion_mnist

    encoder = load_encoder("fashion-mnist", "cpu")
    photos = fashion_mnist.load_split("test").images[:2000]
    import torch
    from PIL import Image

    pixels = torch.stack([encoder.preprocess(Image.fromarray(a)) for a in photos])
    start = time.perf_counter()
    encode_pixel_tensor(encoder, pixels)
    image_rate = len(photos) / (time.perf_counter() - start)
    texts = queries(runs)
    encoder.encode_text(["warm-up"])
    samples = []
    for text in texts:
        t = time.perf_counter()
        encoder.encode_text([text])
        samples.append((time.perf_counter() - t) * 1000)
    p50, p95 = percentiles(samples)
    return {
        "image_encoder_images_per_second": round(float(image_rate), 1),
        "minilm_p50_ms": round(p50, 2),
        "minilm_p95_ms": round(p95, 2),
        "model": encoder.model_id,
        "torch_threads": torch.get_num_threads(),
        "dim": int(np.asarray(encoder.encode_text(["x"])).shape[1]),
    }


def rest_latency(url: str, runs: int, texts: list[str] | None = None) -> dict:
    """Text searches through REST: each new to the server, then the same again (the query cache's)."""
    texts = texts or queries(runs)
    out = {}
    with httpx.Client(base_url=url, timeout=30) as http:
        http.get("/api/search", params={"q": "warm-up query", "k": 12})
        for label in ("uncached", "cached"):  # the second pass repeats the first's queries
            samples = []
            for text in texts:
                t = time.perf_counter()
                r = http.get("/api/search", params={"q": text, "k": 12})
                samples.append((time.perf_counter() - t) * 1000)
                r.raise_for_status()
            p50, p95 = percentiles(samples)
            out[label] = {"p50_ms": round(p50, 2), "p95_ms": round(p95, 2), "queries": len(samples)}
    return out


def speed_flags(doc: str, port: int) -> argparse.Namespace:
    """The flags the speed scripts share, parsed."""
    parser = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=200, help="queries per timed pass")
    parser.add_argument("--port", type=int, default=port, help="port for the app this script starts")
    parser.add_argument("--skip-build", action="store_true", help="leave out the full-rebuild timing")
    parser.add_argument("--data-dir", type=Path, default=ROOT / "data", help="the app's data directory")
    return parser.parse_args()


def main() -> int:
    args = speed_flags(__doc__, 7871)
    figures: dict = {}
    if not args.skip_build:
        figures["build"] = build_rate(args.data_dir)
        print("build:", json.dumps(figures["build"]), flush=True)
    figures["in_process"] = encoder_rates(args.runs)
    print("in process:", json.dumps(figures["in_process"]), flush=True)
    app = start_app(args.port, ["--preset", "fashion-mnist", "--data-dir", str(args.data_dir)])
    try:
        figures["rest"] = rest_latency(f"http://127.0.0.1:{args.port}", args.runs)
    finally:
        app.terminate()
        app.wait(timeout=30)
    print("REST text search (httpx, k=12, hybrid):", json.dumps(figures["rest"]), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
