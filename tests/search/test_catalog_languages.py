"""The languages a catalog's keyword fields are written in: guessed per field from its values."""

import pandas as pd

from mmsearch.search.catalog_languages import catalog_languages

TABLE = pd.DataFrame(
    {
        "title": ["A red apple", "A wooden chair with a cushion", "Two cats asleep on a sofa"],
        "title_es": ["Una manzana roja", "Una silla de madera con un cojín", "Dos gatos dormidos en un sofá"],
        "title_fr": ["Une pomme rouge", "Une chaise en bois avec un coussin", "Deux chats endormis sur un canapé"],
        "code": ["", None, ""],
    }
)


def test_each_keyword_field_brings_its_language_and_english_is_left_implied():
    assert catalog_languages(TABLE, ["title", "title_es", "title_fr"]) == ("es", "fr")
    assert catalog_languages(TABLE, ["title"]) == ()


def test_fields_without_text_or_missing_from_the_catalog_bring_nothing():
    assert catalog_languages(TABLE, ["code", "description"]) == ()
