"""Fashion-MNIST's figures, written into its index directory once, so that the Evaluation tab shows them from the
first start: its labelled query sets (quality.CATALOG_SETS) and zero-shot accuracy with its confusion matrix
(classification.py). The demo catalog's are left to the tab's button: every test that starts the demo app would pay
for them."""

from __future__ import annotations

from collections.abc import Callable

from mmsearch.evaluate import classification, quality


def missing(searcher) -> list[str]:
    """The bundled evaluations of the searcher's catalog that its index directory does not hold yet."""
    directory = searcher.index.path
    if directory is None or not is_fashion_mnist(searcher.config.catalog):
        return []
    sets = quality.sets_for(searcher.config.catalog)
    names = [n for n in sets if not (directory / quality.report_files(n)[0]).exists()]
    return names + ([] if (directory / classification.REPORT_FILE).exists() else ["zero-shot"])


def is_fashion_mnist(catalog: str) -> bool:
    return catalog.split(":", 1)[0] == "fashion-mnist"


def ensure(searcher, say: Callable[[str], None] = print) -> list[str]:
    """Runs the missing evaluations (seconds for the query sets, about half a minute for zero-shot on 10,000 photos on
    2 cores) and answers their names."""
    todo = missing(searcher)
    for name in todo:
        say(f"evaluating {searcher.encoder.model_id} on {searcher.config.catalog}: {name}")
        if name == "zero-shot":
            report = classification.fashion_mnist_report(
                searcher.encoder, searcher.config.fashion_mnist_dir, progress=False
            )
            classification.write(report, searcher.index.path)
        else:
            queries, judged = quality.load_set(name)
            quality.judge(searcher, queries, judged, name)
    return todo
