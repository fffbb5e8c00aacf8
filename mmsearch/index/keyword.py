"""Keyword retrieval: BM25 (bm25s, with Snowball stems) over the catalog's free-text fields, and its fusion with
vector results by reciprocal rank fusion.

The BM25 index lives in the index directory beside Faiss (``keyword/``), in index row order, so a filter's row set
serves both searches.
"""

from __future__ import annotations

import logging
from functools import lru_cache
from pathlib import Path

import bm25s
import numpy as np
import pandas as pd
import Stemmer
from rapidfuzz import fuzz, process

from mmsearch.ingest.phrasing import Synonyms, is_word, read_words, without_accents

KEYWORD_DIR = "keyword"
SYNONYM_WEIGHT = 0.5  # a synonym's share of a query word's BM25 score (chosen on the demo queries' dev half)
RRF_K = 60  # the constant of Cormack et al. (2009); mmsearch's default (Settings.rrf_k) is smaller, see there
_STEMMER = Stemmer.Stemmer("english")
logging.getLogger("bm25s").setLevel(logging.WARNING)  # its per-build debug lines are noise in a CLI


def tokenize(texts: list[str]) -> list[list[str]]:
    """Lower-cased word stems without English stop words: "Striped T-shirts" -> ["stripe", "shirt"]."""
    return bm25s.tokenize(texts, stopwords="en", stemmer=_STEMMER, return_ids=False, show_progress=False)


def stems(words: list[str]) -> list[str]:
    """Each word's stem as ``tokenize`` stems it (no stop word taken out): "instruments" -> "instrument"."""
    return _STEMMER.stemWords(words)


def query_words(text: str) -> list[str]:
    """The words ``tokenize`` stems, unstemmed and in the same order: ``tokenize([t])[0][i]`` is the stem of
    ``query_words(t)[i]`` (one splitter and one stop-word list for both)."""
    return bm25s.tokenize([text], stopwords="en", stemmer=None, return_ids=False, show_progress=False)[0]


