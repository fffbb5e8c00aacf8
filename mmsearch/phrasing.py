"""How people phrase things: one text normalisation shared by training and search, and synonym groups kept as data.

``normalize`` runs on every query before any encoder sees it and on every training caption, so the model meets text
in the form it was trained on (Unicode folded, lower case, one kind of hyphen and apostrophe, single spaces).

``Synonyms`` reads a Solr-style file (``variant, variant => canonical``, see assets/synonyms.txt). Keyword search
expands a query's stems with their groups; the demo's training captions draw words from the same groups.
"""
from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from .config import PROJECT_ROOT

DEFAULT_SYNONYMS = PROJECT_ROOT / "assets" / "synonyms.txt"
_DASHES = dict.fromkeys(map(ord, "\u2010\u2011\u2012\u2013\u2014\u2212"), "-")
_QUOTES = dict.fromkeys(map(ord, "\u2018\u2019\u201b\u2032`"), "'")


class SynonymsError(ValueError):
    """A synonyms file that cannot be read as ``variant, variant => canonical`` lines."""


def normalize(text: str) -> str:
    """'  Striped\u2013Red  T\u2011Shirts!' -> 'striped-red t-shirts': what the encoder and the trainer both see."""
    text = unicodedata.normalize("NFKC", str(text)).translate(_DASHES).translate(_QUOTES).lower()
    text = re.sub(r"[^\w\s'-]", " ", text)  # punctuation but hyphens and apostrophes inside words
    text = re.sub(r"(?<!\w)['-]+|['-]+(?!\w)", " ", text)
    return " ".join(text.split())


@dataclass(frozen=True)
class Synonyms:
    """Groups of words that mean one facet value: ``groups[canonical]`` lists its variants (canonical excluded)."""

    groups: dict[str, tuple[str, ...]]

    @classmethod
    def parse(cls, text: str, source: str = "synonyms") -> Synonyms:
        groups: dict[str, list[str]] = {}
        for number, line in enumerate(text.splitlines(), start=1):
            line = line.split("#", 1)[0].strip()
            if not line:
                continue
            variants, arrow, canonical = line.partition("=>")
            canonical = normalize(canonical)
            words = [normalize(v) for v in variants.split(",") if normalize(v)]
            if not arrow or not canonical or not words or "," in canonical:
                raise SynonymsError(f"{source}, line {number}: expected 'variant, variant => canonical', "
                                    f"got {line!r}")
            groups.setdefault(canonical, [])
            groups[canonical] += [w for w in words if w != canonical and w not in groups[canonical]]
        return cls({c: tuple(v) for c, v in groups.items()})

    @classmethod
    def load(cls, path: str | Path | None) -> Synonyms:
        """The file at ``path``; an empty path means no synonyms."""
        if not path:
            return cls({})
        path = Path(path)
        if not path.is_file():
            raise SynonymsError(f"no synonyms file at {path} (give --synonyms '' to search without synonyms)")
        return _load_cached(str(path.resolve()), path.stat().st_mtime_ns)

    def words(self, canonical: str) -> tuple[str, ...]:
        """The canonical word and its variants, canonical first."""
        return (canonical, *self.groups.get(canonical, ()))

    def phrases(self) -> dict[str, str]:
        """Every word or phrase of every group -> its canonical word."""
        out = {}
        for canonical, variants in self.groups.items():
            for phrase in (canonical, *variants):
                out.setdefault(phrase, canonical)
        return out


@lru_cache(maxsize=8)
def _load_cached(path: str, _mtime: int) -> Synonyms:
    return Synonyms.parse(Path(path).read_text(encoding="utf-8"), source=path)
