import numpy as np

from mmsearch.ingest.phrasing import Synonyms
from mmsearch.search.expansion import CategoryPhrases


class WordVectors:
    """A stand-in text tower: each known phrase is a fixed unit vector, anything else a mix of them."""

    model_id = "words"

    def __init__(self, table: dict[str, list[float]]):
        self.table = {k: np.asarray(v, dtype=np.float32) / np.linalg.norm(v) for k, v in table.items()}

    def encode_text(self, texts):
        return np.stack([self.table[t] for t in texts])


def test_a_query_is_pulled_toward_the_category_of_its_nearest_phrase():
    tower = WordVectors({"pullover": [1, 0, 0], "jumper": [0.8, 0.6, 0], "coat": [0, 0, 1], "parka": [0, 0.6, 0.8]})
    synonyms = Synonyms.parse("jumper => pullover\nparka => coat")
    phrases = CategoryPhrases.of(["Pullover", "Coat", "Pullover"], synonyms, tower)
    assert phrases.names == ("Coat", "Pullover")
    query = np.asarray([0.0, 1.0, 0.0], dtype=np.float32)  # as near "jumper" as "parka": each category scores 0.6
    scores = phrases.category_scores(query)
    assert np.allclose(scores, [0.6, 0.6])
    query = np.asarray([0.5, 0.8, 0.0], dtype=np.float32)
    query /= np.linalg.norm(query)
    expanded = phrases.expand(query, weight=1.0, temperature=0.05)
    assert abs(np.linalg.norm(expanded) - 1) < 1e-6
    pullover, coat = phrases.centres[1], phrases.centres[0]
    assert expanded @ pullover > query @ pullover and expanded @ coat <= query @ coat + 1e-6
    assert phrases.expand(query, weight=0.0, temperature=0.05) is query  # off: the query as it is


def test_a_catalog_without_categories_or_with_too_many_is_not_expanded():
    tower = WordVectors({"x": [1, 0]})
    assert CategoryPhrases.of([], Synonyms({}), tower) is None
    assert CategoryPhrases.of([str(i) for i in range(1001)], Synonyms({}), tower) is None


def test_the_affinity_is_how_much_nearer_a_query_is_to_a_category_word_than_to_any_other_thing():
    tower = WordVectors(
        {
            "shirt": [1, 0, 0, 0],
            "tennis shoes": [0, 1, 0, 0],
            "tennis ball": [0, 0.6, 0.8, 0],
            "dress shirt": [0.9, 0, 0, 0.1],  # near "shirt": one of the catalog's own, not another thing
            "lawn mower": [0, 0, 0, 1],
        }
    )
    synonyms = Synonyms.parse("tennis shoes => shirt")
    others = ["tennis ball", "dress shirt", "lawn mower"]
    phrases = CategoryPhrases.of(["Shirt"], synonyms, tower, others)
    assert len(phrases.others) == 2  # "dress shirt" left out
    balls = np.asarray([0, 0.7, 0.7, 0], dtype=np.float32) / np.sqrt(0.98)
    assert phrases.affinity(balls) < 0  # like "tennis shoes", but nearer to "tennis ball"
    shirt = np.asarray([0.9, 0, 0, 0.3], dtype=np.float32) / np.sqrt(0.9)
    assert phrases.affinity(shirt) > 0.5
    plain = CategoryPhrases.of(["Shirt"], synonyms, tower)  # no other things: the nearest category word's similarity
    assert abs(plain.affinity(balls) - float(balls @ tower.table["tennis shoes"])) < 1e-6
