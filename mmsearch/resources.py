"""Where mmsearch's own files are: the demo model, synonyms, presets, labelled query sets and the Feast repository.

In a source checkout they sit beside the package (``assets/``, ``feature_repo/``, ``benchmarks/``). A wheel carries
the files the app needs inside the package (``mmsearch/_assets``, ``mmsearch/_feature_repo``: pyproject.toml maps
them there), so ``pip install .`` serves the demo from any directory. One lookup serves both layouts.
"""

from __future__ import annotations

import os
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
SOURCE_ROOT = PACKAGE_DIR.parent  # the checkout, when the package is run from one


def _shipped(name: str) -> Path:
    inside = PACKAGE_DIR / f"_{name}"
    return inside if inside.is_dir() else SOURCE_ROOT / name


ASSETS_DIR = _shipped("assets")
FEATURE_REPO_DIR = _shipped("feature_repo")
BENCHMARKS_DIR = SOURCE_ROOT / "benchmarks"  # scripts that start app.py: a checkout's, never installed
DEMO_MODEL_DIR = ASSETS_DIR / "demo-model"
# Models shipped in assets/, by the name --model takes: `--model fashion-mnist` is two-tower:assets/fashion-mnist-model.
NAMED_MODELS = {"demo": DEMO_MODEL_DIR, "fashion-mnist": ASSETS_DIR / "fashion-mnist-model"}
# Pairs of pretrained towers by name: `--model zero-shot` (encode/models/zero_shot.py; the side chosen in
# docs/zero-shot.md).
NAMED_SPECS = {
    "zero-shot": "zero-shot:efficientnet-lite2@260+sentence-transformers/all-MiniLM-L6-v2",
    "zero-shot-multilingual": "zero-shot:efficientnet-lite2@260+use-multilingual-v3",
}
SYNONYMS_FILE = ASSETS_DIR / "synonyms.txt"
PRESETS_FILE = ASSETS_DIR / "presets.json"
IN_CHECKOUT = ASSETS_DIR == SOURCE_ROOT / "assets"


def cache_dir(what: str) -> Path:
    """Where things computed once from installed files are kept for the next process (``$XDG_CACHE_HOME/mmsearch``,
    else ``~/.cache/mmsearch``): each can be computed again, so losing it loses nothing."""
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "mmsearch" / what


def default_data_dir() -> Path:
    """``data/`` beside the code in a checkout (the README's commands, DVC and the tests use it); for an installed
    package, the user's data directory (``$XDG_DATA_HOME/mmsearch``, else ``~/.local/share/mmsearch``), since
    site-packages is no place for indexes."""
    if IN_CHECKOUT:
        return SOURCE_ROOT / "data"
    base = os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share"
    return Path(base) / "mmsearch"
