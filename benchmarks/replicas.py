"""The same REST load against one process, one and two Ray Serve replicas (Faiss), and one process searching Milvus,
on a synthetic catalog, printing where each search's time goes: in the server (its own request histogram, summed
over every replica's metrics port) and outside it (Ray Serve's proxy, the loopback, the client).

    python benchmarks/replicas.py                                  # 100,000 items, 1 and 8 clients x 20 s each
    python benchmarks/replicas.py --items 20000 --seconds 10
    python benchmarks/replicas.py --milvus milvus://127.0.0.1:19530 # a running server (default: one started here)

On a 2-core machine the clients, the proxy and every replica share the same two cores: the figures show what a
replica costs, not how replicas scale (that needs a core or a machine per replica).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import time
from contextlib import ExitStack
from pathlib import Path

import httpx
import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from scale import WORDS, bench_catalog  # noqa: E402
from services import RunningApp  # noqa: E402
from vector_store import milvus_at  # noqa: E402


def build(catalog: Path, model: str, index: Path, data: Path, store: str) -> float:
    started = time.perf_counter()
    args = ["--catalog", str(catalog), "--model", model, "--index", str(index), "--data-dir", str(data)]
    done = subprocess.run(
        [sys.executable, "index_build.py", *args, "--vector-store", store, "--duplicate-threshold", "0"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    if done.returncode:
        raise SystemExit(done.stderr[-3000:])
    return time.perf_counter() - started


def server_seconds(url: str) -> tuple[float, float]:
    """(seconds, searches) the server's own histogram holds for /api/search, over every process behind ``url``."""
    from prometheus_client.parser import text_string_to_metric_families

    total = count = 0.0
    for target in httpx.get(url + "metrics/targets", timeout=30).json():
        address = target["targets"][0]
        body = httpx.get(f"http://{address}/metrics", timeout=30).text
        for family in text_string_to_metric_families(body):
            for s in family.samples:
                if s.labels.get("endpoint") == "/api/search":
                    total += s.value if s.name == "mmsearch_request_seconds_sum" else 0.0
                    count += s.value if s.name == "mmsearch_request_seconds_count" else 0.0
    return total, count


async def load(url: str, clients: int, seconds: float) -> dict:
    """``clients`` httpx clients (no cookies: spread over the replicas) searching words for ``seconds``."""
    times, errors, replicas = [], 0, set()
    deadline = time.perf_counter() + seconds
    rng = np.random.default_rng(clients)

    async def client() -> None:
        nonlocal errors
        async with httpx.AsyncClient(base_url=url, timeout=30) as http:
            while time.perf_counter() < deadline:
                q = " ".join(rng.choice(WORDS, 3))  # mostly new: the text tower runs as for a live site's tail
                started = time.perf_counter()
                r = await http.get("/api/search", params={"q": q, "k": 10, "mode": "vector"})
                times.append(time.perf_counter() - started)
                errors += r.status_code != 200
                replicas.add(r.headers.get("x-mmsearch-replica"))

    await asyncio.gather(*(client() for _ in range(clients)))
    ms = np.asarray(times) * 1000
    return {
        "searches": len(ms),
        "q/s": len(ms) / seconds,
        "p50": float(np.percentile(ms, 50)),
        "p95": float(np.percentile(ms, 95)),
        "mean": float(ms.mean()),
        "errors": errors,
        "replicas": len(replicas - {None}) or 1,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--items", type=int, default=100_000, help="synthetic catalog size")
    parser.add_argument("--dim", type=int, default=256, help="embedding dimension")
    parser.add_argument("--levels", default="1,8", help="concurrent clients per level")
    parser.add_argument("--seconds", type=float, default=20.0, help="length of each level")
    parser.add_argument("--milvus", default="", help="a running Milvus (milvus://HOST:PORT); default: start one")
    parser.add_argument("--work", type=Path, default=Path("/tmp/mmsearch-replicas-bench"), help="scratch directory")
    args = parser.parse_args()
    work = args.work
    model, catalog = bench_catalog(work, args.items, args.dim)
    levels = [int(x) for x in args.levels.split(",")]
    print(f"{args.items:,} items, {args.dim}-d, {os.cpu_count()} cores; vector-mode text searches, {args.seconds:g} s")
    with ExitStack() as stack:
        milvus = stack.enter_context(milvus_at(args.milvus, work))
        setups = []
        for store, name in (("faiss", "faiss"), (milvus, "milvus")):
            seconds = build(catalog, model, work / f"index-{name}", work / f"data-{name}", store)
            print(f"built into {name} in {seconds:.0f} s")
            setups.append((name, store))
        runs = [
            ("Faiss, one process", "faiss", "faiss", {}),
            ("Faiss, 1 replica", "faiss", "faiss", {"MMSEARCH_REPLICAS": "1"}),
            ("Faiss, 2 replicas", "faiss", "faiss", {"MMSEARCH_REPLICAS": "2"}),
            ("Milvus, one process", "milvus", milvus, {}),
        ]
        head = f"{'setup':<22}{'clients':>8}{'q/s':>8}{'p50 ms':>9}{'p95 ms':>9}{'in server':>11}{'outside':>9}"
        print(f"\n{head}{'errors':>8}")
        for label, name, store, env in runs:
            started = time.perf_counter()
            app = RunningApp(
                work / f"data-{name}",
                {
                    "MMSEARCH_CATALOG": str(catalog),
                    "MMSEARCH_MODEL": model,
                    "MMSEARCH_INDEX": str(work / f"index-{name}"),
                    "MMSEARCH_VECTOR_STORE": store,
                    **env,
                },
                timeout=600,
            )
            try:
                ready = time.perf_counter() - started
                asyncio.run(load(app.url, 2, 3))  # warm: each process's first searches
                for clients in levels:
                    before = server_seconds(app.url)
                    got = asyncio.run(load(app.url, clients, args.seconds))
                    after = server_seconds(app.url)
                    served = after[1] - before[1]
                    inside = 1000 * (after[0] - before[0]) / served if served else float("nan")
                    print(
                        f"{label:<22}{clients:>8}{got['q/s']:>8.0f}{got['p50']:>9.1f}{got['p95']:>9.1f}"
                        f"{inside:>11.1f}{got['mean'] - inside:>9.1f}{got['errors']:>8}"
                    )
                print(f"{'':<22}(ready to serve in {ready:.0f} s; answers from {got['replicas']} process(es))")
            finally:
                app.stop()
    print(
        "\n'in server': the mean of the replicas' own request histograms; 'outside': the client's mean minus it "
        "(the proxy's hop, the loopback, the client's own time). On 2 cores the replicas and the clients share the "
        "cores: this shows what a replica costs, not how replicas scale."
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
