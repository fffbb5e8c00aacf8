"""Query expansion through the text tower: a text query is pulled toward the catalog's categories that its words
resemble, as the text tower sees them.

Each category of the catalog (its ``category`` column) is a handful of phrases: its name and the words of its synonym
group (the --synonyms file). The phrases are embedded once per index. A query is compared with every phrase (text to
text, where a pretrained text tower knows that "hoodie" is near "sweatshirt"); each category scores its best phrase;
a softmax over the scores at ``temperature`` weighs the categories' mean phrase vectors, and ``weight`` of that blend
is added to the query. A query that resembles no category much is pulled toward all of them alike, which moves it
little. The answer's match (match.py) is judged on the query as typed, not as expanded.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mmsearch.encode.encoders import Encoder
from mmsearch.ingest.phrasing import Synonyms, normalize
from mmsearch.search.background import NEAR

MAX_CATEGORIES = 1000  # a column with more distinct values is no category list to expand toward


@dataclass(frozen=True)
class CategoryPhrases:
    names: tuple[str, ...]
    phrases: np.ndarray  # P x d, L2-normalised
    owner: np.ndarray  # P: the category (index into names) of each phrase
    centres: np.ndarray  # C x d: each category's mean phrase, L2-normalised
    others: np.ndarray  # O x d: other things (background.py), none of them near a phrase

    @classmethod
    def of(
        cls, categories: list[str], synonyms: Synonyms, encoder: Encoder, others: list[str] = ()
    ) -> CategoryPhrases | None:
        names = tuple(sorted({str(c) for c in categories if str(c).strip()}))
        if not names or len(names) > MAX_CATEGORIES:
            return None
        texts, owner = [], []
        for i, name in enumerate(names):
            for phrase in dict.fromkeys(synonyms.words(normalize(name))):
                texts.append(phrase)
                owner.append(i)
        phrases = encoder.encode_text(texts)
        owner_arr = np.asarray(owner)
        centres = np.stack([phrases[owner_arr == i].mean(axis=0) for i in range(len(names))])
        centres /= np.linalg.norm(centres, axis=1, keepdims=True)
        other = encoder.encode_text(list(others)) if others else np.zeros((0, phrases.shape[1]), np.float32)
        other = other[(other @ phrases.T).max(axis=1) < NEAR] if len(other) else other
        return cls(names, phrases, owner_arr, centres.astype(np.float32), other)

    def category_scores(self, query: np.ndarray) -> np.ndarray:
        """Each category's best phrase similarity to ``query``."""
        sims = self.phrases @ query
        best = np.full(len(self.names), -np.inf, dtype=np.float32)
        np.maximum.at(best, self.owner, sims)
        return best

    def affinity(self, query: np.ndarray) -> float:
        """How much nearer ``query`` is to the catalog's nearest category word than to the nearest other thing
        (without other things: its similarity to that word)."""
        best = float(self.category_scores(query).max())
        return best - float((self.others @ query).max()) if len(self.others) else best

    def expand(self, query: np.ndarray, weight: float, temperature: float) -> np.ndarray:
        if weight <= 0:
            return query
        scores = self.category_scores(query) / max(temperature, 1e-6)
        shares = np.exp(scores - scores.max())
        shares /= shares.sum()
        out = query + weight * (shares @ self.centres)
        return (out / np.linalg.norm(out)).astype(np.float32)
