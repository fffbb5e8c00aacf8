"""The Milvus vector store against in-process Faiss, on the same vectors, as the index layer uses them.

    python benchmarks/vector_store.py                  # 200,000 embedding-like 128-d vectors, HNSW, a Milvus of its own
    python benchmarks/vector_store.py --items 1000000 --kind ivfpq
    python benchmarks/vector_store.py --milvus milvus://127.0.0.1:19530   # a server already running
    python benchmarks/vector_store.py --index pipeline/index --queries handwritten   # a real index and query set

Prints, for each store: the build (collection or Faiss index made, vectors inserted, made searchable), single-query
search p50/p95 in ms over 200 queries (``--searches``) unfiltered and with a filter on a catalog column keeping 1%
and 50% of the catalog (with Faiss: exact search of the allowed rows, and a filtered graph search; with Milvus: the
filter as a Milvus expression over the column it holds), and recall@10 against exact search. Vectors have a low
intrinsic dimension, as embeddings do (16-d clusters mapped into 128-d), so that recall means what it does on
embeddings: uniformly random vectors are the worst case of every graph index.

With ``--index``, the vectors are a built index's (``dvc repro`` makes pipeline/index: the demo) and the queries a
query set's texts encoded by that index's model: it prints each kind's top-10 overlap between Milvus and exact Faiss.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from mmsearch.index import milvus_store  # noqa: E402
from mmsearch.index import vectors as vindex  # noqa: E402
from mmsearch.index.filters import matching_rows, parse_filters  # noqa: E402


def embedding_like(n: int, dim: int, seed: int) -> np.ndarray:
    """Unit vectors of low intrinsic dimension, as embeddings are: 16-d points around 64 centres, mapped into ``dim``
    dimensions (the same map for every seed), plus a little noise."""
    mapping = np.random.default_rng(99).standard_normal((16, dim)).astype(np.float32)
    centres = np.random.default_rng(98).standard_normal((64, 16)).astype(np.float32)
    rng = np.random.default_rng(seed)
    out = np.empty((n, dim), np.float32)
    for start in range(0, n, 100_000):  # bounded temporaries at a million
        m = min(100_000, n - start)
        latent = centres[rng.integers(0, 64, m)] + 0.5 * rng.standard_normal((m, 16)).astype(np.float32)
        part = latent @ mapping + 0.3 * rng.standard_normal((m, dim)).astype(np.float32)
        out[start : start + m] = part / np.linalg.norm(part, axis=1, keepdims=True)
    return out


@contextmanager
def milvus_at(given: str, scratch: Path):
    """The server at ``given`` (milvus://HOST:PORT), or one started in ``scratch`` and stopped after."""
    if given:
        yield given
        return
    from services import MilvusServer

    server = MilvusServer(scratch / "milvus")
    try:
        yield server.url
    finally:
        server.stop()


def catalog(n: int) -> pd.DataFrame:
    """Items with a column that keeps 1% per value and one that keeps half, in no order the vectors know of."""
    rng = np.random.default_rng(7)
    return pd.DataFrame(
        {
            "item_id": [str(i) for i in range(n)],
            "revision": 0,
            "category": [f"c{c}" for c in rng.integers(0, 100, n)],
            "half": rng.choice(["yes", "no"], n),
        }
    )


def measure(index: vindex.VectorIndex, vectors: np.ndarray, queries: np.ndarray) -> dict:
    n, out = len(vectors), {}
    for name, text in (("unfiltered", ""), ("filter 1%", "category=c7"), ("filter 50%", "half=yes")):
        clauses = parse_filters(text)
        rows = matching_rows(index.items, clauses) if clauses else None
        took, found = [], 0
        for q in queries:
            start = time.perf_counter()
            hits = index.search(q, 10, rows, clauses)[0]
            took.append(1000 * (time.perf_counter() - start))
            pool = np.arange(n) if rows is None else rows
            exact = pool[np.argpartition(-(vectors[pool] @ q), 10)[:10]]
            found += len({int(i) for i, _ in hits} & set(exact.tolist()))
        out[name] = {
            "p50_ms": round(float(np.percentile(took, 50)), 2),
            "p95_ms": round(float(np.percentile(took, 95)), 2),
            "recall@10": round(found / (10 * len(queries)), 3),
        }
    return out


def build(vectors: np.ndarray, kind: str, how, directory: Path) -> tuple[vindex.VectorIndex, float]:
    items = catalog(len(vectors))
    start = time.perf_counter()
    index = vindex.build(vectors, items, {"model_id": "bench", "catalog_id": "bench"}, kind, how)
    vindex.write(index, directory)
    seconds = time.perf_counter() - start
    return vindex.load(directory, "bench", store=getattr(how, "store", vindex.FAISS)), seconds


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--items", type=int, default=200_000)
    parser.add_argument("--dim", type=int, default=128)
    parser.add_argument("--kind", default="hnsw", choices=("flat", "hnsw", "ivfpq"))
    parser.add_argument("--searches", type=int, default=200, help="synthetic queries to time")
    parser.add_argument("--milvus", default="", help="a running server's milvus://HOST:PORT (default: start one)")
    parser.add_argument("--index", type=Path, help="a built index's directory: its vectors, not synthetic ones")
    parser.add_argument("--queries", default="handwritten", help="with --index: the query set its model encodes")
    args = parser.parse_args()
    if args.index:
        return overlap(args)

    vectors = embedding_like(args.items, args.dim, 0)
    queries = embedding_like(args.searches, args.dim, 1)
    scratch = Path(tempfile.mkdtemp(prefix="mmsearch-bench-vector-store-"))
    with milvus_at(args.milvus, scratch) as store:
        for name, how in (
            ("faiss", None),
            (store, vindex.engine_kind(args.kind, store, milvus_store.alias_for(scratch / "milvus-index"))),
        ):
            folder = scratch / ("faiss-index" if how is None else "milvus-index")
            index, seconds = build(vectors, args.kind, how, folder)
            figures = {"items": args.items, "dim": args.dim, "kind": args.kind, "build_s": round(seconds, 1)}
            print(f"{name}:", json.dumps(figures | measure(index, vectors, queries)), flush=True)
    return 0


def overlap(args) -> int:
    """Top-10 overlap of Milvus with Faiss for each kind, on a real index's vectors and a query set's texts."""
    from mmsearch.encode.encoders import load_encoder
    from mmsearch.evaluate.quality import load_set

    built = vindex.load(args.index)
    vectors = np.asarray(built.vectors[built.slots], np.float32)
    encoder = load_encoder(built.manifest["model_spec"], "cpu")
    queries = encoder.encode_text(load_set(args.queries)[0]["query"].tolist())
    scratch = Path(tempfile.mkdtemp(prefix="mmsearch-bench-vector-store-"))
    with milvus_at(args.milvus, scratch) as store:
        exact, _ = build(vectors, "flat", None, scratch / "exact")
        truth = [[i for i, _ in exact.search(q, 10)[0]] for q in queries]
        for kind in ("flat", "hnsw", "ivfpq"):
            folder = scratch / f"milvus-{kind}"
            index, seconds = build(
                vectors, kind, vindex.engine_kind(kind, store, milvus_store.alias_for(folder)), folder
            )
            found = [[i for i, _ in index.search(q, 10)[0]] for q in queries]
            shared = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(truth, found)])
            print(
                f"{args.index} in Milvus, {kind}:",
                json.dumps(
                    {
                        "items": len(vectors),
                        "queries": len(queries),
                        "top10_overlap_with_exact_faiss": round(float(shared), 3),
                        "build_s": round(seconds, 1),
                    }
                ),
                flush=True,
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
