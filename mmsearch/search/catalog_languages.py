"""Which languages a catalog's words are written in besides English, so that keyword search takes a word of one of
them for a word, not for a slip of the fingers.

The stamps are captioned in English, Spanish, French and German (keyword fields ``title``, ``title_es``,
``title_fr``, ``title_de``). Keyword search knew English words only, so a Spanish "techo" (a roof, which the stamps
lack) was "corrected" to the captions' "hecho", "esterilla" to "estrella", "passeport" to "passer": the query then
had its words known by the catalog and was answered as a match. Each keyword field's language is guessed from its
first values joined (a title alone is often too short to tell), by the guesser the query's function words use, among
the languages it has stop lists for; a field it cannot tell is passed over. Where a field mixes languages, only its
most common one is found.
"""

from __future__ import annotations

import pandas as pd

from mmsearch.search.function_words import LANGUAGE

SAMPLE = 500  # values of a field read: a few kilobytes of titles, one guess of about a millisecond


def catalog_languages(table: pd.DataFrame, fields: list[str]) -> tuple[str, ...]:
    """The languages other than English that any of ``fields`` of ``table`` is written in, in field order."""
    found: list[str] = []
    for field in fields:
        if field not in table.columns:
            continue
        values = [v for v in table[field].head(4 * SAMPLE).tolist() if isinstance(v, str) and v.strip()][:SAMPLE]
        code = LANGUAGE.guess(" ".join(values)) if values else None
        if code and code != "en" and code not in found:
            found.append(code)
    return tuple(found)
