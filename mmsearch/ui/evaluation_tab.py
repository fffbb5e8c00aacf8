"""The Evaluation tab: search quality on labelled query sets, per mode, with paired tests and the plot."""

from __future__ import annotations

import json

import gradio as gr

from mmsearch.evaluate import classification, judged, matching, quality
from mmsearch.evaluate.measures import verdict
from mmsearch.feedback.loop import Feedback
from mmsearch.ingest import datasets
from mmsearch.search.searcher import Searcher


def evaluation_tab(searcher: Searcher, feedback: Feedback | None = None) -> None:
    """Search quality on labelled query sets: the table, significance tests and plot of the last run of each set,
    and a button to run one again; with judging on, the same on the raters' judgments (both models when a second
    is loaded)."""
    index_dir = searcher.index.path
    # A catalog of one's own has no bundled labels; the demo's sets are offered, and running them says so.
    dataset = datasets.find(searcher.config.catalog) or datasets.find("demo")
    sets = {qs.title: name for name, qs in dataset.query_sets.items()}
    labelled_catalog = dataset.title

    def view(name: str, report: dict | None) -> tuple[list[list], str | None, str]:
        if report is None:
            return (
                [],
                None,
                (
                    "No evaluation of this index on these queries yet: run it with the button below, or "
                    f"from a shell with `python -m mmsearch.evaluate --queries {name}`."
                ),
            )
        best = report.get("best_on_dev") or {}
        tests = "\n".join(f"- {line}" for line in quality.significance_lines(report))
        return (
            quality.table_rows(report),
            str(index_dir / quality.report_files(name)[1]),
            f"**{report['test_queries']} test queries** ({report['filtered_test_queries']} with filters) · "
            f"hybrid with keyword weight {report['keyword_weight']} and RRF k {report['rrf_k']} vs the better "
            f"single mode: **{report['hybrid_gain_ndcg']:+.3f} nDCG@10** · "
            + (
                f"best on the {report['dev_queries']} dev queries: weight {best.get('keyword_weight')}, "
                f"k {best.get('rrf_k')} · "
                if best
                else "no dev half: nothing was chosen on these queries · "
            )
            + f"{report.get('model', '')} · {report.get('generated', '')}\n\n"
            + (f"**Is the difference real?** (paired over the same test queries)\n{tests}" if tests else ""),
        )

    def saved(name: str) -> dict | None:
        path = index_dir / quality.report_files(name)[0] if index_dir else None
        return json.loads(path.read_text()) if path is not None and path.exists() else None

    def show(label: str) -> tuple[list[list], str | None, str]:
        name = sets.get(label, "demo")
        return view(name, saved(name))

    def by_form(label: str) -> dict:
        """The saved report's figures by the queries' language or kind, where the set has more than one."""
        report = saved(sets.get(label, "demo"))
        rows = quality.form_rows(report) if report is not None else []
        return gr.update(value=rows, visible=bool(rows))

    def evaluate_search(label: str, progress: gr.Progress = gr.Progress()) -> tuple[list[list], str | None, str]:
        """Runs a labelled query set through every search mode and shows the figures (the demo catalog only)."""
        name = sets.get(label, "demo")
        queries, labels = quality.load_set(name)
        try:
            report = quality.evaluate(searcher, queries, labels, name, progress=lambda f, m: progress(f, desc=m))
        except ValueError as exc:
            raise gr.Error(
                f"The labelled queries are for the {labelled_catalog} catalog, and this index holds another. Evaluate "
                "it from a shell: python -m mmsearch.evaluate --queries FILE --qrels FILE",
                duration=None,
            ) from exc
        return view(name, report)

    with gr.Tab("Evaluation"):
        zero_shot = classification.saved(index_dir)
        if zero_shot is not None:
            classification_section(zero_shot, index_dir / classification.PLOT_FILE)
        query_sets(sets, show, evaluate_search, by_form)
        flagged = matching.saved(index_dir)
        if flagged is not None:
            match_section(flagged)
        if feedback is not None and feedback.access.enabled:
            judgments_section(feedback)


def judgments_section(feedback: Feedback) -> None:
    """The judged queries (Judge tab, POST /api/judgments) in every mode and model, with each system's coverage."""

    def run(half: str, progress: gr.Progress = gr.Progress()) -> tuple[list[list], str]:
        qrels = feedback.judgments.qrels(half)
        progress(0.1, desc=f"searching {len(qrels)} judged queries in every mode")
        try:
            report = judged.run(feedback.searchers, qrels)
        except ValueError as exc:
            raise gr.Error(str(exc), title="Cannot evaluate") from exc
        rows = [[r["system"], r["nDCG@10"], r["P@10"], f"{r['coverage@10']:.0%}"] for r in report["systems"]]
        tests = "\n".join(f"- {verdict(t['a'], t['b'], t, 'nDCG@10')}" for t in report["significance"])
        text = f"**{report['queries']} judged queries**, {report['judged_pairs']} judged pairs\n\n{tests}"
        return rows, text

    gr.Markdown(
        "### On the raters' judgments\nThe judged queries in every mode (and both models), nDCG@10 and P@10 on "
        "the raters' grades; *judged of top 10* says how much of each system's top 10 anyone graded: an unjudged "
        "result counts as not relevant, so the figures hold only as far as that is high."
    )
    with gr.Row():
        half = gr.Radio(["all", "test"], value="all", label="Judged queries", info="test: the half tuning never sees")
        button = gr.Button("Evaluate on the judgments", elem_id="mm-judged-evaluate")
    summary = gr.Markdown()
    table = gr.Dataframe(headers=["system", "nDCG@10", "P@10", "judged of top 10"], interactive=False)
    button.click(run, half, [table, summary], api_name="evaluate_judgments")


