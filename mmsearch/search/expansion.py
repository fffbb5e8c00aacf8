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
from mmsearch.search import background
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


class CategoryWords:
    """The catalog's category words embedded (with --match-background's other things), once per set of categories:
    when the server opens, not at its first query (seconds for ImageNet's names), and again only when a swapped-in
    build brings other categories. None when neither expansion nor the match rule reads them."""

    def __init__(self, encoder: Encoder, settings):
        self.encoder, self.settings = encoder, settings
        self._seen: tuple[object, tuple[str, ...], CategoryPhrases | None] | None = None

    @property
    def wanted(self) -> bool:
        return self.settings.expand > 0 or self.settings.match_affinity <= 1

    def of(self, snap) -> CategoryPhrases | None:
        """The phrases of ``snap``'s categories."""
        if not self.wanted:
            return None
        if self._seen is None or self._seen[0] is not snap:
            table = snap.table
            names = tuple(sorted({str(c) for c in table["category"]})) if "category" in table.columns else ()
            if self._seen is not None and self._seen[1] == names:
                self._seen = (snap, names, self._seen[2])
            else:
                s = self.settings
                others = background.names(s.match_background) if s.match_affinity <= 1 else []
                phrases = CategoryPhrases.of(list(names), Synonyms.load(s.synonyms), self.encoder, others)
                self._seen = (snap, names, phrases)
        return self._seen[2]

    def expanded(self, snap, vector: np.ndarray) -> np.ndarray:
        """A text query's vector pulled toward the categories its words resemble; as it is when --expand is 0."""
        phrases = self.of(snap) if self.settings.expand > 0 else None
        if phrases is None:
            return vector
        return phrases.expand(vector, self.settings.expand, self.settings.expand_temperature)
