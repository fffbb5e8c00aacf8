"""The words that name a kind of what a catalog's words name: "instrument" and "string instrument" where the
captions say "violin", "extremity" where they say "hand", "cattle" where they say "oxen".

The weak-match flag counts a query's content words that the catalog's text knows (search/match.py): a query in the
catalog's own words is about something it holds. A query by kind ("string instrument", "sports equipment") has no
caption's word in it, so it counted as a query about something absent; on the stamps' dev half, "clothes to wear" and
"cattle and oxen" were called weak for that alone. A word is now known too when WordNet (ingest/wordnet.py) has it,
or a phrase of it, up to ``DEPTH`` kinds above a word of the catalog's in its commonest sense. English only:
WordNet's words, stemmed as keyword search stems (a query's "instruments" is the stem of "instrument").

Counted for the match's coverage alone: keyword search cannot find listings by a word they do not hold, so the
share of the keyword list in hybrid fusion still counts only the words the index has.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache

from mmsearch.index import keyword as kw
from mmsearch.ingest import wordnet

# How far above a catalog's word, and from how many of its senses (WordNet's commonest first). On the stamps' dev half
# (docs/zero-shot.md), the weak flag's F1 was 0.819 with 1 or 2 senses and 1 or 2 levels, 0.811 with 3 or 5 levels,
# 0.795 with every sense ("rod", "lens", "curtain" were then kinds of something the stamps show), 0.816 without.
DEPTH, SENSES = 2, 1


@cache
def _stemmed_nouns() -> tuple[tuple[str, str], ...]:
    """WordNet's one-word nouns and irregular plurals ("oxen"), each with its stem."""
    nouns = wordnet.nouns()
    words = [w for w in nouns.senses if " " not in w and "-" not in w] + list(nouns.plurals)
    return tuple(zip(words, kw.stems(words)))


@dataclass(frozen=True)
class BroaderTerms:
    """Stems and stemmed phrases that name a kind of something in the catalog; ``nouns``: those kinds and the
    catalog's own words that WordNet has as nouns, as words (what a query in another language is held against,
    search/translations.py)."""

    words: frozenset[str]
    phrases: frozenset[tuple[str, ...]]
    nouns: tuple[str, ...] = ()

    @classmethod
    def of(cls, vocab: Iterable[str], depth: int = DEPTH, senses: int | None = SENSES) -> BroaderTerms:
        """From the stems of a keyword index's words; none where WordNet is not installed. The first catalog of a
        process takes 1.2 s (reading WordNet, stemming its nouns to meet the index's stems), the next 0.1 s."""
        nouns = wordnet.nouns()
        if nouns is None:
            return cls(frozenset(), frozenset())
        vocab = set(vocab)
        own = {word for word, stem in _stemmed_nouns() if stem in vocab}
        names = {name for word in own for name in nouns.kinds(word, depth, senses)}
        stemmed = [tuple(t) for t in kw.tokenize(sorted(names)) if t]
        words = frozenset(t[0] for t in stemmed if len(t) == 1)
        return cls(words, frozenset(t for t in stemmed if len(t) > 1), tuple(sorted(own | names)))

    def __bool__(self) -> bool:
        return bool(self.words or self.phrases)

    def covered(self, stems: list[str]) -> set[int]:
        """The positions in ``stems`` (a query's, in order) of the words a broader term names."""
        found = {i for i, s in enumerate(stems) if s in self.words}
        longest = max((len(p) for p in self.phrases), default=0)
        for start in range(len(stems)):
            for n in range(2, min(longest, len(stems) - start) + 1):
                if tuple(stems[start : start + n]) in self.phrases:
                    found.update(range(start, start + n))
        return found
