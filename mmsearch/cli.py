"""The ``mmsearch`` command: one entry point with a subcommand per stage.

    mmsearch serve      the app (Gradio UI, REST API, metrics), as python app.py
    mmsearch build      build or update an index, as python index_build.py
    mmsearch train      train a two-tower model, as python -m mmsearch.train
    mmsearch evaluate   measure a model or the search quality, as python -m mmsearch.evaluate
    mmsearch bench      run a benchmark under benchmarks/ (latency, load, scale, update, ...)
    mmsearch judgments  import or export raters' judgments (CSV, TREC qrels and topics)

``mmsearch COMMAND --help`` shows a command's flags.
"""

from __future__ import annotations

import argparse
import json
import runpy
import sys
from pathlib import Path

from mmsearch import __version__, flags
from mmsearch import settings as cfgmod
from mmsearch.resources import BENCHMARKS_DIR

SERVE_DOC = """Serves the search app at http://127.0.0.1:7860 (the demo catalog and model unless told otherwise):
the Gradio UI at /, the REST API at /api (docs at /docs), /metrics, /healthz and /readyz. Builds the index on first
start."""

BUILD_DOC = """Builds or updates a search index: catalog -> encoder -> Feast (materialized) -> vector index, written
atomically to --index.

Run again on the same --index after the catalog changed, and only new pictures and pictures whose bytes changed are
encoded; removed items leave the index; listing changes are written without encoding. --full rebuilds from scratch.

    python index_build.py --catalog demo --model demo --index data/indexes/demo
    python index_build.py --catalog products.csv --model clip:ViT-L-14/openai --index data/indexes/products

Exit codes: 0 built, 2 bad arguments or unusable catalog/model, 1 unexpected failure."""


def _config(parser: argparse.ArgumentParser, argv: list[str] | None) -> cfgmod.Settings | None:
    """The settings from flags, MMSEARCH_* variables and a preset; None (said on stderr) when they cannot be used."""
    try:
        return cfgmod.from_env(**flags.overrides(parser.parse_args(argv), cfgmod.Settings))
    except ValueError as exc:  # an unknown preset, a malformed setting
        print(f"error: {exc}", file=sys.stderr)
        return None


