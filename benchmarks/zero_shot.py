"""Speed of the zero-shot model on Tux Paint's stamps (real colour pictures, PNG and SVG), as a user meets it.

    python benchmarks/zero_shot.py                 # needs Debian's tuxpaint-stamps-default
    python benchmarks/zero_shot.py --skip-build --runs 100

Prints:
- the build's images per second: a full rebuild of the stamps into a scratch index (reading and checking every
  picture, rendering the SVGs, decoding, encoding, Feast, Faiss), for each text tower;
- each image tower alone at the sides measured (batch 32, fp32), images per second in torch and in ONNX Runtime,
  and the largest difference between their features;
- text searches through the REST API with httpx against ``python app.py --preset stamps --model M``, p50/p95 ms, each
  query new to the server (the text tower runs) and the same again (the query cache), for MiniLM and for the
  multilingual tower.
"""

from __future__ import annotations

import csv
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from load import start_app  # noqa: E402
from text_tower import build_rate, rest_latency, speed_flags  # noqa: E402

from mmsearch.ingest.datasets.tuxpaint_stamps import ASSETS  # noqa: E402

MODELS = ("zero-shot", "zero-shot-multilingual")


def queries(n: int) -> list[str]:
    """The stamps' queries in every language, in several frames, so that every one is new to the query cache."""
    with open(ASSETS / "queries.csv", newline="", encoding="utf-8") as fh:
        base = [row["query"] for row in csv.DictReader(fh)]
    frames = ["{}", "a {}", "{} please", "looking for {}", "{} picture", "my {}"]
    return [frame.format(q) for frame in frames for q in base][:n]


# (tower, side): the sides measured for the choice in docs/zero-shot.md, and each named model's
TOWER_SIDES = (
    ("efficientnet-lite0", 128),
    ("efficientnet-lite0", 160),
    ("efficientnet-lite0", 224),
    ("efficientnet-lite2", 224),
    ("efficientnet-lite2", 260),
)


def tower_rates(batch: int = 32, batches: int = 4) -> dict:
    """Each tower alone, images per second in torch (channels-last, fp32, eager) and in ONNX Runtime (what builds and
    uploads run on the CPU), and the largest difference between the two's pooled features."""
    import torch

    from mmsearch.encode.image_towers import load_tower
    from mmsearch.encode.tower_runtime import RuntimeTower, runtime_tower

    def rate(tower, pixels) -> tuple[float, torch.Tensor]:
        with torch.inference_mode():
            pooled = tower(pixels)[0]  # the first call allocates
            start = time.perf_counter()
            for _ in range(batches):
                tower(pixels)
        return round(batch * batches / (time.perf_counter() - start), 1), pooled

    out = {}
    for name, side in TOWER_SIDES:
        tower = load_tower(name, side)
        pixels = torch.randn(batch, 3, side, side, generator=torch.Generator().manual_seed(0))
        eager, pooled = rate(tower, pixels)
        runtime = runtime_tower(tower)
        figures = {"torch": eager}
        if isinstance(runtime, RuntimeTower):
            fast, theirs = rate(runtime, pixels)
            figures |= {"onnxruntime": fast, "pooled_max_abs_diff": float((theirs - pooled).abs().max())}
        out[f"{name}@{side}"] = figures
    return {"images/s, batch 32": out, "torch_threads": torch.get_num_threads()}


def main() -> int:
    args = speed_flags(__doc__, 7872)
    for model in MODELS if not args.skip_build else ():
        print(f"build ({model}):", json.dumps(build_rate(args.data_dir, "stamps", "--model", model)), flush=True)
    print("image tower alone:", json.dumps(tower_rates()), flush=True)
    for model in MODELS:
        app = start_app(args.port, ["--preset", "stamps", "--model", model, "--data-dir", str(args.data_dir)])
        try:
            figures = rest_latency(f"http://127.0.0.1:{args.port}", args.runs, queries(args.runs))
        finally:
            app.terminate()
            app.wait(timeout=30)
        print(f"REST text search ({model}, httpx, k=12, hybrid):", json.dumps(figures), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
