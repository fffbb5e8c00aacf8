import random

import pytest

from mmsearch.ingest import demo, phrasing
from mmsearch.ingest.phrasing import Synonyms, SynonymsError, normalize
from mmsearch.resources import SYNONYMS_FILE


def test_normalize_folds_case_unicode_punctuation_and_spaces():
    assert normalize("  Striped\u2013Red  T\u2011Shirts!") == "striped-red t-shirts"
    assert normalize("I\u2019m looking for a MUG, please.") == "i'm looking for a mug please"
    assert normalize("ｒｅｄ  mug -- 'dotted'") == "red mug dotted"
    assert normalize(normalize("Polka-Dot  cups")) == normalize("Polka-Dot  cups") == "polka-dot cups"


def test_synonyms_parse_groups_and_say_what_is_wrong_with_a_line(tmp_path):
    groups = Synonyms.parse("# kinds\ntee, T Shirt => t-shirt\ncup => mug\ntee => t-shirt\n")
    assert groups.words("t-shirt") == ("t-shirt", "tee", "t shirt") and groups.words("sofa") == ("sofa",)
    assert groups.words("mug") == ("mug", "cup")
    with pytest.raises(SynonymsError, match="line 2"):
        Synonyms.parse("cup => mug\nred crimson\n")
    with pytest.raises(SynonymsError, match="no synonyms file"):
        Synonyms.load(tmp_path / "missing.txt")
    assert Synonyms.load("").groups == {}


def test_the_bundled_groups_cover_every_facet_value_of_the_demo():
    groups = Synonyms.load(SYNONYMS_FILE)
    for value in [*demo.KINDS, *demo.COLOURS, *demo.PATTERNS]:
        assert len(groups.words(value)) >= 3, value


def test_training_captions_vary_the_way_people_type():
    groups = Synonyms.load(SYNONYMS_FILE)
    rng = random.Random(0)
    texts = [phrasing.varied_caption("mug", "red", "striped", rng, groups) for _ in range(400)]
    assert len(set(texts)) > 200
    assert any("mugs" in t or "cups" in t for t in texts)  # plurals
    assert any("with" in t for t in texts)  # phrases
    assert any(w in t for t in texts for w in ("crimson", "scarlet", "cherry"))  # other colour words
    assert any(w in t for t in texts for w in ("stripy", "pinstripe", "stripes"))
    assert (
        phrasing.plural("t-shirt") == "t-shirts"
        and phrasing.plural("glass") == "glasses"
        and phrasing.plural("shoes") == "shoes"
    )
    assert phrasing.misspell("striped", random.Random(1)) != "striped"


def test_words_are_told_from_slips_of_the_fingers():
    from mmsearch.ingest.phrasing import is_word

    assert all(map(is_word, ["coat", "cobalt", "Jumper", "parka", "stripped"]))
    assert not any(map(is_word, ["sneekers", "purpel", "yelow", "chekered"]))


def test_a_word_of_another_language_is_a_word_where_that_language_is_read():
    from mmsearch.ingest.phrasing import is_word

    assert not is_word("techo") and is_word("techo", ("en", "es"))  # a roof, in Spanish
    assert is_word("Reisepass", ("de",)) and not is_word("sneekers", ("en", "es", "fr", "de"))
    assert not is_word("techo", ("es-MX", "xx"))  # languages without a word list are passed over


def test_a_form_of_a_listed_word_of_another_language_is_a_word():
    from mmsearch.ingest.phrasing import is_word, word_list

    # Spanish's list has "cortina" and "libro", not their plurals: Snowball's Spanish stem tells they are forms of them
    assert "cortinas" not in word_list("es") and "libros" not in word_list("es")
    assert is_word("cortinas", ("es",)) and is_word("libros", ("es",))
    assert not is_word("estrela", ("es",)) and not is_word("cortinas")  # a slip; and English has no such word
