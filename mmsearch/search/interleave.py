"""Team-draft interleaving (Radlinski, Kurup and Joachims, 2008): two rankers' lists merged into one answer, each
result remembering the ranker ("team") that placed it, so clicks can say which ranker served the user better.

Each round, a coin says which team picks first; each team then adds its best result not already shown. A result both
rankers put first is still credited to one team only (whichever picked it), which keeps the comparison fair: a team
is credited only for what it alone brought to that slot.
"""

from __future__ import annotations

import random

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