def classification_section(report: dict, plot_path) -> None:
    """Zero-shot classification of the catalog's photos beside the published baselines, and the confusion matrix."""
    baselines = " · ".join(f"{name}: {value:.1%}" for name, value in report["baselines"].items())
    confused = "; ".join(f"{m['true']} taken for {m['predicted']} ({m['count']})" for m in report["most_confused"][:3])
    gr.Markdown(
        f"### Zero-shot classification of the {report['photos']:,} {report['dataset']} photos\n"
        f"**Accuracy {report['accuracy']:.1%}** (each category is the mean embedding of its prompts: every template "
        f"with every word of the category, as the CLIP paper measures it) · **image→image P@10 "
        f"{report['image_to_image_P@10']:.1%}** (similar items staying in the photo's category)\n\n"
        + (f"Published: {baselines}\n\n" if baselines else "")
        + f"Most confused: {confused} · {report['model']} · {report['generated']}"
    )
    gr.Image(str(plot_path), type="filepath", show_label=False, interactive=False, height=420)


def match_section(report: dict) -> None:
    """How well the answers' ``weak`` flag tells queries for things the catalog lacks from the ones it can answer."""
    test, rule = report["test_with_configured"], report["configured"]
    said = f"words known ≥ {rule['words']:g} or standing ≥ {rule['standing']:g}"
    if rule.get("affinity", 1.01) <= 1:
        said += f" or affinity ≥ {rule['affinity']:g}"
    if rule.get("similarity", 1.01) <= 1:
        said += f" or best similarity ≥ {rule['similarity']:g}"
    misses = ""
    if test["matched_flagged_weak"]:
        misses += f"\n\nCalled weak though the catalog has them: {', '.join(test['matched_flagged_weak'][:8])}."
    if test["unmatched_flagged_good"]:
        misses += f"\n\nCalled good though the catalog lacks them: {', '.join(test['unmatched_flagged_good'][:8])}."
    gr.Markdown(
        f'### Weak answers\nWhen nothing in the catalog matches, an answer says `"match": "weak"`. On the test '
        f"half, {test['unmatched_queries']} queries for things this catalog lacks against {test['matched_queries']} "
        f"of its labelled ones ({report['mode']} mode): **precision {test['precision']:.2f}, recall "
        f"{test['recall']:.2f}** of the weak flag (an answer is good when {said}; F1 {test['f1']:.2f}). "
        f"`python -m mmsearch.evaluate --match` measures it again and chooses the thresholds on the dev half."
        f"{misses}\n\n{report.get('model', '')} · {report.get('generated', '')}",
        elem_id="mm-eval-match",
    )


def query_sets(sets: dict[str, str], show, evaluate_search, by_form) -> None:
    first = next(iter(sets))
    rows, plot_path, summary_text = show(first)
    forms = by_form(first)
    gr.Markdown(
        "Labelled queries with graded relevance (2 = fully relevant, 1 = related), searched in each mode: the "
        "query sets of this catalog's dataset (`assets/`; on the demo, generated queries in the catalog's own words "
        "and hand-written ones in other ways). Settings are chosen on dev halves only; tables are test halves. "
        "*P@10 strict*: fully relevant results in the top 10, out of min(10, how many exist)."
    )
    which = gr.Radio(list(sets), value=first, label="Query set")
    summary = gr.Markdown(summary_text)
    table = gr.Dataframe(rows, headers=["mode", "queries", *quality.METRICS], interactive=False)
    forms_table = gr.Dataframe(
        forms["value"],
        headers=quality.form_headers(),
        interactive=False,
        visible=forms["visible"],
        label="By the queries' language or kind (test queries)",
        elem_id="mm-eval-forms",
    )
    plot = gr.Image(plot_path, type="filepath", show_label=False, interactive=False)
    button = gr.Button("Run the evaluation again (seconds on 2 cores)")
    # /evaluate keeps its three outputs (docs/api.md); the table by form follows from the report it wrote.
    which.change(show, which, [table, plot, summary], api_visibility="private").then(
        by_form, which, forms_table, api_visibility="private"
    )
    button.click(evaluate_search, which, [table, plot, summary], api_name="evaluate").then(
        by_form, which, forms_table, api_visibility="private"
    )
