import pandas as pd
import pytest

from mmsearch.index.filters import FilterError, matching_rows, parse_filters, split_terms

TABLE = pd.DataFrame(
    {
        "item_id": ["a", "b", "c", "d"],
        "category": ["mug", "Mug", "cap", "mug"],
        "colour": ["blue", "red", "blue", "green"],
        "price": [5.0, 12.0, 8.0, None],
    }
)


@pytest.mark.parametrize(
    "text,rows",
    [
        ("category=mug", [0, 1, 3]),
        ("category=mug; colour=blue|red", [0, 1]),
        ("colour!=blue", [1, 3]),
        ("price<=8", [0, 2]),
        ("price>5; price<12", [2]),
        ("category = MUG ; price >= 12", [1]),
        ("", [0, 1, 2, 3]),
    ],
)
def test_filters_select_rows(text, rows):
    assert matching_rows(TABLE, parse_filters(text)).tolist() == rows


@pytest.mark.parametrize(
    "text,message", [("colour blue", "cannot read"), ("size=9", "no column 'size'"), ("price<=cheap", "not a number")]
)
def test_bad_filters_say_how_to_write_them(text, message):
    with pytest.raises(FilterError, match=message):
        matching_rows(TABLE, parse_filters(text))


def test_negative_terms_are_split_off():
    assert split_terms("black sneaker -white -checked") == ("black sneaker", ["white", "checked"])
    assert split_terms("t-shirt - x") == ("t-shirt - x", [])


# --- property tests: any text a person or a script sends either parses or gets a FilterError, nothing else --------
from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

_MESSY = pd.DataFrame(
    {
        "category": ["mug", "cap", "Mug ", "bag"],
        "price": ["3", "x", "12.5", ""],
        "colour": ["blue", "red", "blue", None],
    }
)
_pieces = st.sampled_from(
    [
        "category",
        "price",
        "colour",
        "nope",
        "=",
        "!=",
        "<",
        "<=",
        ">",
        ">=",
        "|",
        ";",
        " ",
        "mug",
        "blue",
        "12",
        "-3.5e2",
        "nan",
        "inf",
        "é",
        "🙂",
        "\x00",
        "'",
        '"',
    ]
)


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.text(max_size=200), st.lists(_pieces, max_size=12).map("".join)))
def test_any_filter_text_parses_or_says_what_is_wrong(text):
    try:
        clauses = parse_filters(text)
        rows = matching_rows(_MESSY, clauses)
    except FilterError as exc:
        assert str(exc)
        return
    assert rows.dtype.kind == "i" and set(rows.tolist()) <= {0, 1, 2, 3}
    assert all(c.op in ("=", "!=", "<", "<=", ">", ">=") for c in clauses)


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=300))
def test_query_terms_split_into_words_and_negations(query):
    positive, negative = split_terms(query)
    negated = [w.startswith("-") and len(w) > 1 for w in query.split()]
    assert positive.split() == [w for w, n in zip(query.split(), negated) if not n]
    assert negative == [w[1:] for w, n in zip(query.split(), negated) if n]
