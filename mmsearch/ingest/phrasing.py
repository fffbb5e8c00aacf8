"""How people phrase things: one text normalisation shared by training and search, and synonym groups kept as data.

``normalize`` runs on every query before any encoder sees it and on every training caption, so the model meets text
in the form it was trained on (Unicode folded, lower case, one kind of hyphen and apostrophe, single spaces).

``is_word`` tells a real word (pyspellchecker's word lists: English, and the other languages a catalog is written in)
from a slip of the fingers: search corrects only the slips, never a word a person meant ("coat" is not the colour
"cobalt"; on a catalog captioned in Spanish too, "techo", a roof, is not its "hecho").

``Synonyms`` reads a Solr-style file (``variant, variant => canonical``, see assets/synonyms.txt). Keyword search
expands a query's stems with their groups; ``varied_caption`` writes the demo's training captions from the same
groups, with the plurals, word orders, phrases, filler words and typos of real queries.
"""

from __future__ import annotations

import random
import re
import unicodedata
from dataclasses import dataclass
from functools import cache, lru_cache
from pathlib import Path

_DASHES = dict.fromkeys(map(ord, "\u2010\u2011\u2012\u2013\u2014\u2212"), "-")
_QUOTES = dict.fromkeys(map(ord, "\u2018\u2019\u201b\u2032`"), "'")


class SynonymsError(ValueError):
    """A synonyms file that cannot be read as ``variant, variant => canonical`` lines."""


# The languages pyspellchecker has word lists for (built from its frequency lists: English 160,572 words, Spanish
# 86,158, French 139,905, German 339,101).
WORD_LIST_LANGUAGES = ("ar", "de", "en", "es", "eu", "fa", "fr", "it", "lv", "nl", "pt", "ru")


@cache
def word_list(language: str):
    """pyspellchecker's words of one language. Read on first use and kept: English takes 0.15 s, German 0.4 s and
    50 MB, and only keyword search needs them."""
    from spellchecker import SpellChecker

    return SpellChecker(language=language, distance=1).word_frequency


# Snowball's name of each list's language but English, whose list holds its words' forms ("curtains", "pearls",
# "toothbrushes"). Spanish's 86,158 words lack many plurals ("cortinas", "libros", "perlas": corrected to the stamps'
# "continúa", "libra", "pera"), so a word of these languages is also one whose stem a listed word has.
SNOWBALL = {
    "ar": "arabic", "de": "german", "es": "spanish", "eu": "basque", "fa": "persian", "fr": "french",
    "it": "italian", "nl": "dutch", "pt": "portuguese", "ru": "russian",
}  # fmt: skip


@cache
def word_stems(language: str) -> frozenset[str]:
    """The Snowball stems of a language's listed words (Spanish's take 0.2 s, French's 0.4 s, German's 1.0 s)."""
    return frozenset(_stemmer(language).stemWords(list(word_list(language).dictionary)))


def _stemmer(language: str):
    import Stemmer

    return Stemmer.Stemmer(SNOWBALL[language])  # one per call: a PyStemmer stemmer is not for two threads at once


def is_word(word: str, languages: tuple[str, ...] = ("en",)) -> bool:
    """Whether ``word`` is a word of one of ``languages`` (those without a list are passed over): listed, or, but in
    English, a form of a listed word."""
    word = word.lower()
    return any(
        word in word_list(code) or (code in SNOWBALL and _stemmer(code).stemWord(word) in word_stems(code))
        for code in languages
        if code in WORD_LIST_LANGUAGES
    )


def read_words(languages: tuple[str, ...]) -> None:
    """Reads what ``is_word`` consults for ``languages`` now, not at the first word that needs it."""
    for code in languages:
        if code in WORD_LIST_LANGUAGES:
            word_list(code)
            if code in SNOWBALL:
                word_stems(code)


def without_accents(text: str) -> str:
    """'lámpara' -> 'lampara', 'Münze' -> 'Munze': how many people type another language's words."""
    return "".join(c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c))


def normalize(text: str) -> str:
    """'  Striped\u2013Red  T\u2011Shirts!' -> 'striped-red t-shirts': what the encoder and the trainer both see."""
    text = unicodedata.normalize("NFKC", str(text)).translate(_DASHES).translate(_QUOTES).lower()
    text = re.sub(r"[^\w\s'-]", " ", text)  # punctuation but hyphens and apostrophes inside words
    text = re.sub(r"(?<!\w)['-]+|['-]+(?!\w)", " ", text)
    return " ".join(text.split())


