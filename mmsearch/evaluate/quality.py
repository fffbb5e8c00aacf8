"""Measured search quality: labelled queries with graded relevance, and nDCG@10, Recall@10 and MRR@10 for vector,
keyword and hybrid search, with and without filters.

The demo's query set (assets/demo-queries.csv, assets/demo-qrels.csv) is derived from the true attributes of the
demo catalog's items, which the listings only partly say (see demo.listing) and the images show. Grades: 2 = the
item has every attribute the query names (and passes its filter); 1 = right kind, one other named attribute wrong;
0 = anything else. Any catalog can be evaluated the same way from a queries file (qid, query, filters) and a qrels file
(qid, item_id, grade).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd

from mmsearch.atomic import atomic_save_figure, atomic_write_text
from mmsearch.encode.query_language import NAMES
from mmsearch.evaluate import measures
from mmsearch.index import keyword as kw
from mmsearch.ingest import datasets

# The labelled query sets of the datasets mmsearch knows, by name (each dataset's module in ingest/datasets/ says how
# its sets were written; a set labelled by category has qrels that name a category, not an item).
SETS = {name: (qs.queries, qs.qrels) for name, qs in datasets.query_sets().items()}
QUERIES_FILE, QRELS_FILE = SETS["demo"]
CATEGORY = "category:"  # a labelled "item" that stands for every item of a category, until resolve() expands it
REPORT_FILE, PLOT_FILE = "quality.json", "quality.png"  # the demo set's, written into the index directory
MODES = ("vector", "keyword", "hybrid")
METRICS, K = measures.METRICS, measures.K
PAIRS = (("hybrid", "vector"), ("hybrid", "keyword"), ("vector", "keyword"))  # the claims the report tests
SIGNIFICANCE_METRICS = ("nDCG@10", "P@10 strict")
SWEEP = [round(w, 1) for w in np.linspace(0, 1, 11)]
RRF_KS = (1, 5, 20, 60)


def report_files(name: str) -> tuple[str, str]:
    """The report and plot file names of a query set in an index directory (the demo set keeps the plain ones)."""
    if name in ("demo", ""):
        return REPORT_FILE, PLOT_FILE
    stem = "".join(c if c.isalnum() or c in "-_" else "-" for c in Path(name).stem)[:60]
    return f"quality-{stem}.json", f"quality-{stem}.png"


def load_set(
    queries: Path | str = QUERIES_FILE, qrels: Path | None = QRELS_FILE
) -> tuple[pd.DataFrame, dict[str, dict[str, int]]]:
    """A query set: a name of SETS ('demo', 'handwritten'), or a queries file with its qrels file."""
    if str(queries) in SETS:
        queries, qrels = SETS[str(queries)]
    if qrels is None:
        raise ValueError(
            f"a queries file needs its qrels file (qid, item_id, grade); the bundled sets are {', '.join(SETS)}"
        )
    table = pd.read_csv(queries, dtype=str, keep_default_na=False)
    for column in ("qid", "query"):
        if column not in table.columns:
            raise ValueError(f"{queries} needs a {column!r} column (and optionally filters, split, form)")
    for column, default in (("filters", ""), ("split", "test"), ("form", "")):
        if column not in table.columns:
            table[column] = default
    labels = pd.read_csv(qrels, dtype=str, keep_default_na=False)
    if "item_id" not in labels.columns and "category" in labels.columns:  # labelled by category
        labels["item_id"] = CATEGORY + labels["category"]
    if not {"qid", "item_id", "grade"} <= set(labels.columns):
        raise ValueError(f"{qrels} needs the columns qid, item_id (or category) and grade")
    by_query: dict[str, dict[str, int]] = {}
    for qid, item_id, g in labels[["qid", "item_id", "grade"]].itertuples(index=False):
        by_query.setdefault(qid, {})[item_id] = int(g)
    return table, by_query


def sets_for(catalog: str) -> tuple[str, ...]:
    """The bundled query sets labelled for ``catalog`` (none for a catalog of one's own)."""
    dataset = datasets.find(catalog)
    return tuple(dataset.query_sets) if dataset is not None else ()


def resolve(labels: dict[str, dict[str, int]], items: pd.DataFrame) -> dict[str, dict[str, int]]:
    """Labels by category expanded to the items of that category (``items``: item_id and category columns);
    labels of single items are kept as they are."""
    if not any(k.startswith(CATEGORY) for grades in labels.values() for k in grades):
        return labels
    members: dict[str, list[str]] = {}
    for item_id, category in zip(items["item_id"], items["category"]):
        members.setdefault(str(category), []).append(str(item_id))
    out: dict[str, dict[str, int]] = {}
    for qid, grades in labels.items():
        expanded: dict[str, int] = {}
        for key, grade in grades.items():
            for item_id in members.get(key[len(CATEGORY) :], []) if key.startswith(CATEGORY) else [key]:
                expanded[item_id] = max(grade, expanded.get(item_id, 0))
        out[qid] = expanded
    return out


# --- running a query set through a searcher ---------------------------------------------------------------------------


def score(searcher, queries: pd.DataFrame, labels: dict[str, dict[str, int]], mode: str) -> pd.DataFrame:
    """One row of metrics per query, searched the way the app searches (near-duplicates collapsed)."""
    ranked = {
        q.qid: [h.item_id for h in searcher.search(searcher.request(q=q.query, k=K, filters=q.filters, mode=mode))]
        for q in queries.itertuples(index=False)
    }
    table = measures.per_query(ranked, labels).reset_index()
    table.insert(1, "form", queries["form"].to_numpy())
    table.insert(2, "filtered", queries["filters"].astype(bool).to_numpy())
    return table


def sweep(searcher, queries: pd.DataFrame, labels: dict[str, dict[str, int]]) -> list[dict]:
    """Hybrid nDCG@10 for each RRF constant and keyword weight, fusing each query's two lists fetched once."""
    lists = [
        (q.qid, *searcher.candidates(searcher.request(q=q.query, filters=q.filters)))
        for q in queries.itertuples(index=False)
    ]
    out = []
    for rrf_k in RRF_KS:
        for w in SWEEP:
            ranked = {
                qid: [
                    searcher.index.ids[r] for r, _ in kw.reciprocal_rank_fusion(vec, [r for r, _ in key], w, rrf_k)[:K]
                ]
                for qid, vec, key in lists
            }
            values = measures.per_query(ranked, labels)["nDCG@10"]
            out.append({"rrf_k": rrf_k, "keyword_weight": w, "nDCG@10": round(float(values.mean()), 4)})
    return out


def measure(
    searcher,
    queries: pd.DataFrame,
    labels: dict[str, dict[str, int]],
    progress: Callable[[float, str], None] | None = None,
) -> dict:
    """The report: the hybrid settings swept on the dev split; every mode on the test split at the searcher's
    configured settings."""
    say = progress or (lambda fraction, message: None)
    dev, test = queries[queries["split"] == "dev"], queries[queries["split"] != "dev"]
    say(0.0, f"sweeping the hybrid settings on {len(dev)} dev queries")
    swept = sweep(searcher, dev, labels) if len(dev) else []
    table, by_form, scored = {}, {}, {}
    for i, mode in enumerate(MODES):
        say(0.3 + 0.7 * i / len(MODES), f"{mode} search on {len(test)} test queries")
        rows = scored[mode] = score(searcher, test, labels, mode).set_index("qid")
        table[mode] = {
            "all": _means(rows),
            "without filters": _means(rows[~rows["filtered"]]),
            "with filters": _means(rows[rows["filtered"]]),
        }
        by_form[mode] = {form: _means(group) for form, group in rows.groupby("form")}
    significance = [
        {"a": a, "b": b, "metric": m} | measures.paired_test(scored[a][m], scored[b][m])
        for a, b in PAIRS
        for m in SIGNIFICANCE_METRICS
    ]
    best_single = max(table["vector"]["all"]["nDCG@10"], table["keyword"]["all"]["nDCG@10"])
    best_dev = max(swept, key=lambda r: r["nDCG@10"]) if swept else None
    return {
        "k": K,
        "keyword_weight": searcher.config.keyword_weight,
        "rrf_k": searcher.config.rrf_k,
        "best_on_dev": best_dev,
        "test_queries": len(test),
        "dev_queries": len(dev),
        "filtered_test_queries": int(test["filters"].astype(bool).sum()),
        "table": table,
        "by_form": by_form,
        "sweep": swept,
        "hybrid_gain_ndcg": round(table["hybrid"]["all"]["nDCG@10"] - best_single, 4),
        "significance": significance,
    }


def evaluate(
    searcher,
    queries: pd.DataFrame,
    labels: dict[str, dict[str, int]],
    name: str,
    progress: Callable[[float, str], None] | None = None,
    directory: Path | None = None,
) -> dict:
    """Evaluates a searcher on a labelled query set and writes the report and plot into ``directory`` (default: the
    index directory, where the app's Evaluation tab reads them); refuses labels made for another catalog."""
    labels = resolve(labels, searcher_items(searcher))
    missing = {i for items in labels.values() for i in items} - set(searcher.index.ids)
    if missing or searcher.index.path is None:
        raise ValueError(
            f"{len(missing)} labelled items are not in the index at {searcher.index.path} "
            f"(e.g. {sorted(missing)[:3]}); the labels were made for another catalog"
        )
    report = measure(searcher, queries, labels, progress)
    report |= {
        "model": searcher.encoder.model_id,
        "catalog": searcher.config.catalog,
        "queries": name,
        "generated": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
    }
    title = f"{searcher.encoder.model_id} on {searcher.config.catalog}, {name} queries"
    write(report, Path(directory or searcher.index.path), title, name)
    return report


def searcher_items(searcher) -> pd.DataFrame:
    """Every indexed item's id and category, in index order."""
    table = searcher.snapshot.table
    categories = table["category"] if "category" in table.columns else [""] * len(searcher.index.ids)
    return pd.DataFrame({"item_id": list(searcher.index.ids), "category": list(categories)})


def _means(rows: pd.DataFrame) -> dict[str, float]:
    return {m: round(float(rows[m].mean()), 4) if len(rows) else float("nan") for m in METRICS} | {"queries": len(rows)}


def table_rows(report: dict) -> list[list]:
    """Rows for printing and for the app: mode, queries subset, the metrics; subsets without queries left out."""
    return [
        [mode, subset, *[report["table"][mode][subset].get(m, float("nan")) for m in METRICS]]
        for subset in ("all", "without filters", "with filters")
        if report["table"]["vector"][subset]["queries"]
        for mode in MODES
    ]


FORM_METRICS = ("nDCG@10", "P@10 strict")


def form_rows(report: dict) -> list[list]:
    """Rows by the queries' form (their language, on a multilingual set; their kind, on the demo's), each mode's
    nDCG@10 and P@10 strict on the test queries of that form; none where the set has one form."""
    by_form = report.get("by_form") or {}
    forms = sorted({f for mode in by_form.values() for f in mode}, key=lambda f: (f != "en", f))
    if len(forms) < 2:
        return []
    return [
        [NAMES.get(form, form), int(by_form["vector"][form]["queries"])]
        + [by_form[mode][form].get(m, float("nan")) for mode in MODES for m in FORM_METRICS]
        for form in forms
    ]


def form_headers() -> list[str]:
    return ["queries in", "queries", *[f"{mode} {m}" for mode in MODES for m in FORM_METRICS]]


def print_report(report: dict) -> None:
    width = max(11, *(len(m) + 2 for m in METRICS))  # "P@10 strict" is 11 letters: a space before each name
    print(f"{'mode':<9}{'queries':<17}" + "".join(f"{m:>{width}}" for m in METRICS))
    for mode, subset, *values in table_rows(report):
        print(f"{mode:<9}{subset:<17}" + "".join(f"{v:>{width}.3f}" for v in values))
    rows = form_rows(report)
    if rows:
        metrics = " / ".join(FORM_METRICS)
        print("by the queries' language or kind (test queries): " + ", ".join(f"{mode} {metrics}" for mode in MODES))
        for form, count, *values in rows:
            pairs = [f"{values[i]:.3f} / {values[i + 1]:.3f}" for i in range(0, len(values), 2)]
            print(f"  {form:<22}{count:>4}   " + "   ".join(pairs))
    print(
        f"hybrid (keyword weight {report['keyword_weight']}, RRF k {report['rrf_k']}) vs the better single "
        f"mode: {report['hybrid_gain_ndcg']:+.3f} nDCG@10 on {report['test_queries']} test queries"
    )
    if report["best_on_dev"]:
        best = report["best_on_dev"]
        print(
            f"best on the {report['dev_queries']} dev queries: --keyword-weight {best['keyword_weight']} "
            f"--rrf-k {best['rrf_k']} (nDCG@10 {best['nDCG@10']:.3f})"
        )
    for line in significance_lines(report):
        print(line)


def plot(report: dict, out: Path, title: str = "") -> Path:
    """Bars per metric and mode (without / with filters, each where it has queries), P@10 strict by the queries'
    language or kind where there are several, and the dev-split weight sweep, as a PNG."""
    import matplotlib

    matplotlib.use("Agg")  # no display on servers
    import matplotlib.pyplot as plt

    subsets = [s for s in ("without filters", "with filters") if report["table"]["vector"][s]["queries"]]
    forms = form_rows(report)
    panels = len(subsets) + bool(forms) + 1
    fig, axes = plt.subplots(1, panels, figsize=(5 * panels, 4.2))
    x = np.arange(len(METRICS))
    if forms:
        ax, at = axes[len(subsets)], np.arange(len(forms))
        for i, mode in enumerate(MODES):
            column = 2 + 2 * i + FORM_METRICS.index("P@10 strict")
            bars = ax.bar(at + (i - 1) * 0.27, [row[column] for row in forms], 0.27, label=mode)
            ax.bar_label(bars, fmt="%.2f", fontsize=7)
        ax.set_xticks(at, [row[0] for row in forms], rotation=20 if len(forms) > 4 else 0, fontsize=8)
        ax.set_ylim(0, 1.2)
        ax.set_title("P@10 strict by the queries' language or kind")
        ax.legend(loc="upper center", ncols=3, fontsize=8)
    for ax, subset in zip(axes, subsets):
        for i, mode in enumerate(MODES):
            values = [report["table"][mode][subset][m] for m in METRICS]
            bars = ax.bar(x + (i - 1) * 0.27, values, 0.27, label=mode)
            ax.bar_label(bars, fmt="%.2f", fontsize=7)
        ax.set_xticks(x, METRICS)
        ax.set_ylim(0, 1.2)
        ax.set_title(f"{subset} ({report['table']['vector'][subset]['queries']} queries)")
        ax.legend(loc="upper center", ncols=3, fontsize=8)
    ax = axes[-1]
    for rrf_k in sorted({s["rrf_k"] for s in report["sweep"]}):
        points = [s for s in report["sweep"] if s["rrf_k"] == rrf_k]
        ax.plot(
            [s["keyword_weight"] for s in points],
            [s["nDCG@10"] for s in points],
            marker=".",
            label=f"RRF k={rrf_k}",
            linewidth=2.2 if rrf_k == report["rrf_k"] else 1,
        )
    if report["sweep"]:
        ax.axvline(report["keyword_weight"], color="grey", linestyle=":")
        ax.legend(fontsize=8)
    ax.set_xlabel("hybrid keyword weight (0 = vector order, 1 = keyword order)")
    ax.set_ylabel("nDCG@10, dev queries")
    ax.set_title("choosing the hybrid settings (dev queries)")
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return atomic_save_figure(fig, out)


def write(report: dict, directory: Path, title: str = "", name: str = "demo") -> tuple[Path, Path]:
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    report_file, plot_file = report_files(name)
    saved = atomic_write_text(directory / report_file, json.dumps(report, indent=2))
    return saved, plot(report, directory / plot_file, title)


def significance_lines(report: dict) -> list[str]:
    """Each tested claim in words, with its p-value (reports written before the tests existed have none)."""
    return [measures.verdict(t["a"], t["b"], t, t["metric"]) for t in report.get("significance", [])]
