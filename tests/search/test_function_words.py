"""Stop words by the query's language: a catalog captioned in several languages knows their articles, which say
nothing of what a query asks for."""

from mmsearch.index.keyword import QueryStems, query_tokens
from mmsearch.ingest.phrasing import Synonyms
from mmsearch.search.function_words import function_words
from mmsearch.search.match import known_shares


def left_out(text: str) -> list[str]:
    words = query_tokens(text)[1]
    return [w for w in words if w in function_words(text, words)]


def test_the_stop_words_of_the_querys_own_language_are_left_out():
    assert left_out("una bolsa de harina") == ["una", "de"]
    assert left_out("une tondeuse pour le jardin") == ["une", "pour", "le"]
    assert left_out("ein Rasenmäher für den Garten") == ["ein", "für", "den"]


def test_english_words_on_another_languages_list_stay():
    # "hat" is a German stop word, "car" a French one: an English query keeps them
    assert left_out("a red hat") == []
    assert "car" in query_tokens("a toy car for a child")[1] and left_out("a toy car for a child") == []
    assert left_out("hat") == []  # one word: nothing to tell its language by, nothing left out


def test_a_catalog_that_knows_the_articles_does_not_know_the_query():
    # the stamps' Spanish captions: "Una manzana.", "Un libro de cuentos."
    vocab = {stem: i for i, stem in enumerate(["una", "un", "de", "manzana", "libro", "cuento"])}
    stems = QueryStems(vocab, Synonyms({}))
    assert known_shares(stems, "una bolsa de harina")[1] == 0.0  # half its words, none of its content words
    assert known_shares(stems, "una manzana roja")[1] == 0.5
