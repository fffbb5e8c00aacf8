"""Team-draft interleaving (Radlinski, Kurup and Joachims, 2008): two rankers' lists merged into one answer, each
result remembering the ranker ("team") that placed it, so clicks can say which ranker served the user better.

Each round, a coin says which team picks first; each team then adds its best result not already shown. A result both
rankers put first is still credited to one team only (whichever picked it), which keeps the comparison fair: a team
is credited only for what it alone brought to that slot.
"""

from __future__ import annotations

import random

from mmsearch.search.request import SearchRequest
from mmsearch.search.results import Answer, Page

A, B = "A", "B"


def team_draft(first: list[str], second: list[str], k: int, rng: random.Random) -> tuple[list[str], list[str]]:
    """The merged list of at most ``k`` item ids and, for each, its team (A: ``first``, B: ``second``)."""
    shown: list[str] = []
    teams: list[str] = []
    seen: set[str] = set()
    picks = {A: 0, B: 0}
    lists = {A: first, B: second}

    def next_of(team: str) -> str | None:
        ranked = lists[team]
        i = picks[team]
        while i < len(ranked) and ranked[i] in seen:
            i += 1
        picks[team] = i
        return ranked[i] if i < len(ranked) else None

    while len(shown) < k:
        order = (A, B) if rng.random() < 0.5 else (B, A)
        added = False
        for team in order:
            if len(shown) >= k:
                break
            item = next_of(team)
            if item is None:
                continue
            shown.append(item)
            teams.append(team)
            seen.add(item)
            added = True
        if not added:
            break
    return shown, teams


def credit(teams: list[str] | tuple[str, ...], clicked_positions: set[int]) -> str:
    """Who won one interleaved search: the team with more clicked results (positions 1-based), else a tie."""
    a = sum(1 for p in clicked_positions if 1 <= p <= len(teams) and teams[p - 1] == A)
    b = sum(1 for p in clicked_positions if 1 <= p <= len(teams) and teams[p - 1] == B)
    return A if a > b else B if b > a else "tie"


class Interleaved:
    """A searcher that answers a share of text searches from two rankers interleaved (team-draft): the served
    searcher (team A) and ``rival``, another model's searcher, or the served one in ``rival_mode`` (team B).

    Only searches in the served mode, in relevance order, are interleaved (a caller who asked for a mode or a sort
    gets that); everything else, and every other attribute, is the served searcher's. Every way in searches through
    it, so the feedback code only records what it answered (an answer's ``teams`` says who placed each hit).

    Whether a query is interleaved, and the coin of each round, are drawn from its words, filters and cut-off (and
    ``seed``), not afresh at each search: every page of a query is then cut from the same merged list, so pages
    agree (a page is the merge of both rankers' lists down to its end, from the top)."""

    def __init__(self, served, rival=None, rival_mode: str | None = None, share: float = 0.5, seed: str = ""):
        if (rival is None) == (rival_mode is None):
            raise ValueError("interleave with either a second searcher or a second mode")
        self.served, self.rival, self.rival_mode, self.share, self.seed = served, rival, rival_mode, share, seed

    def __getattr__(self, name: str):
        return getattr(self.served, name)

    def search(self, request: SearchRequest) -> Answer:
        served = self.served.config.search_mode
        rng = random.Random(f"{self.seed}\n{request.q}\n{request.filters}\n{request.min_score}")
        if request.kind != "text" or request.mode not in (None, served) or request.sort or rng.random() >= self.share:
            return self.served.search(request)
        start, k = request.offset or 0, request.k or self.served.config.top_k
        whole = request.but(offset=0, k=start + k)  # both lists from the top: the merge of a page needs them
        answer = self.served.search(whole)
        if self.rival is not None:
            other = self.rival.search(whole.but(facets=None))
        else:
            other = self.served.search(whole.but(mode=self.rival_mode, facets=None))
        size = max(len(answer), len(other))
        ids, teams = team_draft([h.item_id for h in answer], [h.item_id for h in other], size, rng)
        found = {h.item_id: h for h in other} | {h.item_id: h for h in answer}
        merged = [found[i] for i in ids[start : start + k]]
        a = answer
        mixed = Answer(merged, a.mode, a.kind, a.match, a.standing, a.affinity, a.coverage, teams[start : start + k])
        mixed.language, mixed.build = a.language, a.build
        total = a.page.total
        mixed.page = Page(start, total, start + k if start + k < total else None, a.page.facets, a.page.relevant)
        return mixed
