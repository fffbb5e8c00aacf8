"""Retrieval quality figures: attribute precision on the demo catalog, Recall@K on image-caption datasets.

``python -m mmsearch.evaluate --model demo`` renders held-out products (at least 10 per kind/colour/pattern), indexes
them with the model, asks one query per combination ("red striped t-shirt") and prints how many of the top 10 results
match kind, colour and pattern all three.

``python -m mmsearch.evaluate --model M --dataset D`` scores any image-caption dataset with text->image and
image->text Recall@1/5/10 and median rank (see mmsearch/retrieval.py for the protocol).
"""

from __future__ import annotations

import argparse
import json
import sys
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from . import demo, retrieval
from .catalog import CatalogError
from .config import PROJECT_ROOT
from .encoders import Encoder, EncoderError, load_encoder
from .tracking import open_tracker


def _render_small(args: tuple[demo.DemoItem, int]) -> np.ndarray:
    # Workers only draw and resize with PIL: torch in a forked child can deadlock on the parent's thread pool.
    item, size = args
    return np.asarray(demo.render(item).resize((size, size), Image.Resampling.BICUBIC))


def render_pixels(items: list[demo.DemoItem], preprocess, image_size: int, workers: int = 2) -> torch.Tensor:
    """Renders demo items straight to model input tensors (no files), drawing in parallel processes."""
    with ProcessPoolExecutor(max_workers=max(1, workers)) as pool:
        arrays = list(pool.map(_render_small, [(it, image_size) for it in items], chunksize=64))
    return torch.stack([preprocess(Image.fromarray(a)) for a in arrays])


def input_size(encoder: Encoder) -> int:
    """The square input side the encoder's preprocessing produces."""
    return int(encoder.preprocess(Image.new("RGB", (8, 8))).shape[-1])


def encode_pixel_tensor(encoder: Encoder, pixels: torch.Tensor, batch_size: int = 256) -> np.ndarray:
    return np.concatenate(
        [encoder.encode_pixels(pixels[i : i + batch_size]) for i in range(0, len(pixels), batch_size)]
    )


def attribute_precision(
    encoder: Encoder,
    per_combo: int = 12,
    k: int = 10,
    seed: int = demo.HELDOUT_SEED,
    workers: int = 2,
    pixels: torch.Tensor | None = None,
) -> dict:
    """Mean fraction of the top-k results matching every attribute of the query, over one query per combination."""
    all_combos = demo.combos()
    items = demo.make_items(per_combo * len(all_combos), seed, prefix="heldout")
    if pixels is None:
        pixels = render_pixels(items, encoder.preprocess, input_size(encoder), workers)
    image_emb = encode_pixel_tensor(encoder, pixels)
    queries = [demo.query_for(*c) for c in all_combos]
    text_emb = np.concatenate([encoder.encode_text(queries[i : i + 256]) for i in range(0, len(queries), 256)])
    top = np.argsort(-(text_emb @ image_emb.T), axis=1)[:, :k]
    labels = [(it.kind, it.colour, it.pattern) for it in items]
    per_query = np.array([[labels[j] == combo for j in row] for row, combo in zip(top, all_combos)], dtype=float)
    by_attr = {
        name: float(np.mean([[labels[j][a] == combo[a] for j in row] for row, combo in zip(top, all_combos)]))
        for a, name in enumerate(["kind", "colour", "pattern"])
    }
    return {
        "precision_at_k": float(per_query.mean()),
        "k": k,
        "queries": len(queries),
        "heldout_images": len(items),
        "per_attribute": by_attr,
        "worst_queries": sorted(zip(per_query.mean(1).round(2).tolist(), queries))[:5],
    }


def print_retrieval(report: dict) -> None:
    print(f"{'direction':<16}" + "".join(f"{k:>8}" for k in ("R@1", "R@5", "R@10", "medR")) + f"{'queries':>9}")
    for direction in ("text_to_image", "image_to_text"):
        m = report[direction]
        print(
            f"{direction:<16}"
            + "".join(f"{100 * m[k]:>8.1f}" for k in ("R@1", "R@5", "R@10"))
            + f"{m['median_rank']:>8.1f}{m['queries']:>9}"
        )


