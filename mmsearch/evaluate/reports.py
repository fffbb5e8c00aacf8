"""A named dataset's figures (ingest/datasets/), written into its index directory once, so that the Evaluation tab
shows them from the first start: its labelled query sets, the match flag's precision and recall on them against
queries for things the catalog lacks (matching.py) and, for a dataset with labelled photos, zero-shot accuracy
with its confusion matrix (classification.py). The demo's are left to the tab's button (``at_build``): every test
that starts the demo app would pay for them."""

from __future__ import annotations

from collections.abc import Callable

from mmsearch.evaluate import classification, matching, quality
from mmsearch.ingest import datasets

ZERO_SHOT, MATCH = "zero-shot", "match"
ON_REQUEST = ("demo",)  # datasets whose figures wait for the Evaluation tab's button


def at_build(catalog: str) -> bool:
    """Whether building ``catalog``'s index also writes its figures (a named dataset's, but the demo's)."""
    dataset = datasets.find(catalog)
    return dataset is not None and dataset.name not in ON_REQUEST


def missing(searcher) -> list[str]:
    """The evaluations of the searcher's catalog that its index directory does not hold yet."""
    directory, dataset = searcher.index.path, datasets.find(searcher.config.catalog)
    if directory is None or not at_build(searcher.config.catalog):
        return []
    names = [n for n in dataset.query_sets if not (directory / quality.report_files(n)[0]).exists()]
    if dataset.query_sets and not (directory / matching.REPORT_FILE).exists():
        names.append(MATCH)
    labelled = dataset.templates is not None
    return names + ([ZERO_SHOT] if labelled and not (directory / classification.REPORT_FILE).exists() else [])


def ensure(searcher, say: Callable[[str], None] = print) -> list[str]:
    """Runs the missing evaluations and answers their names."""  # seconds; zero-shot on 10,000 photos ~30 s
    todo = missing(searcher)
    dataset = datasets.find(searcher.config.catalog)
    for name in todo:
        say(f"evaluating {searcher.encoder.model_id} on {searcher.config.catalog}: {name}")
        if name == ZERO_SHOT:
            found = classification.report(searcher.encoder, dataset, searcher.config, progress=False)
            classification.write(found, searcher.index.path)
        elif name == MATCH:
            matching.evaluate(searcher)
        else:
            queries, labels = quality.load_set(name)
            quality.evaluate(searcher, queries, labels, name)
    return todo