@dataclass(frozen=True)
class Synonyms:
    """Groups of words that mean one facet value: ``groups[canonical]`` lists its variants (canonical excluded)."""

    groups: dict[str, tuple[str, ...]]

    @classmethod
    def parse(cls, text: str, source: str = "synonyms") -> Synonyms:
        groups: dict[str, list[str]] = {}
        for number, line in enumerate(text.splitlines(), start=1):
            line = line.split("#", 1)[0].strip()
            if not line:
                continue
            variants, arrow, canonical = line.partition("=>")
            canonical = normalize(canonical)
            words = [w for w in map(normalize, variants.split(",")) if w]
            if not arrow or not canonical or not words or "," in canonical:
                raise SynonymsError(f"{source}, line {number}: expected 'variant, variant => canonical', got {line!r}")
            groups.setdefault(canonical, [])
            groups[canonical] += [w for w in words if w != canonical and w not in groups[canonical]]
        return cls({c: tuple(v) for c, v in groups.items()})

    @classmethod
    def load(cls, path: str | Path | None) -> Synonyms:
        """The file at ``path``; an empty path means no synonyms."""
        if not path:
            return cls({})
        path = Path(path)
        if not path.is_file():
            raise SynonymsError(f"no synonyms file at {path} (give --synonyms '' to search without synonyms)")
        return _load_cached(str(path.resolve()), path.stat().st_mtime_ns)

    def words(self, canonical: str) -> tuple[str, ...]:
        """The canonical word and its variants, canonical first."""
        return (canonical, *self.groups.get(canonical, ()))


@lru_cache(maxsize=8)
def _load_cached(path: str, _mtime: int) -> Synonyms:
    return Synonyms.parse(Path(path).read_text(encoding="utf-8"), source=path)


# --- training text the way people type -------------------------------------------------------------------------

# Words around a request, as people type them into a shop's search box. The hand-written query set
# (assets/handwritten-queries.csv) is judged on phrasings of its own; these lists are not taken from it.
OPENERS = [
    "",
    "",
    "",
    "",
    "a",
    "an",
    "the",
    "some",
    "i need a",
    "i want",
    "looking for",
    "searching for",
    "where can i buy a",
    "got any",
    "buy",
    "nice",
]
CLOSERS = ["", "", "", "", "", "for sale", "in stock", "online", "for the kitchen", "for a gift", "to buy"]


def plural(phrase: str) -> str:
    """'t-shirt' -> 't-shirts', 'baseball hat' -> 'baseball hats', 'dress' -> 'dresses'; plurals stay as they are."""
    if phrase.endswith("s") and not phrase.endswith(("ss", "us")):
        return phrase
    if phrase.endswith(("s", "x", "sh", "ch")):
        return phrase + "es"
    if phrase.endswith("y") and phrase[-2:-1] not in "aeiou":
        return phrase[:-1] + "ies"
    return phrase + "s"


def misspell(word: str, rng: random.Random) -> str:
    """One slip of the fingers: a letter dropped, doubled, swapped with the next, or a vowel changed."""
    i = rng.randrange(1, len(word) - 1)
    slip = rng.randrange(4)
    if slip == 0:
        return word[:i] + word[i + 1 :]
    if slip == 1:
        return word[:i] + word[i] + word[i:]
    if slip == 2:
        return word[:i] + word[i + 1] + word[i] + word[i + 2 :]
    return word[:i] + rng.choice([v for v in "aeiou" if v != word[i]]) + word[i + 1 :]


def varied_caption(kind: str, colour: str, pattern: str, rng: random.Random, synonyms: Synonyms) -> str:
    """One way a person might ask for (kind, colour, pattern): other words for each facet from ``synonyms``,
    plurals, other word orders, "with ..." phrases, words around the request, an attribute left unsaid, a typo."""
    noun = rng.choice(synonyms.words(kind)) if rng.random() < 0.35 else kind
    noun = plural(noun) if rng.random() < 0.35 else noun
    shade = rng.choice(synonyms.words(colour)) if rng.random() < 0.35 else colour
    look = rng.choice(synonyms.words(pattern)) if rng.random() < 0.6 else pattern
    if pattern == "solid":
        look = look if rng.random() < 0.3 else ""
    elif rng.random() < 0.08:
        look = ""
    if look and rng.random() < 0.08:
        shade = ""
    after = bool(look) and rng.random() < 0.35  # "mug with stripes" rather than "striped mug"
    if after:
        tail = rng.choice([f"with {look}", f"with a {look} pattern", f"in {look}"])
        words = [shade, noun, tail] if rng.random() < 0.7 else [noun, tail, f"in {shade}" if shade else ""]
    elif shade and rng.random() < 0.25:
        words = [look, noun, f"in {shade}"]
    elif rng.random() < 0.2:
        words = [look, shade, noun]
    else:
        words = [shade, look, noun]
    text = " ".join(w for w in [rng.choice(OPENERS), *words, rng.choice(CLOSERS)] if w)
    if rng.random() < 0.05:
        tokens = text.split()
        long = [i for i, t in enumerate(tokens) if len(t) >= 4 and t.isalpha()]
        if long:
            i = rng.choice(long)
            tokens[i] = misspell(tokens[i], rng)
            text = " ".join(tokens)
    return text
