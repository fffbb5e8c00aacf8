"""Retrieval quality figures: attribute precision on the demo catalog, Recall@K on image-caption datasets.

``python -m mmsearch.evaluate --model demo`` renders held-out products (at least 10 per kind/colour/pattern), indexes
them with the model, asks one query per combination ("red striped t-shirt") and prints how many of the top 10 results
match kind, colour and pattern all three.

``python -m mmsearch.evaluate --model M --dataset D`` scores any image-caption dataset with text->image and
image->text Recall@1/5/10 and median rank (see mmsearch/train/validation.py for the protocol).

``python -m mmsearch.evaluate --preset fashion-mnist`` measures a model on a labelled dataset's test photos
(Fashion-MNIST's 10,000): zero-shot accuracy (prompt ensemble) beside the published baselines, a confusion matrix
plot, image->image P@10; with ``--queries NAME``, search quality per mode on one of its labelled query sets.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from mmsearch import flags
from mmsearch.encode.encoders import EncoderError, load_encoder
from mmsearch.evaluate.settings import EvaluateSettings
from mmsearch.ingest import datasets
from mmsearch.ingest.catalog import CatalogError
from mmsearch.ingest.datasets import Dataset
from mmsearch.ingest.pairs import load_pairs, parse_where
from mmsearch.settings import CatalogSettings, CompareSettings, SearchSettings, Settings, from_env, replace
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
        prog=prog or "python -m mmsearch.evaluate",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    flags.add_settings(parser, CatalogSettings, SearchSettings, CompareSettings, EvaluateSettings)
    parsed = parser.parse_args(argv)
    try:
        config = from_env(**flags.overrides(parsed, Settings))
        args = flags.settings_from(EvaluateSettings, None, None, **flags.overrides(parsed, EvaluateSettings))
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.match:
        return evaluate_match(config, args)
    if args.judgments:
        return evaluate_on_judgments(config, args)
    if args.duplicates:
        return count_duplicates(config, args)
    if args.queries:
        return evaluate_search(config, args)
    labelled = classified(args.dataset, config.catalog)
    if labelled is not None:
        return evaluate_classification(config, args, labelled)
    try:
        encoder = load_encoder(config.model, config.device)
        if args.dataset == "demo":
            result = attribute_precision(encoder, per_combo=args.per_combo)
        else:
            where = parse_where(args.where)
            pairs = load_pairs(args.dataset, args.image_column, args.caption_column, where, args.limit or None)
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
    tracker = open_tracker(args.tracker, config.data_dir, "mmsearch-evaluate", run_name=encoder.model_id)
    tracker.log_params({"model": encoder.model_id, "dataset": args.dataset, "where": args.where, "limit": args.limit})
    tracker.log_metrics(flat_metrics(result))
    tracker.log_dict(result, "report.json")
    tracker.finish()
    return 0


def count_duplicates(config: Settings, args: EvaluateSettings) -> int:
    from mmsearch.builder.pipeline import BuildError, ensure_index
    from mmsearch.evaluate import duplicates
    from mmsearch.index import vectors as vindex

    try:
        encoder = load_encoder(config.model, config.device)
        index = vindex.load(ensure_index(config, encoder).resolved_index(encoder.model_id))
    except (EncoderError, CatalogError, BuildError, vindex.IndexLoadError, ValueError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    found = duplicates.report(index)
    print(f"{found['items']} items: {found['exact_pairs']} pairs of byte-identical pictures")
    for threshold, count in found.get("pixel_pairs", {}).items():
        print(f"  near copies by their pixels (16x16 grey, cosine >= {threshold}): {count} pairs")
    for threshold, count in found["near_pairs"].items():
        print(f"  near-duplicate pairs by the model's embedding at cosine >= {threshold}: {count}")
    where = Path(args.out_dir or index.path)
    where.mkdir(parents=True, exist_ok=True)
    images = duplicates.image_paths(index, duplicates.examples_ids(found))
    print(f"wrote {duplicates.picture(found, images, where / duplicates.PICTURE_FILE)}")
    if args.report:
        args.report.write_text(json.dumps(found, indent=2))
    return 0


def classified(dataset: str, catalog: str) -> Dataset | None:
    """The dataset whose labelled photos --dataset names (or, with the default --dataset, the catalog's), if it has
    them: its figures are zero-shot classification's."""
    named = datasets.find(catalog if dataset == "demo" else dataset)
    return named if named is not None and named.templates is not None else None


def evaluate_classification(config: Settings, args: EvaluateSettings, dataset: Dataset) -> int:
    """Zero-shot accuracy and image->image P@10 on a labelled dataset's test photos, written with the confusion
    matrix plot into --out-dir or the index directory (where the Evaluation tab reads them)."""
    from mmsearch.evaluate import classification

    try:
        encoder = load_encoder(config.model, config.device)
        report = classification.report(encoder, dataset, config)
    except (EncoderError, CatalogError, ValueError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    classification.print_report(report)
    where = args.out_dir or config.resolved_index(encoder.model_id)
    paths = classification.write(report, where)
    print(f"wrote {paths[0]} and {paths[1]}")
    if args.report:
        args.report.write_text(json.dumps(report, indent=2))
    tracker = open_tracker(args.tracker, config.data_dir, "mmsearch-evaluate", run_name=encoder.model_id)
    tracker.log_params({"model": encoder.model_id, "dataset": dataset.name})
    tracker.log_metrics({k: report[k] for k in ("accuracy", "image_to_image_P@10")})
    tracker.log_dict(report, "report.json")
    tracker.finish()
    return 0


def evaluate_match(config: Settings, args: EvaluateSettings) -> int:
    """--match: how well the answers' match flag separates the catalog's queries from the unmatched ones."""
    from mmsearch.builder.pipeline import BuildError, ensure_index
    from mmsearch.evaluate import matching
    from mmsearch.index.vectors import IndexLoadError
    from mmsearch.search.searcher import Searcher

    try:
        sets = matching.query_sets(config.catalog, args.queries, args.qrels)  # a mistake in them, before any build
        encoder = load_encoder(config.model, config.device)
        searcher = Searcher.open(ensure_index(config, encoder), encoder)
        result = matching.evaluate(searcher, sets)
    except (ValueError, OSError, BuildError, IndexLoadError, EncoderError, CatalogError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    chosen, test = result["chosen_on_dev"], result["test_with_configured"]
    print(
        f"match flag, {config.search_mode} mode: chosen on dev words>={chosen['words']} or "
        f"standing>={chosen['standing']} or affinity>={chosen['affinity']} or similarity>={chosen['similarity']} "
        f"(dev F1 {result['dev']['f1']:.3f}; above 1: never)"
    )
    for name in ("test_with_chosen", "test_with_configured"):
        r = result[name]
        print(
            f"{name}: precision {r['precision']:.3f} recall {r['recall']:.3f} of the weak flag "
            f"({r['unmatched_queries']} unmatched, {r['matched_queries']} matched queries)"
        )
    if test["matched_flagged_weak"] or test["unmatched_flagged_good"]:
        print("test misses: weak but matched " + "; ".join(test["matched_flagged_weak"][:8]))
        print("             good but unmatched " + "; ".join(test["unmatched_flagged_good"][:8]))
    print(f"wrote {searcher.index.path / matching.REPORT_FILE} (the app's Evaluation tab shows it)")
    if args.report:
        args.report.write_text(json.dumps(result, indent=2))
    return 0


def evaluate_on_judgments(config: Settings, args: EvaluateSettings) -> int:
    """--judgments: the raters' judged queries through every mode (and both models), with coverage."""
    from mmsearch.builder.pipeline import BuildError, ensure_index
    from mmsearch.evaluate import judged
    from mmsearch.evaluate.measures import verdict
    from mmsearch.feedback.database import DatabaseError, open_configured
    from mmsearch.feedback.judgments import Judgments
    from mmsearch.index.vectors import IndexLoadError
    from mmsearch.search.searcher import Searcher

    try:
        qrels = Judgments(open_configured(config)).qrels(args.judged_half)
        searchers = []
        for model in [config.model, *([config.compare_model] if config.compare_model else [])]:
            encoder = load_encoder(model, config.device)
            index = config.index if model == config.model else config.compare_index
            settings = ensure_index(replace(config, model=model, index=index), encoder)
            searchers.append(Searcher.open(settings, encoder))
        report = judged.run(searchers, qrels)
    except (EncoderError, CatalogError, ValueError, BuildError, IndexLoadError, OSError, DatabaseError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"{report['queries']} judged queries, {report['judged_pairs']} judged pairs")
    print(f"{'system':40s} {'nDCG@10':>8s} {'P@10':>6s} {'judged of top 10':>17s}")
    for row in report["systems"]:
        print(f"{row['system'][:40]:40s} {row['nDCG@10']:8.3f} {row['P@10']:6.3f} {row['coverage@10']:17.1%}")
    for t in report["significance"]:
        print(verdict(t["a"], t["b"], t, "nDCG@10"))
    if args.report:
        args.report.write_text(json.dumps(report, indent=2))
    return 0


def evaluate_search(config: Settings, args: EvaluateSettings) -> int:
    """--queries: runs a labelled query set through the index in every mode and reports/plots the figures."""
    from mmsearch.builder.pipeline import BuildError, ensure_index
    from mmsearch.evaluate import quality
    from mmsearch.index.vectors import IndexLoadError
    from mmsearch.search.searcher import Searcher

    try:
        if args.queries in quality.SETS:
            queries, labels = quality.load_set(args.queries)
        elif args.qrels is None:
            raise ValueError("--queries FILE needs --qrels FILE (qid, item_id, grade)")
        else:
            queries, labels = quality.load_set(Path(args.queries), args.qrels)
        encoder = load_encoder(config.model, config.device)
        searcher = Searcher.open(ensure_index(config, encoder), encoder)
        report = quality.evaluate(
            searcher,
            queries,
            labels,
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
    tracker = open_tracker(args.tracker, config.data_dir, "mmsearch-evaluate", run_name=f"search {encoder.model_id}")
    tracker.log_params(
        {
            "model": encoder.model_id,
            "queries": args.queries,
            "catalog": config.catalog,
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
