"""Words that name a kind of what the catalog's words name count as known for the weak-match flag, not for keyword
search's share of a hybrid answer."""

from mmsearch.index.keyword import QueryStems, tokenize
from mmsearch.ingest.phrasing import Synonyms
from mmsearch.search import broader_terms
from mmsearch.search.broader_terms import BroaderTerms
from mmsearch.search.match import known_shares
from tests.conftest import need_wordnet

CAPTIONS = ["A violin.", "A cow in a field.", "A hand waving."]


def _vocab() -> dict[str, int]:
    return {stem: i for i, stem in enumerate(sorted({s for t in tokenize(CAPTIONS) for s in t}))}


def test_a_query_by_kind_is_known_to_the_match_not_to_keyword_search():
    need_wordnet()
    vocab = _vocab()
    stems, broader = QueryStems(vocab, Synonyms({})), BroaderTerms.of(vocab)
    fusion, coverage = known_shares(stems, "string instrument", broader)
    assert (fusion, coverage) == (0.0, 1.0)  # "stringed instrument": a kind of violin; nothing keyword search finds
    assert known_shares(stems, "string instrument") == (0.0, 0.0)  # without the broader terms, as before
    assert known_shares(stems, "cattle and oxen", broader)[1] == 1.0
    assert known_shares(stems, "a lawn mower", broader)[1] == 0.0
    assert known_shares(stems, "a violin", broader) == (1.0, 1.0)


def test_only_the_commonest_sense_of_a_catalogs_word_counts():
    need_wordnet()
    broader = BroaderTerms.of(_vocab())
    assert broader.covered(tokenize(["extremity"])[0]) == {0}  # a hand's kind
    assert broader.covered(tokenize(["applause"])[0]) == set()  # "a hand" for a performer: the 14th sense
    assert broader.covered(["fiddl", "string", "instrument"]) == {1, 2}


def test_without_wordnet_nothing_is_broader(monkeypatch):
    monkeypatch.setattr(broader_terms.wordnet, "nouns", lambda: None)
    broader = BroaderTerms.of(_vocab())
    assert not broader and broader.covered(["string", "instrument"]) == set()
