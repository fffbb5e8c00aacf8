"""Retrieval quality figures: attribute precision on the demo catalog, Recall@K on image-caption datasets.

``python -m mmsearch.evaluate --model demo`` renders held-out products (at least 10 per kind/colour/pattern), indexes
them with the model, asks one query per combination ("red striped t-shirt") and prints how many of the top 10 results
match kind, colour and pattern all three.

``python -m mmsearch.evaluate --model M --dataset D`` scores any image-caption dataset with text->image and
image->text Recall@1/5/10 and median rank (see mmsearch/train/validation.py for the protocol).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from mmsearch.encode.encoders import EncoderError, load_encoder
from mmsearch.ingest.catalog import CatalogError
from mmsearch.ingest.pairs import load_pairs
from mmsearch.resources import default_data_dir
from mmsearch.train.tracking import open_tracker
from mmsearch.train.validation import attribute_precision, evaluate_pairs


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
        default=default_data_dir(),
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
            pairs = load_pairs(args.dataset, args.image_column, args.caption_column, where, args.limit)
            result = evaluate_pairs(encoder, pairs)
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
    from mmsearch.builder.pipeline import BuildError, ensure_index
    from mmsearch.config import from_env
    from mmsearch.evaluate import quality
    from mmsearch.index.vectors import IndexLoadError
    from mmsearch.search.searcher import Searcher

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