def _parser(prog: str | None, description: str, command: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=prog, description=description, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    flags.add_settings(parser, *cfgmod.GROUPS[command])
    return parser


KINDS_BEFORE_RENAME = ("auto", "flat", "hnsw", "ivfpq")  # what --index took when it named the kind


def _old_build_spellings(argv: list[str] | None) -> list[str]:
    """index_build.py once called the index directory --out and the Faiss kind --index: both still work, with a
    warning. ``--index KIND`` is read as the kind when KIND is a kind's name and no directory of that name exists."""
    argv, out = list(sys.argv[1:] if argv is None else argv), []
    i = 0
    while i < len(argv):
        arg, rest = argv[i], argv[i + 1 :]
        value = arg.partition("=")[2] if arg.startswith("--index=") else (rest[0] if arg == "--index" and rest else "")
        if value in KINDS_BEFORE_RENAME and not Path(value).exists():
            print("warning: --index KIND is now --index-kind KIND (--index names the index directory)", file=sys.stderr)
            out += ["--index-kind", value]
            i += 1 if "=" in arg else 2
            continue
        out.append(arg)
        i += 1
    return flags.renamed(out, "--out", "--index")


def serve(argv: list[str] | None = None, prog: str | None = None) -> int:
    parser = _parser(prog, SERVE_DOC, "serve")
    config = _config(parser, argv)
    if config is None:
        return 2
    if config.replicas < 0:
        print("error: --replicas must be 0 (this one process) or more", file=sys.stderr)
        return 2
    if config.replicas:  # this process only starts Ray and waits: the replicas load what serving needs
        from mmsearch.replicas import serve_replicated

        return serve_replicated(config)
    # Imported here so that `mmsearch --help` and the other commands do not pay for torch, Gradio and Feast.
    from mmsearch.feedback.database import DatabaseError
    from mmsearch.serve.server import serve as run_server
    from mmsearch.service import OPENING_ERRORS, create_app, open_searchers

    try:
        searcher, other, rival = open_searchers(config)
    except OPENING_ERRORS as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    for s in {id(x): x for x in (searcher, other, rival) if x is not None}.values():
        s.loaded.watch()  # a rebuilt or updated index is swapped in without a restart
    try:
        app = create_app(searcher, other, rival)
    except (ValueError, DatabaseError) as exc:  # a malformed MMSEARCH_AUTH, a database that cannot be opened
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(
        json.dumps(
            {
                "model": searcher.encoder.model_id,
                "items": len(searcher.index),
                "url": f"http://{config.host}:{config.port}",
                "api_docs": f"http://{config.host}:{config.port}/docs",
                "auth": bool(config.auth),
                "mcp": f"http://{config.host}:{config.port}/gradio_api/mcp/" if config.mcp else None,
            }
        ),
        flush=True,
    )
    run_server(app, config)
    return 0


def build(argv: list[str] | None = None, prog: str | None = None) -> int:
    parser = _parser(prog, BUILD_DOC, "build")
    argv = _old_build_spellings(argv)
    config = _config(parser, argv)
    if config is None:
        return 2
    from mmsearch.builder.pipeline import COUNTS, BuildError, build_index, print_progress
    from mmsearch.encode.encoders import EncoderError, load_encoder
    from mmsearch.evaluate import reports
    from mmsearch.ingest.catalog import CatalogError
    from mmsearch.machine import machine_failure
    from mmsearch.store.features import FeatureStoreError

    # A named dataset's figures follow the build and need the model again: loaded once, for both.
    evaluated = reports.at_build(config.catalog)
    try:
        encoder = load_encoder(config.model, config.device) if evaluated else None
        built = build_index(config, encoder, progress=print_progress)
    except (BuildError, CatalogError, EncoderError, FeatureStoreError, OSError, RuntimeError) as exc:
        said = machine_failure(exc)  # the machine's reasons (a full disk, ...) in one line, whoever raised them
        if said is None and not isinstance(exc, (BuildError, CatalogError, EncoderError, FeatureStoreError)):
            raise  # a defect: its traceback
        print(f"error: {said or exc}", file=sys.stderr)
        return 2
    if evaluated:
        from mmsearch.search.searcher import Searcher

        reports.ensure(Searcher.open(cfgmod.replace(config, index=built.path), encoder))
    m = built.manifest
    print(
        f"{'built' if m['mode'] == 'full' else 'updated'} {built.path}: {m['item_count']} items "
        f"({', '.join(f'{c} {m[c]}' for c in COUNTS)}), {m['index_kind']} index, dimension {m['dimension']}, "
        f"model {m['model_id']}; {m['near_duplicate_pairs']} near-duplicate pairs at cosine "
        f">= {config.duplicate_threshold} (see {built.path}/near_duplicates.csv), {m['exact_duplicate_pairs']} pairs "
        f"of byte-identical pictures; {m['skipped']} rows skipped (see {built.path}/skipped.csv); "
        f"{m['build_seconds']} s"
    )
    return 0


def train(argv: list[str] | None = None, prog: str | None = None) -> int:
    from mmsearch.train.loop import main as train_main

    return train_main(argv, prog)


def evaluate(argv: list[str] | None = None, prog: str | None = None) -> int:
    from mmsearch.evaluate.cli import main as evaluate_main

    return evaluate_main(argv, prog)


def bench(argv: list[str] | None = None, prog: str | None = None) -> int:
    if not BENCHMARKS_DIR.is_dir():
        print(
            "error: the benchmarks are scripts of the source checkout (they start app.py and index_build.py there); "
            "clone the repository and run mmsearch bench from it",
            file=sys.stderr,
        )
        return 2
    names = sorted(p.stem for p in BENCHMARKS_DIR.glob("*.py"))
    parser = argparse.ArgumentParser(
        prog=prog,
        description="Runs one of the benchmarks under benchmarks/ with "
        "its own flags (mmsearch bench NAME --help shows them).",
    )
    parser.add_argument("name", choices=names, help="the benchmark: " + ", ".join(names))
    parser.add_argument("args", nargs=argparse.REMAINDER, help="flags passed on to the benchmark")
    args = parser.parse_args(argv)
    script = BENCHMARKS_DIR / f"{args.name}.py"
    saved = sys.argv
    sys.argv = [str(script), *args.args]
    try:
        runpy.run_path(str(script), run_name="__main__")
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    finally:
        sys.argv = saved
    return 0


JUDGMENTS_DOC = """Judgments in and out of the server's database (the one --database-url or --data-dir names):

    mmsearch judgments export --format qrels > judged.qrels        topic 0 item_id grade (the raters' median)
    mmsearch judgments export --format topics > topics.tsv         topic<TAB>query
    mmsearch judgments export --format csv > judgments.csv         query,item_id,grade,rater
    mmsearch judgments import judgments.csv                        the same CSV (rater column, or --rater)
    mmsearch judgments import judged.qrels --topics topics.tsv --rater trec

An imported grade replaces the same rater's earlier grade of the pair."""


def judgments(argv: list[str] | None = None, prog: str | None = None) -> int:
    from mmsearch.feedback.database import DatabaseError, open_configured
    from mmsearch.feedback.judgments import JudgmentError, Judgments, read_csv, read_qrels

    parser = argparse.ArgumentParser(
        prog=prog, description=JUDGMENTS_DOC, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("action", choices=["import", "export"])
    parser.add_argument("file", nargs="?", type=Path, help="import: the CSV or qrels file to read")
    parser.add_argument("--format", choices=["csv", "qrels", "topics"], default="csv", help="export: what to write")
    parser.add_argument("--topics", type=Path, help="import of qrels: the topic<TAB>query file they number")
    parser.add_argument("--rater", default="", help="import: the rater of rows without one (required for qrels)")
    flags.add_settings(parser, cfgmod.CatalogSettings, cfgmod.FeedbackSettings)
    args = parser.parse_args(argv)
    settings = flags.overrides(args, cfgmod.Settings)
    config = cfgmod.from_env(**{k: v for k, v in settings.items() if k in ("data_dir", "database_url")})
    try:
        store = Judgments(open_configured(config))
        if args.action == "export":
            topics = store.topics()
            text = {
                "csv": store.csv_text,
                "qrels": store.qrels_text,
                "topics": lambda: "".join(f"{n}\t{q}\n" for q, n in topics.items()),
            }[args.format]()
            sys.stdout.write(text)
            return 0
        if args.file is None or not args.file.is_file():
            print("error: name the file to import (a CSV, or qrels with --topics)", file=sys.stderr)
            return 2
        body = args.file.read_text()
        if args.topics:
            if not args.rater:
                print("error: qrels carry no rater: give one with --rater", file=sys.stderr)
                return 2
            named = dict(line.split("\t", 1) for line in args.topics.read_text().splitlines() if "\t" in line)
            rows = read_qrels(body, {k.strip(): v.strip() for k, v in named.items()}, args.rater)
        else:
            rows = read_csv(body, args.rater or None)
        print(f"imported {store.add(rows)} judgments from {args.file}")
        return 0
    except (JudgmentError, DatabaseError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


COMMANDS = {
    "serve": (serve, "run the app: the Gradio UI, the REST API and /metrics on one port"),
    "build": (build, "build or update a search index from a catalog"),
    "train": (train, "train a two-tower model (the demo model, or on image-caption pairs)"),
    "evaluate": (evaluate, "measure a model (held-out precision, Recall@K) or the search quality on labelled queries"),
    "bench": (bench, "run a benchmark and print its figures"),
    "judgments": (judgments, "import or export raters' judgments (CSV, TREC qrels and topics)"),
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="mmsearch", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--version", action="version", version=f"mmsearch {__version__}", help="print the version and exit"
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, (_, help_text) in COMMANDS.items():
        sub.add_parser(name, help=help_text, add_help=False)  # each command parses (and documents) its own flags
    args, rest = parser.parse_known_args(argv)
    return COMMANDS[args.command][0](rest, prog=f"mmsearch {args.command}")


if __name__ == "__main__":
    sys.exit(main())
