import pandas as pd
import pytest

from mmsearch.filters import FilterError, matching_rows, parse_filters, split_terms

TABLE = pd.DataFrame({"item_id": ["a", "b", "c", "d"], "category": ["mug", "Mug", "cap", "mug"],
                      "colour": ["blue", "red", "blue", "green"], "price": [5.0, 12.0, 8.0, None]})


@pytest.mark.parametrize("text,rows", [
    ("category=mug", [0, 1, 3]),
    ("category=mug; colour=blue|red", [0, 1]),
    ("colour!=blue", [1, 3]),
    ("price<=8", [0, 2]),
    ("price>5; price<12", [2]),
    ("category = MUG ; price >= 12", [1]),
    ("", [0, 1, 2, 3]),
])
def test_filters_select_rows(text, rows):
    assert matching_rows(TABLE, parse_filters(text)).tolist() == rows


@pytest.mark.parametrize("text,message", [("colour blue", "cannot read"), ("size=9", "no column 'size'"),
                                          ("price<=cheap", "not a number")])
def test_bad_filters_say_how_to_write_them(text, message):
    with pytest.raises(FilterError, match=message):
        matching_rows(TABLE, parse_filters(text))


def test_negative_terms_are_split_off():
    assert split_terms("black sneaker -white -checked") == ("black sneaker", ["white", "checked"])
    assert split_terms("t-shirt - x") == ("t-shirt - x", [])
