"""WordNet's nouns read in place from Debian's wordnet-base: the kinds above a word, and files that are not WordNet
3.0's refused."""

import logging
import shutil

from mmsearch.ingest import wordnet
from tests.conftest import need_wordnet


def test_the_kinds_above_a_word_its_plural_and_its_commonest_sense():
    need_wordnet()
    nouns = wordnet.nouns()
    assert {"bowed stringed instrument", "string", "stringed instrument"} <= nouns.kinds("violin", 2)
    assert "musical instrument" in nouns.kinds("violin", 3) and "musical instrument" not in nouns.kinds("violin", 2)
    assert "cattle" in nouns.kinds("oxen", 1)  # an irregular plural: noun.exc
    # "hand" is first a body part; its 14th sense is a round of applause
    assert "extremity" in nouns.kinds("hand", 1, senses=1) and "applause" not in nouns.kinds("hand", 1, senses=1)
    assert "applause" in nouns.kinds("hand", 1)
    assert nouns.kinds("qwxzv", 3) == set()


def test_files_that_are_not_wordnet_3_are_not_read(tmp_path, caplog):
    need_wordnet()
    for name in wordnet.SHA256:
        shutil.copy(wordnet.FOLDER / name, tmp_path / name)
    with (tmp_path / "noun.exc").open("a") as fh:
        fh.write("geese goose\n")
    with caplog.at_level(logging.WARNING, logger="mmsearch.ingest"):
        assert wordnet.nouns(tmp_path) is None
    assert "noun.exc has sha256" in caplog.text and "not WordNet 3.0's" in caplog.text


def test_without_wordnet_there_are_no_nouns(tmp_path, caplog):
    with caplog.at_level(logging.INFO, logger="mmsearch.ingest"):
        assert wordnet.nouns(tmp_path) is None
    assert "apt-get install wordnet-base" in caplog.text
