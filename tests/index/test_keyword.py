import numpy as np
import pytest

from mmsearch.index.keyword import KeywordIndex, reciprocal_rank_fusion, tokenize
from mmsearch.ingest.phrasing import Synonyms

TEXTS = [
    "Red striped cotton t-shirt",
    "A blue ceramic mug with stripes",
    "",
    "White canvas sneakers",
    "Red ceramic mug",
]


def test_tokens_are_stemmed_lower_case_words_without_stop_words():
    assert tokenize(["The Striped T-Shirts, with STRIPES"]) == [["stripe", "shirt", "stripe"]]


def test_bm25_finds_words_in_any_form_and_ranks_the_fuller_match_first():
    index = KeywordIndex.build(TEXTS)
    rows = [r for r, _ in index.search("red mugs", 5)]
    assert rows[0] == 4 and set(rows) == {0, 1, 4}  # both words first; then one of them; nothing else
    assert [r for r, _ in index.search("striped", 5)] and {r for r, _ in index.search("striped", 5)} == {0, 1}
    assert index.search("velvet", 5) == [] and index.search("the and", 5) == []


def test_search_stays_inside_the_allowed_rows():
    index = KeywordIndex.build(TEXTS)
    assert [r for r, _ in index.search("red", 5, rows=np.array([1, 4]))] == [4]
    assert index.search("red", 5, rows=np.array([], dtype=np.int64)) == []


def test_rows_with_a_word_and_a_saved_index_round_trip(tmp_path):
    index = KeywordIndex.build(TEXTS)
    assert index.rows_with(["stripes"]).tolist() == [0, 1] and index.rows_with(["nothing"]).size == 0
    index.save(tmp_path / "kw")
    again = KeywordIndex.load(tmp_path / "kw", len(TEXTS))
    assert again.search("sneaker", 3) == index.search("sneaker", 3)


def test_reciprocal_rank_fusion_by_hand():
    # k = 60, weight 0.5: row 3 is 3rd by vector and 1st by keyword: 0.5/63 + 0.5/61.
    fused = dict(reciprocal_rank_fusion([1, 2, 3], [3, 4], 0.5))
    assert fused[3] == pytest.approx(0.5 / 63 + 0.5 / 61) and fused[1] == pytest.approx(0.5 / 61)
    # Rows 2 and 4 tie (both second in one list): the vector list's comes first.
    assert [r for r, _ in reciprocal_rank_fusion([1, 2, 3], [3, 4], 0.5)] == [3, 1, 2, 4]
    # The extremes are the single lists (keyword-only rows then vector-only rows, in their order).
    assert [r for r, _ in reciprocal_rank_fusion([1, 2, 3], [3, 4], 0.0)][:3] == [1, 2, 3]
    assert [r for r, _ in reciprocal_rank_fusion([1, 2, 3], [3, 4], 1.0)][:2] == [3, 4]
    # A small constant lets the first places count more: agreement at rank 2 beats a lone first place.
    assert reciprocal_rank_fusion([1, 2], [3, 2], 0.5, k=1)[0][0] == 2
    with pytest.raises(ValueError, match="between 0 and 1"):
        reciprocal_rank_fusion([1], [1], 1.5)


SHOP = [
    "Crimson cotton tee",
    "Navy ceramic cup with spots",
    "Blue canvas trainer",
    "Red ceramic mug",
    "Olive metal light with checks",
]
GROUPS = Synonyms.parse("""tee, t shirt => t-shirt
cup => mug
trainer, trainers => sneaker
light => lamp
crimson, scarlet => red
navy => blue
spots, polka dot => dotted
checks, checkered => checked""")


def test_a_synonym_finds_the_listings_that_use_another_word_of_its_group():
    index = KeywordIndex.build(SHOP, GROUPS)
    assert [r for r, _ in index.search("red t-shirts", 5)][0] == 0  # "crimson tee"
    assert {r for r, _ in index.search("sneakers", 5)} == {2}
    assert [r for r, _ in index.search("polka dot cups", 5)][0] == 1  # "cup with spots"
    assert [r for r, _ in index.search("checkered lamp", 5)][0] == 4
    # A listing in the query's own words ranks above one that only has a synonym.
    assert [r for r, _ in index.search("red mug", 5)][0] == 3
    assert KeywordIndex.build(SHOP).search("sneakers", 5) == []  # without the groups, no shared word


def test_a_typo_is_corrected_to_the_nearest_known_word_but_short_words_are_left_alone():
    index = KeywordIndex.build(SHOP, GROUPS)
    assert [r for r, _ in index.search("ceramik mugg", 5)][:1] == [3]
    assert {r for r, _ in index.search("trainr", 5)} == {2}
    assert [r for r, _ in index.search("chekered", 5)][:1] == [4]  # to a synonym, then its group
    assert index.search("rod", 5) == []  # three letters: too many near words to guess
    assert index.search("zzzzzzzz", 5) == []


def test_a_real_word_is_never_corrected_into_another_word():
    index = KeywordIndex.build(["Cobalt canvas cap", "Red ceramic mug"], GROUPS)
    assert index.search("coat", 5) == []  # a word: left alone, though "cobalt" is a ratio of 80 away
    assert [r for r, _ in index.search("cobolt", 5)] == [0]  # not a word: corrected
    stems = index.query_stems
    assert stems.unknown("warm winter coat") == ["warm", "winter", "coat"]
    assert stems.unknown("crimson cobolt mugs") == []  # a synonym, a slip and a plural are all known


def test_a_word_of_the_catalogs_other_language_is_not_taken_for_a_slip():
    # Captions in English and Spanish: "techo" (a roof) is one letter from the captions' "hecho"
    captions = ["A fact. Un hecho.", "A star. Una estrella."]
    assert [r for r, _ in KeywordIndex.build(captions).search("techo", 5)] == [0]  # English alone: a slip
    bilingual = KeywordIndex.build(captions, languages=("es",))
    assert bilingual.search("techo", 5) == [] and bilingual.search("esterilla", 5) == []
    assert bilingual.query_stems.unknown("techo") == ["techo"]
    assert [r for r, _ in bilingual.search("estrela", 5)] == [1]  # a slip of either language is still corrected


def test_a_word_typed_without_its_accents_or_with_them_is_the_indexs_word():
    index = KeywordIndex.build(["Una lámpara de mesa", "A cafe table", "Eine Münze"], languages=("es", "de"))
    assert [r for r, _ in index.search("lampara", 5)] == [0]  # a Spanish word too: not a slip, but its accent left out
    assert [r for r, _ in index.search("café", 5)] == [1] and [r for r, _ in index.search("munze", 5)] == [2]
    assert index.query_stems.unknown("lampara cafe") == []
