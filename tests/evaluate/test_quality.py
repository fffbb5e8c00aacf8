import math

import pandas as pd
import pytest

from mmsearch.evaluate import demo_labels, measures, quality


def test_ir_measures_agree_with_the_figures_worked_by_hand():
    """The metrics come from ir-measures (trec_eval); these cases were worked out by hand before it was used."""
    grades = {"a": 2, "b": 1, "c": 2}
    runs = {
        "q1": ["c", "x", "b"],
        "q2": ["a", "c", "b"],
        "q3": ["x", "b", "a"],
        "q4": [f"x{i}" for i in range(10)] + ["a"],
        "q5": ["a"],
        "q6": [],
    }
    judged = {q: grades for q in runs} | {"q5": {}}
    got = measures.per_query(runs, judged)
    # Ranked c, x, b: DCG = 3/log2(2) + 0 + 1/log2(4) = 3.5; ideal a/c, c/a, b = 3 + 3/log2(3) + 1/2.
    assert got.loc["q1", "nDCG@10"] == pytest.approx(3.5 / (3 + 3 / math.log2(3) + 0.5))
    assert got.loc["q2", "nDCG@10"] == pytest.approx(1.0)
    assert got.loc["q1", "Recall@10"] == 0.5  # one of the two grade-2 items
    assert got.loc["q3", "MRR@10"] == pytest.approx(1 / 3)  # b is only grade 1
    assert got.loc["q4", "MRR@10"] == 0.0  # beyond the top 10
    assert got.loc["q5", "nDCG@10"] == 0.0 and got.loc["q6"].sum() == 0.0  # no judgements, no results
    # Strict precision: fully relevant results out of min(10, how many exist): 1 of 2 for q1, 2 of 2 for q2.
    assert got.loc["q1", "P@10 strict"] == 0.5 and got.loc["q2", "P@10 strict"] == 1.0


def test_a_paired_test_tells_a_real_difference_from_noise():
    better = pd.Series([0.9, 0.8, 0.85, 0.95, 0.9, 0.8, 0.88, 0.92])
    worse = better - [0.3, 0.25, 0.35, 0.3, 0.28, 0.33, 0.31, 0.27]
    noisy = better + [0.05, -0.04, 0.03, -0.05, 0.04, -0.03, 0.02, -0.02]
    real = measures.paired_test(better, worse)
    assert real["significant"] and real["p_value"] < 0.001 and real["wins"] == 8 and real["difference"] > 0.29
    assert not measures.paired_test(better, noisy)["significant"]
    assert measures.paired_test(better, better)["p_value"] == 1.0
    assert "beats" in measures.verdict("hybrid", "vector", real, "nDCG@10") and "significant at" in measures.verdict(
        "hybrid", "vector", real, "nDCG@10"
    )


def test_grades_follow_the_true_attributes_and_the_filter():
    truth = pd.DataFrame(
        [
            {"item_id": "1", "category": "mug", "colour": "red", "pattern": "striped", "tag": "new", "price": 8.99},
            {"item_id": "2", "category": "mug", "colour": "red", "pattern": "solid", "tag": "new", "price": 11.99},
            {"item_id": "3", "category": "mug", "colour": "blue", "pattern": "solid", "tag": "durable", "price": 8.99},
            {"item_id": "4", "category": "cap", "colour": "red", "pattern": "striped", "tag": "new", "price": 8.99},
        ]
    )
    query = {"kind": "mug", "colour": "red", "pattern": "striped", "tag": "", "filters": ""}
    assert demo_labels.grades(pd.Series(query), truth).tolist() == [2, 1, 0, 0]
    assert demo_labels.grades(pd.Series(query | {"filters": "price<=9"}), truth).tolist() == [2, 0, 0, 0]
    assert demo_labels.grades(pd.Series(query | {"pattern": "", "tag": "new"}), truth).tolist() == [2, 2, 0, 0]


def test_the_shipped_query_set_is_what_the_generator_makes():
    queries, judged = quality.load_set()
    fresh = demo_labels.demo_queries()
    assert queries["query"].tolist() == fresh["query"].tolist()
    assert queries["filters"].tolist() == fresh["filters"].tolist()
    expected = demo_labels.qrels_for(fresh, demo_labels.demo_truth())
    assert sum(len(v) for v in judged.values()) == len(expected)
    assert all(judged[q][i] == g for q, i, g in expected.itertuples(index=False))
    assert set(queries["split"]) == {"dev", "test"} and (queries["filters"] != "").sum() >= 40
    # Every query has at least one fully relevant item in the demo catalog.
    assert all(any(g == 2 for g in judged[q].values()) for q in queries["qid"])


