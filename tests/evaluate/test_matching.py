import pytest

from mmsearch.evaluate.matching import Observed, calibrate, report, scores
from mmsearch.search.match import MatchRule, Spread


def _observed():
    out = []
    for i in range(20):  # matched: known words, or a high standing
        out.append(Observed(f"m{i}", "dev" if i % 2 else "test", 3.0 + i / 20, 1.0 if i % 3 else 0.0, False))
    for i in range(10):  # unmatched: unknown words and a low standing, but one that stands high
        out.append(Observed(f"u{i}", "dev" if i % 2 else "test", 2.0 + (2 if i == 9 else 0), 0.0, True))
    return out


def test_the_weak_flag_is_scored_against_the_labels():
    rule = MatchRule(words=0.5, standing=3.5, image_standing=2.0)
    s = scores(_observed(), rule)
    # weak: unmatched with standing 2 (9 of 10) and matched with no known word and standing below 3.5
    assert s["unmatched_queries"] == 10 and s["recall"] == 0.9 and s["unmatched_flagged_good"] == ["u9"]
    assert all(q.startswith("m") for q in s["matched_flagged_weak"]) and s["precision"] < 1


def test_thresholds_are_chosen_on_the_dev_half_and_scored_on_the_test_half():
    chosen = calibrate(_observed(), image_standing=2.0)
    dev = scores([o for o in _observed() if o.split == "dev"], chosen)
    assert dev["f1"] == max(
        scores([o for o in _observed() if o.split == "dev"], MatchRule(w, s / 10, 2.0))["f1"]
        for w in (0.0, 0.5, 1.0)
        for s in range(15, 60)
    )
    r = report(_observed(), MatchRule(0.35, 3.6, 2.0))
    assert r["chosen_on_dev"]["words"] == chosen.words and 0 <= r["test_with_chosen"]["recall"] <= 1


def test_a_threshold_is_chosen_in_the_middle_of_its_band_of_equally_good_values():
    # dev: matched queries stand 5.0 and above, unmatched 2.0 and below; no word is known. Every standing
    # threshold in (2.0, 5.0] separates them perfectly: the rule takes the middle of that band, not its first value.
    dev = [Observed(f"m{i}", "dev", 5.0 + i / 10, 0.0, False) for i in range(5)]
    dev += [Observed(f"u{i}", "dev", 2.0 - i / 10, 0.0, True) for i in range(5)]
    chosen = calibrate(dev, image_standing=2.0)
    assert scores(dev, chosen)["f1"] == 1.0
    assert 3.3 <= chosen.standing <= 3.7


def test_the_standing_counts_deviations_above_the_catalogs_mean():
    import numpy as np

    rng = np.random.default_rng(0)
    vectors = rng.normal(size=(5000, 8))
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    spread = Spread.of(vectors)
    q = vectors[0]
    sims = vectors @ q
    assert abs(spread.standing(q, 1.0) - (1.0 - sims.mean()) / sims.std()) < 0.05
    assert MatchRule(0.5, 3.0, 2.0).decide(None, 1.0) == "weak"  # nothing found
    assert MatchRule(0.5, 3.0, 2.0).decide(1.0, 0.5) == "good"  # words known
    assert MatchRule(0.5, 3.0, 2.0).decide(2.5, None) == "good"  # an image: its own threshold


def test_the_affinity_to_category_words_makes_an_answer_good_only_when_it_is_measured_and_high_enough():
    from mmsearch.search.match import GOOD, WEAK, MatchRule

    rule = MatchRule(words=0.67, standing=3.5, image_standing=2.0, affinity=0.7)
    assert rule.decide(2.0, 0.0, 0.75) == GOOD  # "hoodie": no known word, low standing, near "sweatshirt"
    assert rule.decide(2.0, 0.0, 0.40) == WEAK  # "garden hose"
    assert rule.decide(2.0, 0.0, None) == WEAK  # no category words to compare with
    assert rule.decide(1.5, None, 0.99) == WEAK  # a picture: its standing alone decides (below 2.0)
    assert MatchRule(0.67, 3.5, 2.0).decide(2.0, 0.0, 0.99) == WEAK  # the default affinity (1.01) never decides


def test_the_best_results_similarity_makes_an_answer_good_only_when_the_rule_weighs_it():
    from mmsearch.search.match import GOOD, WEAK, MatchRule

    rule = MatchRule(words=0.55, standing=4.8, image_standing=2.0, similarity=0.5)
    assert rule.decide(2.0, 0.0, None, 0.75) == GOOD  # "a cat" among 24 photos: no word known, standing capped
    assert rule.decide(2.0, 0.0, None, 0.42) == WEAK  # "a laptop charger"
    assert rule.decide(1.5, None, None, 0.99) == WEAK  # a picture: its standing alone decides
    assert MatchRule(0.55, 4.8, 2.0).decide(2.0, 0.0, None, 0.99) == WEAK  # the default (1.01) never decides


def test_the_similarity_is_calibrated_only_for_a_model_whose_similarities_carry_over():
    # dev and test alike: nothing known, standings that say nothing, similarities that do
    obs = [Observed(f"m{i}", s, 2.0, 0.0, False, None, 0.6 + i / 100) for i in range(6) for s in ("dev", "test")]
    obs += [Observed(f"u{i}", s, 2.0, 0.0, True, None, 0.3 + i / 100) for i in range(6) for s in ("dev", "test")]
    chosen = calibrate(obs, image_standing=2.0, similarity=True)
    assert 0.35 < chosen.similarity < 0.6 and scores(obs, chosen)["f1"] == 1.0
    assert calibrate(obs, image_standing=2.0).similarity == 1.01  # another model's: never weighed


def test_no_words_threshold_sits_on_a_share_a_short_query_can_have():
    from fractions import Fraction

    from mmsearch.evaluate.matching import WORDS_GRID

    shares = {Fraction(k, n) for n in range(1, 6) for k in range(1, n + 1)}
    for threshold in WORDS_GRID:
        if 0 < threshold <= 1:
            assert all(abs(float(s) - threshold) > 0.01 for s in shares), threshold


def test_the_flags_report_is_written_beside_the_index_and_shown_in_the_evaluation_tab(small_searcher, tmp_path):
    from types import SimpleNamespace

    import gradio as gr

    from mmsearch.evaluate import matching
    from mmsearch.ui.evaluation_tab import match_section

    # The small index's own searches, its report written into a folder of this test's.
    searcher = SimpleNamespace(
        config=small_searcher.config,
        encoder=small_searcher.encoder,
        match_rule=small_searcher.match_rule,
        index=SimpleNamespace(path=tmp_path),
        request=small_searcher.request,
        search=small_searcher.search,
    )
    result = matching.evaluate(searcher, matching.query_sets(searcher.config.catalog, "handwritten"))
    assert matching.saved(tmp_path) == result and result["matched_sets"] == ["handwritten"]
    test = result["test_with_configured"]
    assert test["unmatched_queries"] > 0 and test["matched_queries"] > 0 and 0 <= test["precision"] <= 1
    with gr.Blocks():
        match_section(result)
        shown = [
            b for b in gr.context.Context.root_block.blocks.values() if getattr(b, "elem_id", "") == "mm-eval-match"
        ]
    assert len(shown) == 1 and f"precision {test['precision']:.2f}, recall {test['recall']:.2f}" in shown[0].value
    with pytest.raises(ValueError, match="no bundled query sets label"):
        matching.evaluate(searcher)  # a catalog of one's own has no labelled queries of its own
