"""Which language a text tower takes a query as (the REST answer's ``query_language``).

An English-only tower (MiniLM) takes every query as English, whatever it is written in: it says ``en``. A multilingual
tower (USE multilingual 3) reads its languages alike and cannot say which one it saw, so the query's language is
guessed by py3langid (langid.py's naive Bayes over byte n-grams, its model inside the wheel) among the tower's
languages, and said only when the guess is sure: a one-word query ("panda", "taxi") is often several languages at
once, and then the answer says ``null`` rather than a coin toss. A tower whose languages are not known says nothing.
"""

from __future__ import annotations

import copy
import threading
from functools import cache

# USE multilingual 3's languages (its model card; Chinese simplified and traditional share "zh").
USE_LANGUAGES = ("ar", "de", "en", "es", "fr", "it", "ja", "ko", "nl", "pl", "pt", "ru", "th", "tr", "zh")
NAMES = {
    "ar": "Arabic", "de": "German", "en": "English", "es": "Spanish", "fr": "French", "it": "Italian",
    "ja": "Japanese", "ko": "Korean", "nl": "Dutch", "pl": "Polish", "pt": "Portuguese", "ru": "Russian", "th": "Thai",
    "tr": "Turkish", "zh": "Chinese",
}  # fmt: skip
# The guess's normalised probability, among the tower's languages, at which it is said. Chosen on the stamps' dev
# queries (assets/stamps/queries.csv; 70 English, 32 each Spanish, French and German, mostly one or two words):
# at 0.5 it is said for 40% of them and right for 94% (test half: 43%, 100%); said for every query it is right for 70%.
SURE = 0.5


class QueryLanguage:
    """``guess(text)``: the ISO 639-1 code the tower takes ``text`` as, or None when it cannot tell."""

    def __init__(self, languages: tuple[str, ...] | None, sure: float = SURE):
        self.languages, self.sure = languages, sure
        self._identifier = None
        self._lock = threading.Lock()

    def guess(self, text: str) -> str | None:
        if not self.languages or not text.strip():
            return None
        if len(self.languages) == 1:
            return self.languages[0]
        code, probability = self.identifier.classify(text)
        return code if probability >= self.sure else None

    @property
    def identifier(self):
        if self._identifier is None:
            with self._lock:
                if self._identifier is None:
                    identifier = copy.copy(_whole_model())  # its own choice of languages, the model's arrays shared
                    identifier.set_languages(list(self.languages))
                    self._identifier = identifier
        return self._identifier


@cache
def _whole_model():
    """py3langid's model over all its languages, read once for every guesser of the process (the tower's, the
    match's function words'): reading it takes about 0.3 s."""
    from py3langid.langid import MODEL_DIR, MODEL_FILE, LanguageIdentifier

    return LanguageIdentifier.from_modelpath(MODEL_DIR / MODEL_FILE, norm_probs=True)
