"""``two-tower:<dir>``: a two-tower model saved by ``python -m mmsearch.train`` (encode/twotower.py), with the
bundled ones by name (``demo``, ``fashion-mnist``: resources.NAMED_MODELS)."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from mmsearch.encode import pretrained
from mmsearch.encode.encoders import EncoderError, rows
from mmsearch.encode.frozen import frozen_text_graph
from mmsearch.encode.query_language import QueryLanguage
from mmsearch.ingest.phrasing import normalize

PREFIX, FORM = "two-tower", "<model directory>"
log = logging.getLogger("mmsearch.encode")


@dataclass
class TwoTowerEncoder:
    model_id: str
    model: torch.nn.Module
    tokenizer: object
    device: torch.device
    preprocess: Callable[[Image.Image], torch.Tensor]
    path: Path | None = None  # the model directory, whose twotower.json records how it was trained
    # A loaded model's weights do not change while it serves, so on the CPU its text tower runs as one frozen
    # TorchScript graph: all-MiniLM-L6-v2 encodes one query in 7.2 ms instead of 9.6 (p50 of 300 on 2 cores), the
    # same vectors to 2e-7. Training's encoders leave it off: their weights move between calls.
    freeze_text: bool = False
    _text_graph: object = field(default=None, init=False, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)
    _languages: QueryLanguage | None = field(default=None, init=False, repr=False)

    @property
    def dim(self) -> int:
        return self.model.embed_dim

    def query_language(self, text: str) -> str | None:
        """The language the text tower takes ``text`` as, where it is a packaged pretrained one left as it was (a
        locked all-MiniLM-L6-v2: English); None for a text tower trained here, whose languages are its captions'."""
        source = getattr(self.model, "text_source", None) or {}
        packaged = pretrained.PACKAGED.get(source.get("id", ""))
        if packaged is None or not packaged.languages:
            return None
        if self._languages is None:
            self._languages = QueryLanguage(packaged.languages)
        return self._languages.guess(text)

    @torch.inference_mode()
    def encode_text(self, texts: list[str]) -> np.ndarray:
        # The same normalisation the trainer applied to its captions (idempotent when the searcher did it already).
        tok = self.tokenizer(
            [normalize(t) for t in texts],
            padding=True,
            truncation=True,
            max_length=self.model.max_length,
            return_tensors="pt",
        ).to(self.device)
        return rows(self._text_forward(tok["input_ids"], tok["attention_mask"]))

    def _text_forward(self, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        if self.freeze_text and self.device.type == "cpu":
            if self._text_graph is None:
                with self._lock:
                    if self._text_graph is None:
                        self._text_graph = frozen_text_graph(self.model, ids, mask)
            if self._text_graph is not False:
                return self._text_graph(ids, mask)
        return self.model.encode_text(ids, mask)

    @torch.inference_mode()
    def encode_pixels(self, pixels: torch.Tensor) -> np.ndarray:
        return rows(self.model.encode_image(pixels.to(self.device)))


def load_model(model_dir: Path, device: torch.device) -> TwoTowerEncoder:
    from mmsearch.encode import twotower

    model_dir = Path(model_dir)
    if not (model_dir / twotower.CONFIG_FILE).exists():
        raise EncoderError(
            f"no two-tower model in {model_dir}: expected {twotower.CONFIG_FILE}, "
            f"{twotower.WEIGHTS_FILE} and tokenizer files (train one with python -m mmsearch.train)"
        )
    try:
        model, tokenizer = twotower.load(model_dir, device)
    except (FileNotFoundError, ValueError) as exc:  # a referenced text tower missing or changed, weights that don't fit
        raise EncoderError(f"cannot load the model in {model_dir}: {exc}") from exc
    model_id = f"two-tower:{model_dir.name}@{twotower.fingerprint(model_dir)}"
    return TwoTowerEncoder(
        model_id,
        model,
        tokenizer,
        device,
        model.image_transform(),
        model_dir,
        freeze_text=True,
    )


def load(rest: str, device: torch.device) -> TwoTowerEncoder:
    return load_model(Path(rest).expanduser(), device)
