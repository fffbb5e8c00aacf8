import random

from hypothesis import given
from hypothesis import strategies as st

from mmsearch.feedback.interleave import A, B, credit, team_draft

ids = st.lists(st.sampled_from([f"i{n}" for n in range(12)]), unique=True, max_size=10)


@given(ids, ids, st.integers(1, 12), st.integers(0, 1000))
def test_a_team_draft_shows_each_item_once_and_credits_each_to_a_team_that_ranked_it(a, b, k, seed):
    shown, teams = team_draft(a, b, k, random.Random(seed))
    assert len(shown) == len(set(shown)) == len(teams) <= k
    assert len(shown) == min(k, len(set(a) | set(b)))
    for item, team in zip(shown, teams):
        assert item in (a if team == A else b)
    # neither team is ahead by more than one pick while both still have items to give
    if len(set(a) | set(b)) >= 2 * k and len(a) >= k and len(b) >= k:
        assert abs(teams.count(A) - teams.count(B)) <= 1


def test_clicks_credit_the_team_whose_results_were_clicked():
    teams = [A, B, A, B]
    assert credit(teams, {1, 3}) == A and credit(teams, {2}) == B and credit(teams, {1, 2}) == "tie"
    assert credit(teams, set()) == "tie" and credit(teams, {9}) == "tie"


def test_the_interleaving_searcher_answers_a_share_of_served_mode_text_searches_from_both(small_searcher):
    import pytest
    from conftest import ask

    from mmsearch.feedback.interleave import Interleaved

    both = Interleaved(small_searcher, rival_mode="keyword", share=1.0)
    mixed = ask(both, "red striped mug", 8)
    assert mixed.teams is not None and len(mixed.teams) == len(mixed) and set(mixed.teams) <= {A, B}
    served = {h.item_id for h in ask(small_searcher, "red striped mug", 8)}
    keyword = {h.item_id for h in ask(small_searcher, "red striped mug", 8, mode="keyword")}
    for hit, team in zip(mixed, mixed.teams):
        assert hit.item_id in (served if team == A else keyword)
    assert ask(both, "red striped mug", 8, mode="vector").teams is None  # a caller who asked for a mode gets it
    assert ask(both, item_id=small_searcher.index.ids[0], k=3).teams is None  # only words are interleaved
    assert (
        Interleaved(small_searcher, rival_mode="keyword", share=0.0).search(mixed_request(small_searcher)).teams is None
    )
    assert both.index is small_searcher.index  # everything else is the served searcher's
    with pytest.raises(ValueError):
        Interleaved(small_searcher)


def mixed_request(searcher):
    return searcher.request(q="blue mug", k=4)


def test_interleaved_pages_are_cut_from_one_merged_list(small_searcher):
    from conftest import ask

    from mmsearch.feedback.interleave import Interleaved

    both = Interleaved(small_searcher, rival_mode="keyword", share=1.0)
    whole = ask(both, "red striped mug", 12)
    pages = [ask(both, "red striped mug", 4, offset=start) for start in (0, 4, 8)]
    assert [h.item_id for p in pages for h in p] == [h.item_id for h in whole]
    assert [t for p in pages for t in p.teams] == whole.teams
    assert [p.page.offset for p in pages] == [0, 4, 8] and pages[0].page.next_offset == 4
