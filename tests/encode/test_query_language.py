"""The language a text tower takes a query as: English for an English-only tower, a sure guess among a multilingual
tower's languages, nothing where it cannot tell."""

from __future__ import annotations

import pytest

from mmsearch.encode.query_language import USE_LANGUAGES, QueryLanguage


def test_an_english_only_tower_takes_every_query_as_english():
    english = QueryLanguage(("en",))
    assert english.guess("una taza de café") == "en" and english.guess("a cup of coffee") == "en"


@pytest.mark.parametrize(
    "words,code",
    [
        ("¿dónde está la estación de tren?", "es"),
        ("une voiture rouge avec des roues noires", "fr"),
        ("ein kleiner Hund spielt im Garten", "de"),
        ("a small dog playing in the garden", "en"),
        ("маленькая собака играет в саду", "ru"),
    ],
)
def test_a_multilingual_tower_names_the_language_of_a_sentence(words, code):
    assert QueryLanguage(USE_LANGUAGES).guess(words) == code


def test_unsure_or_unknown_says_nothing():
    use = QueryLanguage(USE_LANGUAGES)
    assert use.guess("panda") is None  # one word of many languages: no coin toss
    assert use.guess("   ") is None
    assert QueryLanguage(None).guess("a cup of coffee") is None  # a tower whose languages are not known


def test_the_guess_is_only_among_the_towers_languages():
    # Catalan is not one of USE's languages: the guess falls on one it has, or on none, never on "ca"
    assert QueryLanguage(USE_LANGUAGES).guess("el gos petit juga al jardí amb la pilota") in (*USE_LANGUAGES, None)
    assert QueryLanguage(("en", "de")).guess("une voiture rouge avec des roues noires") in ("en", "de", None)


def test_guessers_of_other_languages_share_one_read_of_the_model_and_keep_their_own_choice():
    from mmsearch.encode import query_language

    spanish, portuguese = QueryLanguage(("en", "es")), QueryLanguage(("en", "pt"))
    words = "¿dónde está la estación de tren?"
    assert spanish.guess(words) == "es" and portuguese.guess(words) in ("pt", None) and spanish.guess(words) == "es"
    assert spanish.identifier.nb_ptc is not portuguese.identifier.nb_ptc
    assert query_language._whole_model.cache_info().currsize == 1
