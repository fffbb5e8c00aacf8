import math

import pandas as pd
import pytest

from mmsearch import quality


def test_metrics_by_hand():
    grades = {"a": 2, "b": 1, "c": 2}
    # Ranked c, x, b: DCG = 3/log2(2) + 0 + 1/log2(4) = 3.5; ideal a/c, c/a, b = 3 + 3/log2(3) + 1/2.
    assert quality.ndcg(["c", "x", "b"], grades) == pytest.approx(3.5 / (3 + 3 / math.log2(3) + 0.5))
    assert quality.ndcg(["a", "c", "b"], grades) == pytest.approx(1.0)
    assert quality.recall(["c", "x", "b"], grades) == 0.5  # one of the two grade-2 items
    assert quality.reciprocal_rank(["x", "b", "a"], grades) == pytest.approx(1 / 3)  # b is only grade 1
    assert quality.reciprocal_rank(["x"] * 10 + ["a"], grades) == 0.0  # beyond the top 10
    assert quality.ndcg(["a"], {}) == 0.0


def test_grades_follow_the_true_attributes_and_the_filter():
    truth = pd.DataFrame([
        {"item_id": "1", "category": "mug", "colour": "red", "pattern": "striped", "tag": "new", "price": 8.99},
        {"item_id": "2", "category": "mug", "colour": "red", "pattern": "solid", "tag": "new", "price": 11.99},
        {"item_id": "3", "category": "mug", "colour": "blue", "pattern": "solid", "tag": "durable", "price": 8.99},
        {"item_id": "4", "category": "cap", "colour": "red", "pattern": "striped", "tag": "new", "price": 8.99}])
    query = {"kind": "mug", "colour": "red", "pattern": "striped", "tag": "", "filters": ""}
    assert quality.grades(pd.Series(query), truth).tolist() == [2, 1, 0, 0]
    assert quality.grades(pd.Series(query | {"filters": "price<=9"}), truth).tolist() == [2, 0, 0, 0]
    assert quality.grades(pd.Series(query | {"pattern": "", "tag": "new"}), truth).tolist() == [2, 2, 0, 0]


def test_the_shipped_query_set_is_what_the_generator_makes():
    queries, judged = quality.load_set()
    fresh = quality.demo_queries()
    assert queries["query"].tolist() == fresh["query"].tolist()
    assert queries["filters"].tolist() == fresh["filters"].tolist()
    expected = quality.qrels_for(fresh, quality.demo_truth())
    assert sum(len(v) for v in judged.values()) == len(expected)
    assert all(judged[q][i] == g for q, i, g in expected.itertuples(index=False))
    assert set(queries["split"]) == {"dev", "test"} and (queries["filters"] != "").sum() >= 40
    # Every query has at least one fully relevant item in the demo catalog.
    assert all(any(g == 2 for g in judged[q].values()) for q in queries["qid"])


def test_a_file_set_needs_its_columns(tmp_path):
    (tmp_path / "q.csv").write_text("id,text\n1,mug\n")
    (tmp_path / "r.csv").write_text("qid,item_id,grade\n1,a,2\n")
    with pytest.raises(ValueError, match="needs a 'qid' column"):
        quality.load_set(tmp_path / "q.csv", tmp_path / "r.csv")


def test_hybrid_beats_both_single_modes_on_the_demo_set_with_the_demo_model(tmp_path_factory):
    """The issue's bar, with the bundled model on the full demo catalog: hybrid is not worse than the better of
    vector and keyword search on the test queries, with and without filters."""
    from mmsearch import config
    from mmsearch.build import build_index
    from mmsearch.search import Searcher

    tmp = tmp_path_factory.mktemp("quality")
    cfg = config.Config(data_dir=tmp / "data", catalog="demo", model="demo", index=tmp / "ix", workers=2)
    build_index(cfg)
    searcher = Searcher.open(cfg)
    queries, judged = quality.load_set()
    report = quality.evaluate(searcher, queries, judged)
    table = report["table"]
    for subset in ("all", "without filters", "with filters"):
        best = max(table["vector"][subset]["nDCG@10"], table["keyword"][subset]["nDCG@10"])
        assert table["hybrid"][subset]["nDCG@10"] >= best, subset
    assert report["hybrid_gain_ndcg"] > 0.02
    assert report["best_on_dev"]["keyword_weight"] == cfg.keyword_weight and report["best_on_dev"]["rrf_k"] == cfg.rrf_k
    json_path, png = quality.write(report, tmp, "demo")
    assert png.stat().st_size > 10_000 and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and json_path.exists()
