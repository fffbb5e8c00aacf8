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
