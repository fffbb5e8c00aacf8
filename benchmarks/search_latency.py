"""Query latency of the running pieces, end to end: text/image encoding, Faiss search and Feast metadata reads.

    python benchmarks/search_latency.py                      # the demo index (built on first use)
    python benchmarks/search_latency.py --model clip:ViT-B-32/random --catalog demo

Prints median and p95 milliseconds per query for each stage and for whole searches in each mode (text searches with
the query-embedding cache emptied first, and once more answered from it).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from mmsearch import flags  # noqa: E402
from mmsearch import settings as cfgmod  # noqa: E402
from mmsearch.builder.pipeline import ensure_index  # noqa: E402
from mmsearch.encode.encoders import encode_images, load_encoder  # noqa: E402
from mmsearch.search.searcher import Searcher  # noqa: E402

QUERIES = [
    "red striped t-shirt",
    "blue mug",
    "black dotted sneaker",
    "yellow checked cap",
    "green bag",
    "white striped lamp",
    "pink bottle",
    "brown checked chair",
    "orange dotted bag",
    "purple cap",
]


def timed(fn, runs: int) -> tuple[float, float]:
    samples = []
    for i in range(runs):
        start = time.perf_counter()
        fn(i)
        samples.append((time.perf_counter() - start) * 1000)
    samples.sort()
    return statistics.median(samples), samples[int(0.95 * (len(samples) - 1))]


def uncached(searcher: Searcher) -> Searcher:
    """The searcher with its query-embedding cache emptied, so the timing includes the text encoder."""
    searcher.queries.cache_clear()
    return searcher


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    flags.add_settings(parser, cfgmod.CatalogSettings)
    parser.add_argument("--runs", type=int, default=50, help="timed runs per kind of search")
    args = parser.parse_args()
    config = cfgmod.from_env(**flags.overrides(args, cfgmod.Settings))
    encoder = load_encoder(config.model, config.device)
    config = ensure_index(config, encoder)
    searcher = Searcher.open(config, encoder)
    photos = [h.image for h in searcher.search(searcher.request(q="mug", k=10))]
    from PIL import Image

    images = [Image.open(p).convert("RGB") for p in photos]
    vec = encoder.encode_text(["warm-up"])[0]

    def text(i: int, mode: str | None = None):
        return searcher.request(q=QUERIES[i % 10], k=12, mode=mode)

    rows = [
        ("encode text", timed(lambda i: encoder.encode_text([QUERIES[i % 10]]), args.runs)),
        ("encode image", timed(lambda i: encode_images(encoder, [images[i % len(images)]]), args.runs)),
        ("faiss top-12", timed(lambda i: searcher.index.search(vec, 12), args.runs)),
        (
            "feast metadata x12",
            timed(
                lambda i: searcher.store.metadata(
                    searcher.index.catalog_id,
                    searcher.index.ids[i : i + 12],
                    searcher.index.items["revision"].tolist()[i : i + 12],
                ),
                args.runs,
            ),
        ),
        ("bm25 top-100", timed(lambda i: searcher.snapshot.keyword.search(QUERIES[i % 10], 100), args.runs)),
    ]
    for mode in ("vector", "keyword", "hybrid"):
        rows.append(
            (
                f"text, {mode} (all)",
                timed(lambda i, mode=mode: uncached(searcher).search(text(i, mode)), args.runs),
            )
        )
    rows += [
        ("text, cached (all)", timed(lambda i: searcher.search(text(i)), args.runs)),
        (
            "image (all)",
            timed(lambda i: searcher.search(searcher.request(image=images[i % len(images)], k=12)), args.runs),
        ),
    ]
    print(f"model {encoder.model_id}, {len(searcher.index):,} items, device {encoder.device}, {args.runs} runs")
    print(f"{'stage':<22}{'median ms':>10}{'p95 ms':>10}")
    for name, (median, p95) in rows:
        print(f"{name:<22}{median:>10.1f}{p95:>10.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
