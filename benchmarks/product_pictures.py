"""What several pictures per product cost a vector search: the same 100,000 products with one picture each, and with
20,040 more pictures (10,000 products with three, one with 41), HNSW, 256-d, 300 queries at k=12 and k=100.

    python benchmarks/product_pictures.py
    python benchmarks/product_pictures.py --products 20000

A product answers with its closest picture, once: the search fetches twice k pictures, deeper only while some product
had several among them (mmsearch/index/vectors.py), so one product with many pictures does not slow every query.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from mmsearch.index import vectors as vindex  # noqa: E402


def unit(a: np.ndarray) -> np.ndarray:
    return (a / np.linalg.norm(a, axis=1, keepdims=True)).astype(np.float32)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--products", type=int, default=100_000, help="products in the index")
    args = parser.parse_args()
    rng, n, dim = np.random.default_rng(0), args.products, 256
    first = unit(rng.standard_normal((n, dim)))
    items = pd.DataFrame({"item_id": [f"i{i}" for i in range(n)], "revision": 0})
    owners = list(rng.choice(n, n // 10, replace=False)) * 2 + [7] * 40
    more = unit(first[owners] + 0.5 * rng.standard_normal((len(owners), dim)))  # other views of the same products
    pictures = pd.DataFrame({"item_id": [f"i{o}" for o in owners], "image": "", "image_hash": ""})
    pictures["position"] = pictures.groupby("item_id").cumcount() + 1
    queries = unit(rng.standard_normal((300, dim)))
    variants = {
        "one picture each": (first, None),
        f"+{len(owners):,} pictures": (np.concatenate([first, more]), pictures),
    }
    for name, (vectors, table) in variants.items():
        index = vindex.build(vectors, items, {}, "hnsw", None, table)
        for k in (12, 100):
            took = []
            for q in queries:
                started = time.perf_counter()
                index.search(q, k)
                took.append(time.perf_counter() - started)
            p50, p95 = np.median(took) * 1e3, np.percentile(took, 95) * 1e3
            print(f"{name:>22}: k={k:<3} p50 {p50:.2f} ms, p95 {p95:.2f} ms")


if __name__ == "__main__":
    main()