@lru_cache(maxsize=8192)
def query_tokens(text: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(stems, words) of one query, remembered: a hybrid search asks for them four times (its keywords, their
    corrections, the words the catalog does not know, the match's coverage). Tuples, so no caller can change what
    the next one gets."""  # bm25s's tokenizer takes about 0.15 ms a call: 0.6 ms of a 4 ms cached search
    return tuple(tokenize([text])[0]), tuple(query_words(text))


def item_texts(rows: list[dict] | pd.DataFrame, fields: list[str]) -> list[str]:
    """One text per item: the named fields that it has, joined. A DataFrame is read column by column (a dict per
    row of a million-item catalog would cost a gigabyte)."""
    if isinstance(rows, pd.DataFrame):
        columns = [rows[f].tolist() for f in fields if f in rows.columns]
        return (
            [" ".join(str(v) for v in values if v not in (None, "") and v == v) for values in zip(*columns)]
            if columns
            else [""] * len(rows)
        )
    return [" ".join(str(r[f]) for f in fields if r.get(f) not in (None, "") and r.get(f) == r.get(f)) for r in rows]


class QueryStems:
    """A query's stems as BM25 should see them: a typed string that is not a word, and that the index has never
    seen, is corrected to the nearest word it knows (one or two letters off: "sneekers", "purpel"); a real word is
    left as it is, known or not ("coat" is not corrected to "cobalt", a ratio of exactly 80), a word being one of
    English or of the catalog's other ``languages``; and a word or phrase of a synonym group brings its whole
    group ("trainers" finds "sneaker"; "red" finds listings that say "crimson"). A word typed without its accents,
    or with them, is the index's word that differs from it only by them ("lampara" is "lámpara"), word or not."""

    MIN_FUZZY_LENGTH, FUZZY_CUTOFF = 4, 80.0  # shorter words have too many near neighbours to correct safely

    def __init__(self, vocab: dict[str, int], synonyms: Synonyms, languages: tuple[str, ...] = ("en",)):
        self.vocab, self.languages = vocab, tuple(dict.fromkeys(("en", *languages)))
        self.phrases: dict[tuple[str, ...], frozenset[str]] = {}
        for canonical, variants in synonyms.groups.items():
            stems = [tuple(s) for s in tokenize([canonical, *variants]) if s]
            group = frozenset(x for s in stems for x in s)
            for s in stems:
                self.phrases[s] = self.phrases.get(s, frozenset()) | group
        self.longest = max((len(p) for p in self.phrases), default=1)
        self.phrase_stems = frozenset(x for p in self.phrases for x in p)
        self._known: list[str] | None = None  # built at the first misspelling: a big catalog has many words
        self._accented: dict[str, str] | None = None  # and its words with accents, by their letters without them

    def warm(self) -> None:
        """Reads the word lists ``correct`` consults, and lists the index's words for it, now: not at a visitor's
        first word they are needed for (the stamps' Spanish, French and German lists: 2.1 s)."""
        read_words(self.languages)
        self.accented()

    def known(self) -> list[str]:
        if self._known is None:
            self._known = sorted(set(self.vocab) | self.phrase_stems)
        return self._known

    def accented(self) -> dict[str, str]:
        if self._accented is None:
            self._accented = {without_accents(s): s for s in self.known() if not s.isascii()}
        return self._accented

    def correct(self, stem: str, word: str | None = None) -> str:
        """``stem`` of the typed ``word``, or the index's nearest word when ``word`` is a slip, not a word."""
        if stem in self.vocab or (stem,) in self.phrases:
            return stem
        # The word as typed too: English stems "munze" to "munz" and leaves "münze" whole
        for bare in dict.fromkeys(without_accents(x) for x in (stem, word or stem)):
            if bare in self.vocab or bare in self.phrase_stems:
                return bare
            if bare in self.accented():
                return self.accented()[bare]
        if len(stem) < self.MIN_FUZZY_LENGTH:
            return stem
        if word is not None and is_word(word, self.languages):
            return stem
        best = process.extractOne(stem, self.known(), scorer=fuzz.ratio, score_cutoff=self.FUZZY_CUTOFF)
        return best[0] if best else stem

    def __call__(self, query: str) -> tuple[list[str], list[str]]:
        """(the query's own stems, corrected; the stems its synonym groups add), both limited to the index's words."""
        raw, words = query_tokens(query)
        stems = [self.correct(s, w) for s, w in zip(raw, words if len(words) == len(raw) else [None] * len(raw))]
        added, i = [], 0
        while i < len(stems):
            for n in range(min(self.longest, len(stems) - i), 0, -1):
                group = self.phrases.get(tuple(stems[i : i + n]))
                if group:
                    added += sorted(group)
                    i += n
                    break
            else:
                i += 1
        own = [s for s in dict.fromkeys(stems) if s in self.vocab]
        return own, [s for s in dict.fromkeys(added) if s in self.vocab and s not in own]

    def unknown(self, query: str) -> list[str]:
        """The query's words that neither the index nor a synonym group knows, after correction: what keyword search
        cannot find, so an answer's match rests on the embedding alone."""
        raw, words = query_tokens(query)
        words = words if len(words) == len(raw) else raw
        fixed = [(w, self.correct(s, w)) for s, w in zip(raw, words)]
        return [w for w, c in fixed if c not in self.vocab and c not in self.phrase_stems]


class KeywordIndex:
    """``languages``: those the catalog's text is written in besides English (search/catalog_languages.py), whose
    words are not taken for slips."""

    def __init__(
        self, retriever: bm25s.BM25, size: int, synonyms: Synonyms | None = None, languages: tuple[str, ...] = ()
    ):
        self.retriever, self.size = retriever, size
        self.query_stems = QueryStems(retriever.vocab_dict, synonyms or Synonyms({}), languages)

    @classmethod
    def build(cls, texts: list[str], synonyms: Synonyms | None = None, languages: tuple[str, ...] = ()) -> KeywordIndex:
        retriever = bm25s.BM25()
        # An item with no text still takes its row, so rows line up with the vector index.
        retriever.index([t or ["<empty>"] for t in tokenize(texts)], show_progress=False)
        return cls(retriever, len(texts), synonyms, languages)

    def save(self, directory: Path) -> None:
        self.retriever.save(str(directory), show_progress=False)

    @classmethod
    def load(
        cls, directory: Path, size: int, synonyms: Synonyms | None = None, languages: tuple[str, ...] = ()
    ) -> KeywordIndex:
        retriever = bm25s.BM25.load(str(directory), show_progress=False)
        return cls(retriever, size, synonyms, languages)

    def rows_with(self, words: list[str]) -> np.ndarray:
        """Rows whose text has any of ``words`` (after stemming): what a negated word removes."""
        indptr, indices = self.retriever.scores["indptr"], self.retriever.scores["indices"]
        found = [
            indices[indptr[t] : indptr[t + 1]]
            for t in (self.retriever.vocab_dict.get(s) for s in (tokenize(words)[0] if words else []))
            if t is not None
        ]
        return np.unique(np.concatenate(found)).astype(np.int64) if found else np.empty(0, dtype=np.int64)

    def search(self, query: str, k: int, rows: np.ndarray | None = None) -> list[tuple[int, float]]:
        """Top-k (index row, BM25 score) with a score above zero; ``rows`` limits the search to those rows."""
        own, added = self.query_stems(query)
        if not (own or added) or k <= 0:
            return []
        mask = None  # no mask without a filter: a million-long array per query is not free
        if rows is not None:
            mask = np.zeros(self.size, dtype=np.float32)
            mask[np.asarray(rows, dtype=np.int64)] = 1.0
        scores = self.retriever.get_scores(own, weight_mask=mask) if own else np.zeros(self.size, np.float32)
        if added:  # a listing in the query's own words ranks above one that only says a synonym of them
            scores = scores + SYNONYM_WEIGHT * self.retriever.get_scores(added, weight_mask=mask)
        # Top-k among the rows that score at all: most of a large catalog scores zero, and a partition over a
        # million mostly-equal values is ten times slower than one over the few thousand that matter.
        hits = np.flatnonzero(scores > 0)
        if len(hits) > k:
            hits = hits[np.argpartition(-scores[hits], k - 1)[:k]]
        hits = hits[np.lexsort((hits, -scores[hits]))]  # best first; ties by row, so answers are stable
        return [(int(r), float(scores[r])) for r in hits]


def reciprocal_rank_fusion(
    vector_rows: list[int], keyword_rows: list[int], keyword_weight: float, k: int = RRF_K
) -> list[tuple[int, float]]:
    """Rows ranked by (1 - w) / (k + vector rank) + w / (k + keyword rank), ranks from 1; a row missing from a list
    gets nothing from it. w = 0 is vector order, w = 1 keyword order (then vector-only rows follow)."""
    if not 0.0 <= keyword_weight <= 1.0:
        raise ValueError(f"keyword weight must be between 0 and 1, not {keyword_weight}")
    fused: dict[int, float] = {}
    for weight, ranked in ((1.0 - keyword_weight, vector_rows), (keyword_weight, keyword_rows)):
        for rank, row in enumerate(ranked, start=1):
            fused[row] = fused.get(row, 0.0) + weight / (k + rank)
    # Ties (a weight of 0 or 1) keep the order of first appearance: vector list first.
    order = {row: i for i, row in enumerate(dict.fromkeys([*vector_rows, *keyword_rows]))}
    return sorted(fused.items(), key=lambda item: (-item[1], order[item[0]]))
