"""Other things: what a text query is weighed against before it counts as asking for one of the catalog's categories.

A sentence is less like a single category word than a word is ("a smart shirt for an interview" against "shirt"), and
a query for something else can share a word with the catalog ("tennis balls" against "tennis shoes"), so no one cut on
the best category similarity separates them. Asking which is nearer, the catalog's categories or the nearest of a
thousand other things, does (docs/fashion-mnist.md has the figures).

The other things are ImageNet's 1,000 class names as torchvision ships them with its weights' metadata (offline, no
weights downloaded), or a file of phrases, one a line. Those that are themselves near a category word ("backpack",
"sandal", "trench coat") belong to the catalog and are left out.
"""

from __future__ import annotations

from pathlib import Path

IMAGENET = "imagenet"
# A thing at least this similar to one of the catalog's category words is one of the catalog's own. Chosen on the
# Fashion-MNIST dev half with the rule's thresholds (0.6, 0.65, 0.7, 0.75 and 0.8 tried: weak-flag F1 0.952, 0.953,
# 0.963, 0.951, 0.951).
NEAR = 0.7


class BackgroundError(ValueError):
    """The other things could not be read."""


def names(source: str) -> list[str]:
    """The other things' names: ``imagenet`` or a text file (one phrase a line, ``#`` comments); '' for none."""
    source = (source or "").strip()
    if not source:
        return []
    if source.lower() == IMAGENET:
        from torchvision.models import ResNet50_Weights

        return sorted(set(ResNet50_Weights.IMAGENET1K_V2.meta["categories"]))
    path = Path(source).expanduser()
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise BackgroundError(
            f"cannot read the match background {source!r} ({exc.strerror or exc}): give 'imagenet', a file with a "
            "phrase a line, or '' for none"
        ) from exc
    found = sorted({line.split("#", 1)[0].strip() for line in lines} - {""})
    if not found:
        raise BackgroundError(f"the match background {source} holds no phrases")
    return found