def main(argv: list[str] | None = None, prog: str | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog=prog, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", default="demo", help="model spec (demo, two-tower:<dir>, clip:<arch>/<tag>)")
    parser.add_argument(
        "--dataset",
        default="demo",
        help="demo (attribute precision on held-out renders), hf:<name or folder>[:split], or a "
        "captions file (.csv/.jsonl/.parquet) for Recall@K; Flickr30k 1k test: "
        "hf:nlphuji/flickr30k:test --where split=test",
    )
    parser.add_argument("--image-column", default="image", help="--dataset: the image column (default: image)")
    parser.add_argument("--caption-column", default="caption", help="--dataset: the caption column (default: caption)")
    parser.add_argument(
        "--where",
        action="append",
        default=[],
        metavar="COLUMN=VALUE",
        help="keep only rows with this value (repeatable)",
    )
    parser.add_argument("--limit", type=int, help="evaluate on the first N images")
    parser.add_argument("--device", default="auto", help="auto, cpu or cuda[:N]")
    parser.add_argument("--per-combo", type=int, default=12, help="demo: held-out renders per kind/colour/pattern")
    parser.add_argument("--report", type=Path, help="also write the figures as JSON here")
    parser.add_argument(
        "--tracker",
        default="mlflow",
        choices=["mlflow", "wandb", "none"],
        help="where the run is logged (mlflow: a sqlite file in the data directory)",
    )
    parser.add_argument(
        "--data-dir",
        type=Path,
        default=PROJECT_ROOT / "data",
        help="where the MLflow database and, with --queries, the Feast stores and indexes live",
    )
    parser.add_argument(
        "--queries",
        help="judge search instead: 'demo' (the generated labelled demo queries), "
        "'handwritten' (queries written by hand in other phrasings), or a queries file (qid, "
        "query[, filters, split, form]) with --qrels; nDCG@10, Recall@10, MRR@10 and strict P@10 "
        "for vector, keyword and hybrid search with paired significance tests, written with a plot "
        "into the index directory",
    )
    parser.add_argument(
        "--out-dir",
        type=Path,
        help="with --queries: write the report and plot here instead of into the index directory (where the app's "
        "Evaluation tab reads them)",
    )
    parser.add_argument("--qrels", type=Path, help="graded judgements for --queries: qid, item_id, grade")
    parser.add_argument("--catalog", default="demo", help="with --queries: the catalog searched")
    parser.add_argument("--index", type=Path, help="with --queries: the index directory (default: the model's)")
    parser.add_argument("--keyword-weight", type=float, help="with --queries: hybrid weight (default: the app's)")
    parser.add_argument("--rrf-k", type=int, help="with --queries: hybrid RRF constant (default: the app's)")
    args = parser.parse_args(argv)
    if args.queries:
        return judge_search(args)
    try:
        encoder = load_encoder(args.model, args.device)
        if args.dataset == "demo":
            result = attribute_precision(encoder, per_combo=args.per_combo)
        else:
            where = dict(w.split("=", 1) for w in args.where)
            pairs = retrieval.load_pairs(args.dataset, args.image_column, args.caption_column, where, args.limit)
            result = retrieval.evaluate_pairs(encoder, pairs)
    except (EncoderError, CatalogError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    result |= {"model": encoder.model_id, "dataset": args.dataset}
    if args.dataset == "demo":
        print(
            f"model {encoder.model_id}: {result['precision_at_k']:.1%} of top-{result['k']} results match kind, "
            f"colour and pattern ({result['queries']} queries over {result['heldout_images']} held-out renders)"
        )
        print("per attribute: " + ", ".join(f"{k} {v:.1%}" for k, v in result["per_attribute"].items()))
        print("hardest queries: " + "; ".join(f"{q!r} {p:.0%}" for p, q in result["worst_queries"]))
    else:
        print(f"model {encoder.model_id} on {args.dataset}: {result['images']} images, {result['captions']} captions")
        print_retrieval(result)
    if args.report:
        args.report.write_text(json.dumps(result, indent=2))
    tracker = open_tracker(args.tracker, args.data_dir, "mmsearch-evaluate", run_name=encoder.model_id)
    tracker.log_params({"model": encoder.model_id, "dataset": args.dataset, "where": args.where, "limit": args.limit})
    tracker.log_metrics(flat_metrics(result))
    tracker.log_dict(result, "report.json")
    tracker.finish()
    return 0


def judge_search(args: argparse.Namespace) -> int:
    """--queries: runs a labelled query set through the index in every mode and reports/plots the figures."""
    from . import quality
    from .build import BuildError, ensure_index
    from .config import from_env
    from .index import IndexLoadError
    from .search import Searcher

    try:
        if args.queries in quality.SETS:
            queries, judged = quality.load_set(args.queries)
        elif args.qrels is None:
            raise ValueError("--queries FILE needs --qrels FILE (qid, item_id, grade)")
        else:
            queries, judged = quality.load_set(Path(args.queries), args.qrels)
        config = from_env(
            data_dir=args.data_dir,
            catalog=args.catalog,
            model=args.model,
            index=args.index,
            device=args.device,
            keyword_weight=args.keyword_weight,
            rrf_k=args.rrf_k,
        )
        encoder = load_encoder(args.model, args.device)
        searcher = Searcher.open(ensure_index(config, encoder), encoder)
        report = quality.judge(
            searcher,
            queries,
            judged,
            args.queries,
            progress=lambda f, m: print(f"[{f:4.0%}] {m}", flush=True),
            directory=args.out_dir,
        )
    except (EncoderError, CatalogError, ValueError, BuildError, IndexLoadError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    quality.print_report(report)
    where = args.out_dir or searcher.index.path
    report_file, plot_file = quality.report_files(args.queries)
    print(f"wrote {where / report_file} and {where / plot_file} (the app's Evaluation tab shows them)")
    if args.report:
        args.report.write_text(json.dumps(report, indent=2))
    tracker = open_tracker(args.tracker, args.data_dir, "mmsearch-evaluate", run_name=f"search {encoder.model_id}")
    tracker.log_params(
        {
            "model": encoder.model_id,
            "queries": args.queries,
            "catalog": args.catalog,
            "keyword_weight": report["keyword_weight"],
            "rrf_k": report["rrf_k"],
        }
    )
    tracker.log_metrics(
        {
            f"{mode}.{m}": v
            for mode, subsets in report["table"].items()
            for m, v in subsets["all"].items()
            if m != "queries"
        }
    )
    tracker.log_dict(report, "search_quality.json")
    tracker.finish()
    return 0


def flat_metrics(result: dict) -> dict[str, float]:
    """The numbers of a report as flat metric names (text_to_image.R@1, per_attribute.kind, precision_at_k)."""
    out = {}
    for key, value in result.items():
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            out[key] = float(value)
        elif isinstance(value, dict):
            out |= {f"{key}.{k}": float(v) for k, v in value.items() if isinstance(v, (int, float))}
    return out


if __name__ == "__main__":
    sys.exit(main())
