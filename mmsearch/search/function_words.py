"""Words that say nothing of what a query asks for: English stop words, and the stop words of the language the query is
written in, where that can be told.

A catalog whose titles come in several languages (the stamps: "Un pájaro.", "Une fleur.", "Ein Apfel.") knows every
article and preposition of them, so "una bolsa de harina" (a bag of flour, which the stamps lack) had half its words
known by the catalog, and its answer was called a match. The language is guessed by py3langid among the languages
bm25s has stop lists for (its lists are the ones used here), and only for two words or more, as a one-word query
has no function word to leave out: on the stamps' multi-word queries, matched and unmatched, it is sure of 75% of
them and right for 97% of those (the two others Spanish taken as Portuguese, whose stop list holds the same words),
and no English query is taken as another language. Only the guessed language's list is used: the union of them all
would leave out "hat" (German), "car" (French) and "son" (Spanish, French) from English queries.
"""

from __future__ import annotations

from bm25s import stopwords as lists
from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

from mmsearch.encode.query_language import QueryLanguage

BY_LANGUAGE = {
    "da": lists.STOPWORDS_DANISH,
    "de": lists.STOPWORDS_GERMAN,
    "es": lists.STOPWORDS_SPANISH,
    "fr": lists.STOPWORDS_FRENCH,
    "it": lists.STOPWORDS_ITALIAN,
    "nl": lists.STOPWORDS_DUTCH,
    "no": lists.STOPWORDS_NORWEGIAN,
    "pt": lists.STOPWORDS_PORTUGUESE,
    "ru": lists.STOPWORDS_RUSSIAN,
    "sv": lists.STOPWORDS_SWEDISH,
    "tr": lists.STOPWORDS_TURKISH,
}
ENGLISH = frozenset(ENGLISH_STOP_WORDS)
_STOP = {code: ENGLISH | frozenset(words) for code, words in BY_LANGUAGE.items()}
LANGUAGE = QueryLanguage(("en", *BY_LANGUAGE))


def function_words(text: str, words: tuple[str, ...]) -> frozenset[str]:
    """The stop words that apply to ``text``, whose words (as keyword search reads them) are ``words``."""
    if len(words) < 2:
        return ENGLISH
    return _STOP.get(LANGUAGE.guess(text), ENGLISH)
