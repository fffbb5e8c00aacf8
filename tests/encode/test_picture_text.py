"""What --ocr keeps of a reading: lines sure enough and long enough, with the spaces the recogniser dropped put back."""

import pytest

from mmsearch.encode.picture_text import Reading, kept_lines, spaced


@pytest.mark.parametrize(
    "read, meant",
    [
        ("ORGANICHONEY", "ORGANIC HONEY"),
        ("500ml", "500 ml"),
        ("1.5kg", "1.5 kg"),
        ("70%cocoa", "70% cocoa"),
        ("histogram ofgreyvalues:", "histogram of grey values:"),
        ("background.These markers", "background. These markers"),
        ("SEASALT", "SEA SALT"),
        ("PEANUTBUTTER", "PEANUT BUTTER"),
        ("NUTELLA", "NUTELLA"),  # words, if not English ones: never "NUT ELLA", "FROM AGE", "CONF IT URE"
        ("HARIBO", "HARIBO"),
        ("FROMAGE", "FROMAGE"),
        ("CONFITURE", "CONFITURE"),
        ("MERMELADA", "MERMELADA"),
        ("KAFFEEBOHNEN", "KAFFEEBOHNEN"),
        ("Kelloggs", "Kelloggs"),  # a split that leaves one letter is no split
        ("H2O", "H2O"),
        ("DARK CHOCOLATE", "DARK CHOCOLATE"),
    ],
)
def test_spaces_the_recogniser_dropped_are_put_back(read, meant):
    assert spaced(read) == meant


def test_unsure_and_one_character_lines_are_dropped():
    lines = [("ORGANICHONEY", 0.97), ("O", 0.99), ("?", 0.95), ("fur", 0.62), ("250 g", 0.91), ("ab", 0.8)]
    assert kept_lines(lines) == ["ORGANIC HONEY", "250 g", "ab"]
    assert Reading(lines, 0.3).text(0.95) == "ORGANIC HONEY"
    assert Reading([], 0.2).text() == ""
