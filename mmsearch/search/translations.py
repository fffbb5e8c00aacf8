"""A query in another language that says one of the catalog's English nouns, as a multilingual text tower reads it:
"fruta" is "fruit" (cosine 0.95 with USE multilingual), "Werkzeug" "tool" (0.91), "instrumento de cuerda"
"stringed instrument" (0.86).

The weak-match flag counts the query's content words that the catalog's text knows (search/match.py), and a Spanish
word is known only where the catalog is captioned in Spanish and uses that very word: the stamps' Spanish captions
say "Una fresa.", never "fruta", so "fruta", "Obst" and "Werkzeug" were called weak though the stamps show fruit and
tools. With a text tower that reads several languages, a query with a word that is not English now counts as known
when its vector is at least ``TRANSLATION`` like one of the catalog's English nouns or their kinds (WordNet's, as
search/broader_terms.py finds them). English queries are left to their words: USE finds "toaster" 0.84 like
"easter", a likeness of spelling, not a translation.
"""

from __future__ import annotations

import numpy as np

from mmsearch.ingest.phrasing import is_word
from mmsearch.search.match import content_words

# On the stamps' dev half (docs/zero-shot.md; the preset's rule beside it), the weak flag's F1: 0.819 without; 0.838
# at 0.70, 0.857 at 0.75, 0.859 at 0.80, 0.853 at 0.825, 0.841 at 0.85. Queries in Spanish, French or German for
# things the stamps lack stand up to 0.80 ("champú" like "champaign"), most of those for what they show above it.
TRANSLATION = 0.80


def multilingual(encoder) -> bool:
    """Whether the encoder's text tower reads more than one language (the zero-shot models say which they read)."""
    guesser = getattr(encoder, "languages", None)
    return len(getattr(guesser, "languages", None) or ()) > 1


class Translations:
    """The catalog's English nouns in the text tower's space, embedded once per set of nouns: when the server opens
    (1.3 s for the stamps' 2,600 with USE) and again only when a swapped-in build brings other words."""

    def __init__(self, encoder, threshold: float = TRANSLATION):
        self.encoder, self.threshold = encoder, threshold
        self.wanted = multilingual(encoder)
        self._seen: tuple[tuple[str, ...], np.ndarray] | None = None

    def vectors(self, nouns: tuple[str, ...]) -> np.ndarray:
        if self._seen is None or self._seen[0] != nouns:
            dim = self.encoder.text_dim
            rows = np.zeros((0, dim), np.float32)
            if nouns:
                rows = np.concatenate(
                    [self.encoder.encode_text(list(nouns[i : i + 512])) for i in range(0, len(nouns), 512)]
                )
                rows = rows[:, :dim] / np.maximum(np.linalg.norm(rows[:, :dim], axis=1, keepdims=True), 1e-12)
            self._seen = (nouns, rows)
        return self._seen[1]

    def says(self, nouns: tuple[str, ...], words: str, vector: np.ndarray) -> bool:
        """Whether the text query ``words``, one of whose content words is not English, and whose vector is
        ``vector``, says one of ``nouns``."""
        if not self.wanted or not nouns or all(is_word(w, ("en",)) for w in content_words(words)):
            return False
        words = np.asarray(vector[: self.encoder.text_dim], np.float32)
        words = words / max(float(np.linalg.norm(words)), 1e-12)
        return float((self.vectors(nouns) @ words).max()) >= self.threshold
