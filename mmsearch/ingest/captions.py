"""Captions for a classification catalog, from data: templates ("a photo of a {}") and each category's words (its
name and its synonym group, mmsearch/ingest/phrasing.py).

Training draws one template and one word per picture; zero-shot classification embeds every template with every word
of a category and averages them (a prompt ensemble, as the CLIP paper measures zero-shot accuracy).
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path

from mmsearch.ingest.phrasing import Synonyms, normalize


class TemplatesError(ValueError):
    """A templates file that cannot be used: missing, empty, or a line without ``{}``."""


def load_templates(path: str | Path) -> tuple[str, ...]:
    path = Path(path)
    if not path.is_file():
        raise TemplatesError(f"templates file not found: {path}")
    lines = [line.strip() for line in path.read_text().splitlines()]
    templates = tuple(line for line in lines if line and not line.startswith("#"))
    bad = [t for t in templates if t.count("{}") != 1]
    if bad or not templates:
        raise TemplatesError(f"{path}: every template needs exactly one '{{}}' (got {bad[:3] or 'none'})")
    return templates


@dataclass(frozen=True)
class CategoryCaptions:
    templates: tuple[str, ...]
    synonyms: Synonyms

    def words(self, category: str) -> tuple[str, ...]:
        """The category's name ("t-shirt/top" reads as "t-shirt top") and its synonym group's words."""
        return self.synonyms.words(normalize(category))

    def caption(self, category: str, rng: random.Random) -> str:
        return rng.choice(self.templates).format(rng.choice(self.words(category)))

    def prompts(self, category: str) -> list[str]:
        return [t.format(w) for t in self.templates for w in self.words(category)]