def test_the_hand_written_set_is_judged_from_its_written_attributes():
    queries, judged = quality.load_set("handwritten")
    assert len(queries) >= 60 and set(queries["split"]) == {"dev", "test"}
    expected = demo_labels.qrels_for(queries, demo_labels.demo_truth())
    assert sum(len(v) for v in judged.values()) == len(expected)
    assert all(judged[q][i] == g for q, i, g in expected.itertuples(index=False))
    assert all(any(g == 2 for g in judged[q].values()) for q in queries["qid"])
    # None of its queries is one the generator writes.
    assert not set(queries["query"]) & set(demo_labels.demo_queries()["query"])


def test_a_file_set_needs_its_columns(tmp_path):
    (tmp_path / "q.csv").write_text("id,text\n1,mug\n")
    (tmp_path / "r.csv").write_text("qid,item_id,grade\n1,a,2\n")
    with pytest.raises(ValueError, match="needs a 'qid' column"):
        quality.load_set(tmp_path / "q.csv", tmp_path / "r.csv")


@pytest.mark.slow
def test_hybrid_beats_both_single_modes_on_the_demo_set_with_the_demo_model(tmp_path_factory):
    """The issue's bar, with the bundled model on the full demo catalog: hybrid is not worse than the better of
    vector and keyword search on the test queries, with and without filters."""
    from mmsearch import settings
    from mmsearch.builder.pipeline import build_index
    from mmsearch.search.searcher import Searcher

    tmp = tmp_path_factory.mktemp("quality")
    cfg = settings.Settings(data_dir=tmp / "data", catalog="demo", model="demo", index=tmp / "ix", workers=2)
    build_index(cfg)
    searcher = Searcher.open(cfg)
    queries, judged = quality.load_set()
    report = quality.measure(searcher, queries, judged)
    table = report["table"]
    for subset in ("all", "without filters", "with filters"):
        best = max(table["vector"][subset]["nDCG@10"], table["keyword"][subset]["nDCG@10"])
        assert table["hybrid"][subset]["nDCG@10"] >= best, subset
    # Better by more than noise: the paired test over the test queries says so, against both single modes.
    assert report["hybrid_gain_ndcg"] > 0
    tests = {(t["a"], t["b"], t["metric"]): t for t in report["significance"]}
    for other in ("vector", "keyword"):
        claim = tests[("hybrid", other, "nDCG@10")]
        assert claim["difference"] > 0 and claim["significant"], claim
    assert report["best_on_dev"]["keyword_weight"] == cfg.keyword_weight and report["best_on_dev"]["rrf_k"] == cfg.rrf_k
    assert all(0.0 <= t["p_value"] <= 1.0 for t in report["significance"])
    json_path, png = quality.write(report, tmp, "demo")
    assert png.stat().st_size > 10_000 and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and json_path.exists()


def _by_form(forms: dict[str, int]) -> dict:
    """A report's by_form part: each mode's figures for queries of each form (count: how many)."""
    return {
        mode: {form: {"queries": n, "nDCG@10": 0.1 * i + n / 100, "P@10 strict": 0.05 * i} for form, n in forms.items()}
        for i, mode in enumerate(quality.MODES, start=1)
    }


def test_figures_by_language_name_the_language_english_first_and_say_nothing_for_one_form(capsys):
    rows = quality.form_rows({"by_form": _by_form({"fr": 16, "en": 35, "xx": 2})})
    assert [r[0] for r in rows] == ["English", "French", "xx"]  # a form no language names keeps its own word
    assert rows[0][1] == 35 and rows[0][2:] == pytest.approx(
        [0.45, 0.05, 0.55, 0.1, 0.65, 0.15]
    )  # vector, keyword, hybrid
    assert len(quality.form_headers()) == len(rows[0])
    assert quality.form_rows({"by_form": _by_form({"en": 35})}) == [] and quality.form_rows({}) == []


def test_the_printed_report_and_its_plot_carry_the_languages(tmp_path, capsys):
    table = {
        mode: {
            s: {"queries": n, **{m: 0.5 for m in quality.METRICS}}
            for s, n in (("all", 51), ("without filters", 51), ("with filters", 0))
        }
        for mode in quality.MODES
    }
    report = {"table": table, "by_form": _by_form({"en": 35, "es": 16}), "keyword_weight": 0.7, "rrf_k": 5}
    report |= {"test_queries": 51, "hybrid_gain_ndcg": 0.1, "best_on_dev": None, "significance": [], "sweep": []}
    quality.print_report(report)
    printed = capsys.readouterr().out
    assert "by the queries' language or kind" in printed and "Spanish" in printed
    assert "with filters" not in printed  # no filtered queries, no row for them
    header = printed.splitlines()[0].split()
    assert header[-4:] == ["Recall@10", "MRR@10", "P@10", "strict"]  # every column's name stands apart
    assert quality.plot(report, tmp_path / "q.png").stat().st_size > 10_000
    assert quality.plot(report | {"by_form": _by_form({"en": 51})}, tmp_path / "one.png").stat().st_size > 10_000
