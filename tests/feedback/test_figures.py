import json

import pandas as pd
import pytest

from mmsearch.feedback.agreement import agreement
from mmsearch.feedback.analytics import more_searches_needed, sign_test, summary, ubi_lines


def _rows(ann, bob):
    return [
        {"query": "q", "item_id": f"i{n}", "grade": g, "rater": r}
        for r, gs in (("ann", ann), ("bob", bob))
        for n, g in enumerate(gs)
    ]


def test_agreement_is_kappa_per_pair_and_alpha_overall_with_the_widest_disagreements_first():
    perfect = agreement(_rows([0, 1, 2, 3, 3, 0], [0, 1, 2, 3, 3, 0]))
    assert perfect["pairwise"][0]["cohen_kappa"] == 1.0 and perfect["krippendorff_alpha_ordinal"] == 1.0
    assert perfect["disagreements"] == []
    mixed = agreement(_rows([0, 1, 2, 3, 3, 0], [3, 1, 2, 2, 3, 0]))
    pair = mixed["pairwise"][0]
    assert pair["agreed"] == 4 and pair["pairs_both_graded"] == 6 and 0 < pair["cohen_kappa"] < 1
    assert mixed["krippendorff_alpha_ordinal"] < 1
    assert [d["item_id"] for d in mixed["disagreements"]] == ["i0", "i3"]  # spread 3 before spread 1
    assert agreement(_rows([2], []))["pairwise"] == []  # one rater: nothing to compare


def test_the_sign_test_and_the_searches_a_decision_needs():
    assert sign_test(0, 0) is None and sign_test(10, 0) < 0.01 and sign_test(5, 5) == 1.0
    assert more_searches_needed(10, 0, 10) == 0
    assert more_searches_needed(3, 3, 10) is None and more_searches_needed(0, 0, 5) is None
    need = more_searches_needed(6, 4, 20)  # 60% wins over 10 decided searches of 20
    assert need > 100
    assert more_searches_needed(6, 4, 10) == pytest.approx(need / 2, abs=1)


def test_analytics_count_searches_clicks_and_no_click_queries():
    s = pd.DataFrame(
        [
            {
                "query_id": "a",
                "at": 0.0,
                "query": "Red Mug",
                "kind": "text",
                "mode": "hybrid",
                "model": "m",
                "match": "good",
                "results": json.dumps(["x", "y"]),
                "teams": None,
                "took_ms": 4.0,
                "client_id": "c",
                "source": "rest",
            },
            {
                "query_id": "b",
                "at": 86400.0,
                "query": "red mug",
                "kind": "text",
                "mode": "hybrid",
                "model": "m",
                "match": "empty",
                "results": "[]",
                "teams": None,
                "took_ms": 6.0,
                "client_id": "c",
                "source": "ui",
            },
            {
                "query_id": "c",
                "at": 86400.0,
                "query": "<script>",
                "kind": "text",
                "mode": "hybrid",
                "model": "m",
                "match": "weak",
                "results": json.dumps(["x"]),
                "teams": None,
                "took_ms": 8.0,
                "client_id": "d",
                "source": "ui",
            },
        ]
    )
    e = pd.DataFrame(
        [{"id": 1, "query_id": "a", "item_id": "y", "position": 2, "action": "click", "client_id": "c", "at": 1.0}]
    )
    found = summary(s, e, 7)
    assert found["searches"] == 3 and found["click_through_rate"] == pytest.approx(1 / 3, abs=1e-3)
    assert found["mean_click_position"] == 2.0
    assert found["top_queries"][0] == {"query": "red mug", "searches": 2, "clicked": 1}
    assert found["no_result_queries"] == [{"query": "red mug", "searches": 1}]
    assert found["weak_match_queries"] == [{"query": "<script>", "searches": 1}]
    assert [q["query"] for q in found["no_click_queries"]] == ["<script>"]
    assert [d["searches"] for d in found["searches_per_day"]] == [1, 2] and found["latency_ms"]["p50"] == 6.0
    lines = [json.loads(x) for x in ubi_lines(s, e)]
    assert [x["table"] for x in lines] == ["ubi_queries"] * 3 + ["ubi_events"]
    assert lines[-1]["event_attributes"] == {
        "object": {"object_id": "y", "object_id_field": "item_id"},
        "position": {"ordinal": 2},
    }
