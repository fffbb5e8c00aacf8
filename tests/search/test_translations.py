"""A query in another language that says one of the catalog's English nouns counts as known to the weak flag, with
a text tower that reads several languages; English words are left to the catalog's own."""

import numpy as np

from mmsearch.encode.encoders import load_encoder
from mmsearch.encode.query_language import QueryLanguage
from mmsearch.search.translations import Translations, multilingual

NOUNS = ("fruit", "stringed instrument", "tool")


class Tower:
    """A text tower with fixed vectors: what it reads as the same thing points the same way."""

    text_dim = 3
    axes = {"fruit": 0, "fruta": 0, "stringed instrument": 1, "instrumento de cuerda": 1, "tool": 2}

    def __init__(self, languages=("en", "es")):
        self.languages = QueryLanguage(languages)
        self.calls = 0

    def encode_text(self, texts):
        self.calls += 1
        rows = np.zeros((len(texts), self.text_dim + 2), np.float32)  # the picture block after the words
        for i, t in enumerate(texts):
            rows[i, self.axes[t]] = 1.0
        return rows


def test_another_languages_words_for_a_catalog_noun_are_known():
    tower = Tower()
    translations = Translations(tower)
    fruta = tower.encode_text(["fruta"])[0]
    assert translations.says(NOUNS, "fruta", fruta)
    assert translations.says(NOUNS, "instrumento de cuerda", tower.encode_text(["instrumento de cuerda"])[0])
    halfway = np.array([np.sqrt(0.5), 0, np.sqrt(0.5), 0, 0], np.float32)  # 0.71 like fruit and like tool
    assert not translations.says(NOUNS, "frutero", halfway)
    assert not translations.says((), "fruta", fruta)


def test_english_words_are_left_to_the_catalogs_text():
    tower = Tower()
    assert not Translations(tower).says(NOUNS, "fruit", tower.encode_text(["fruit"])[0])


def test_an_english_only_tower_translates_nothing():
    tower = Tower(languages=("en",))
    assert not multilingual(tower) and multilingual(Tower())
    assert not Translations(tower).says(NOUNS, "fruta", tower.encode_text(["fruta"])[0])
    assert not multilingual(object())  # a model that does not say what it reads


def test_the_nouns_are_embedded_once_per_set():
    tower = Tower()
    translations = Translations(tower)
    translations.vectors(NOUNS)
    translations.vectors(NOUNS)
    assert tower.calls == 1
    assert translations.vectors(NOUNS[:1]).shape == (1, 3) and tower.calls == 2


def test_use_reads_spanish_and_german_words_as_their_english_nouns():
    use = load_encoder("zero-shot-multilingual", "cpu")
    translations = Translations(use)
    nouns = ("fruit", "tool", "horse", "stringed instrument", "hotel", "paper")
    for query in ("fruta", "Werkzeug", "caballo", "instrumento de cuerda"):
        assert translations.says(nouns, query, use.encode_text([query])[0]), query
    for query in ("hipoteca", "Zahnbürste"):  # a mortgage, a toothbrush: near no noun of these
        assert not translations.says(nouns, query, use.encode_text([query])[0]), query
