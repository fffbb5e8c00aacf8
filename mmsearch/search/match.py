"""Whether an answer matches its query, or only holds the closest items of a catalog that has nothing better.

The measure is how far the best result stands above the catalog as a whole, seen from the query: the best result's
cosine similarity less the mean similarity of every item to the query, in standard deviations of those similarities.
Both moments come from the catalog's vectors once per snapshot (mean vector and covariance, so a query costs one
d x d product, not a pass over the catalog). A raw cosine cut would have to be set again for every model, whose
similarities live on scales of their own; a standardised one is meant to carry over between models (not yet measured:
docs/quality.md has the calibration on labelled queries).

The catalog's words answer too: a query whose content words the catalog's text (or a synonym group) mostly knows asks
for something the catalog describes. On the demo model the embedding alone cannot tell (in-catalog and out-of-catalog
text queries stand 2.3-3.5 deviations above the catalog alike, and so do uploads of noise), so its rule rests on the
words. With a locked pretrained text tower (the Fashion-MNIST model) the standing says little either: its photos sit
in ten tight clusters, so every query has a best cluster standing out of the rest. What that tower knows is the
affinity: how much nearer the query is, text to text, to the catalog's category words than to a thousand other things
("hoodie" to "sweatshirt"; "garden hose" to nothing the catalog sells; background.py). docs/quality.md has both
catalogs' calibrations.

A zero-shot model's similarities mean the same on every catalog (its towers are fixed and a word's score is its
cosine with the class bridge), so its best result's similarity can speak on its own: the one signal a small folder of
photos under meaningless names has, where no title knows the words and 24 items cannot stand a result 4.8 deviations
above the rest (at most 23/sqrt(24) = 4.7). docs/zero-shot.md has its calibration.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from mmsearch.index import keyword as kw
from mmsearch.search.broader_terms import BroaderTerms
from mmsearch.search.function_words import function_words

GOOD, WEAK = "good", "weak"
SAMPLE = 20_000  # rows the moments are taken from: within 0.01 of the whole 2,048-item demo, 40 ms for a million


@dataclass(frozen=True)
class Spread:
    """The mean and covariance of a catalog's item vectors."""

    mean: np.ndarray
    covariance: np.ndarray

    @classmethod
    def of(cls, vectors: np.ndarray, seed: int = 0) -> Spread:
        vectors = np.asarray(vectors)
        if len(vectors) > SAMPLE:
            rows = np.sort(np.random.default_rng(seed).choice(len(vectors), SAMPLE, replace=False))
            vectors = vectors[rows]
        vectors = np.asarray(vectors, dtype=np.float64)
        if len(vectors) < 2:
            dim = vectors.shape[1] if vectors.ndim == 2 else 0
            return cls(vectors.mean(axis=0) if len(vectors) else np.zeros(dim), np.zeros((dim, dim)))
        return cls(vectors.mean(axis=0), np.cov(vectors, rowvar=False))

    def standing(self, query: np.ndarray, best: float) -> float:
        """How many standard deviations the best similarity ``best`` lies above the catalog's mean, for ``query``."""
        q = np.asarray(query, dtype=np.float64)
        spread = float(np.sqrt(max(q @ self.covariance @ q, 1e-12)))
        return (best - float(q @ self.mean)) / spread


@dataclass(frozen=True)
class MatchRule:
    """When an answer is ``good``: a text query whose content words the catalog's text mostly knows (``words``: the
    share of them that keyword search or a synonym group knows, or that name a kind of what it holds), or whose best
    result stands at least ``standing`` deviations above the catalog, or (``affinity``) that the text tower finds at
    least this much nearer to one of the catalog's category words than to any other thing (search/expansion.py,
    background.py; above 1: never), or whose best result's similarity is at least ``similarity`` (above 1: never);
    an image query by ``image_standing`` alone."""

    words: float
    standing: float
    image_standing: float
    affinity: float = 1.01
    similarity: float = 1.01

    def decide(
        self,
        standing: float | None,
        coverage: float | None,
        affinity: float | None = None,
        similarity: float | None = None,
    ) -> str:
        """``coverage`` is None for a query without words (an image); ``standing`` None when nothing was found;
        ``affinity`` None when the catalog has no category words; ``similarity``: the best result's."""
        if standing is None:
            return WEAK
        if coverage is None:
            return GOOD if standing >= self.image_standing else WEAK
        if affinity is not None and affinity >= self.affinity:
            return GOOD
        if similarity is not None and similarity >= self.similarity:
            return GOOD
        return GOOD if coverage >= self.words or standing >= self.standing else WEAK


def known_shares(stems: kw.QueryStems, words: str, broader: BroaderTerms | None = None) -> tuple[float, float]:
    """The shares of the query's words, and of its content words, that the catalog's text or a synonym group
    knows (after correction; the correction runs once for both). The first weighs the keyword list in hybrid
    fusion; the second is the match's coverage, where stop words do not count: scikit-learn's English list, and
    the list of the query's own language where it can be told (function_words.py). "show me some green trainers"
    asks for green trainers: 0.4 of its words known, all of its content words; "una bolsa de harina" asks for a
    bag of flour, not for "una" and "de", which a catalog captioned in Spanish knows; a query of stop words alone
    counts them all. With ``broader``, a content word that names a kind of what the catalog holds counts as known
    for the coverage ("string instrument" on a catalog of violins), not for the fusion: keyword search cannot find
    it (search/broader_terms.py)."""
    raw, all_words = kw.query_tokens(words)
    if not all_words:
        return 0.0, 0.0
    unknown = stems.unknown(words)
    content = content_words(words)
    unknown_content = [w for w in unknown if w in content]
    if broader and unknown_content and len(raw) == len(all_words):
        named = {all_words[i] for i in broader.covered([stems.correct(s, w) for s, w in zip(raw, all_words)])}
        unknown_content = [w for w in unknown_content if w not in named]
    return 1.0 - len(unknown) / len(all_words), 1.0 - len(unknown_content) / len(content)


@lru_cache(maxsize=8192)
def content_words(words: str) -> tuple[str, ...]:
    """The query's words but its stop words (English, and its own language's where it can be told), or all of its
    words where it has nothing else. Remembered, as ``kw.query_tokens`` is: the match and the translation check
    (translations.py) both ask, and each answer would guess the query's language again."""
    all_words = kw.query_tokens(words)[1]
    stop = function_words(words, all_words)
    return tuple(w for w in all_words if w not in stop) or all_words
