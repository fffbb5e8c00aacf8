"""Team-draft interleaving (Radlinski, Kurup and Joachims, 2008): two rankers' lists merged into one answer, each
result remembering the ranker ("team") that placed it, so clicks can say which ranker served the user better.

Each round, a coin says which team picks first; each team then adds its best result not already shown. A result both
rankers put first is still credited to one team only (whichever picked it), which keeps the comparison fair: a team
is credited only for what it alone brought to that slot.
"""

from __future__ import annotations

import random

from mmsearch.search.request import SearchRequest
from mmsearch.search.results import Answer

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

    Only searches in the served mode are interleaved (a caller who asked for a mode gets that mode); everything
    else, and every other attribute, is the served searcher's. Every way in searches through it, so the feedback
    code only records what it answered (an answer's ``teams`` says who placed each hit)."""

    def __init__(self, served, rival=None, rival_mode: str | None = None, share: float = 0.5, rng=None):
        if (rival is None) == (rival_mode is None):
            raise ValueError("interleave with either a second searcher or a second mode")
        self.served, self.rival, self.rival_mode, self.share = served, rival, rival_mode, share
        self._rng = rng or random.Random()

    def __getattr__(self, name: str):
        return getattr(self.served, name)

    def search(self, request: SearchRequest) -> Answer:
        served = self.served.config.search_mode
        answer = self.served.search(request)
        if request.kind != "text" or request.mode not in (None, served) or self._rng.random() >= self.share:
            return answer
        if self.rival is not None:
            other = self.rival.search(request)
        else:
            other = self.served.search(request.but(mode=self.rival_mode))
        size = max(len(answer), len(other))
        ids, teams = team_draft([h.item_id for h in answer], [h.item_id for h in other], size, self._rng)
        found = {h.item_id: h for h in other} | {h.item_id: h for h in answer}
        merged = [found[i] for i in ids]
        a = answer
        mixed = Answer(merged, a.mode, a.kind, a.match, a.standing, a.affinity, a.coverage, teams)
        mixed.language, mixed.build = a.language, a.build
        return mixed
