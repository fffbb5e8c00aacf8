"""The pool a rater judges for one query, as TREC builds its pools: the top results of every system (each search mode,
and each model when a second is loaded), de-duplicated and shuffled, so the rater cannot tell which system found what.
The shuffle is seeded by the query's topic, so a rater who comes back sees the same order."""

from __future__ import annotations

import hashlib
import random

from mmsearch.feedback.judgments import normalize_query
from mmsearch.search.request import MODES
from mmsearch.search.results import Hit
from mmsearch.search.searcher import Searcher

DEPTH = 10  # each system's top 10: the depth the Evaluation tab's P@10 and nDCG@10 look at


def pool(searchers: list[Searcher], query: str, depth: int = DEPTH) -> list[Hit]:
    found: dict[str, Hit] = {}
    for searcher in searchers:
        for mode in MODES:
            for result in searcher.search(searcher.request(q=query, k=depth, mode=mode)):
                found.setdefault(result.item_id, result)
    items = sorted(found.values(), key=lambda r: r.item_id)
    # Seeded by the topic, not the text as typed: "Blue  Mug" and "blue mug" are one topic, shown in one order.
    seed = int.from_bytes(hashlib.blake2b(normalize_query(query).encode(), digest_size=8).digest(), "big")
    random.Random(seed).shuffle(items)
    return items
