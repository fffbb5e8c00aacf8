"""What facets, sorting and pages cost a search, through REST as a client meets them, on a synthetic catalog.

    python benchmarks/facets.py                     # 100,000 items (100 categories, prices 1-200), 300 searches each
    python benchmarks/facets.py --items 20000 --searches 100

One client, one search at a time; the variants are interleaved query by query (so that a slow second of the machine
falls on all of them alike): plain, with facets=category,price, sorted by -price, the third page (offset=24), and all
three at once, each in vector and in hybrid mode, in a new order for each query, after an untimed search that
leaves the query's embedding cached for all of them. Prints p50/p95 in ms and each variant's p50 against plain's.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import httpx
import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from replicas import build  # noqa: E402
from scale import WORDS, bench_catalog  # noqa: E402
from services import RunningApp  # noqa: E402

VARIANTS = {
    "plain": {},
    "facets": {"facets": "category,price"},
    "sorted": {"sort": "-price"},
    "page 3": {"offset": 24},
    "all three": {"facets": "category,price", "sort": "-price", "offset": 24},
}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--items", type=int, default=100_000, help="synthetic catalog size")
    parser.add_argument("--dim", type=int, default=256, help="embedding dimension")
    parser.add_argument("--searches", type=int, default=300, help="searches per variant and mode")
    parser.add_argument("--work", type=Path, default=Path("/tmp/mmsearch-facets-bench"), help="scratch directory")
    args = parser.parse_args()
    work = args.work
    model, catalog = bench_catalog(work, args.items, args.dim)
    index = work / f"index-{args.items}"
    if not (index / "manifest.json").exists():
        print(f"built {args.items:,} items in {build(catalog, model, index, work / 'data', 'faiss'):.0f} s")
    app = RunningApp(
        work / "data",
        {"MMSEARCH_CATALOG": str(catalog), "MMSEARCH_MODEL": model, "MMSEARCH_INDEX": str(index)},
        timeout=600,
    )
    rng = np.random.default_rng(0)
    try:
        with httpx.Client(base_url=app.url, timeout=60) as http:
            for mode in ("vector", "hybrid"):
                took = {name: [] for name in VARIANTS}
                for n in range(args.searches + 10):
                    q = " ".join(rng.choice(WORDS, 2))
                    # Untimed first: the query's embedding is then cached for every variant alike.
                    http.get("/api/search", params={"q": q, "k": 12, "mode": mode}).raise_for_status()
                    for name in rng.permutation(list(VARIANTS)):
                        extra = VARIANTS[name]
                        started = time.perf_counter()
                        r = http.get("/api/search", params={"q": q, "k": 12, "mode": mode} | extra)
                        r.raise_for_status()
                        if n >= 10:  # the first ten warm the process
                            took[name].append(1000 * (time.perf_counter() - started))
                plain = np.percentile(took["plain"], 50)
                print(f"\n{args.items:,} items, {mode} mode, {args.searches} searches each (ms)")
                print(f"{'variant':<12}{'p50':>8}{'p95':>8}{'p50 / plain':>13}")
                for name, ms in took.items():
                    p50, p95 = np.percentile(ms, 50), np.percentile(ms, 95)
                    print(f"{name:<12}{p50:>8.2f}{p95:>8.2f}{p50 / plain:>13.2f}")
    finally:
        app.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
