"""``clip:<arch>/<pretrained tag>``, ``clip:<arch>//<checkpoint path>`` or ``clip:<arch>/random`` (untrained, for tests
and benchmarks): any open_clip model."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from mmsearch.encode.encoders import EncoderError, rows

PREFIX, FORM = "clip", "<arch>/<pretrained tag or //checkpoint>"


@dataclass
class ClipEncoder:
    model_id: str
    model: torch.nn.Module
    tokenizer: Callable
    device: torch.device
    preprocess: Callable[[Image.Image], torch.Tensor]
    dim: int

    @torch.inference_mode()
    def encode_text(self, texts: list[str]) -> np.ndarray:
        return rows(self.model.encode_text(self.tokenizer(list(texts)).to(self.device)))

    @torch.inference_mode()
    def encode_pixels(self, pixels: torch.Tensor) -> np.ndarray:
        return rows(self.model.encode_image(pixels.to(self.device)))


def load_model(arch: str, pretrained: str, device: torch.device) -> ClipEncoder:
    import open_clip

    if arch not in open_clip.list_models():
        raise EncoderError(
            f"unknown open_clip model {arch!r}; known ones include ViT-B-32, ViT-L-14 (see open_clip.list_models())"
        )
    if not pretrained:
        raise EncoderError(
            f"clip:{arch}/ names no weights: add a pretrained tag "
            f"({', '.join(open_clip.list_pretrained_tags_by_model(arch)[:4]) or 'none known'}), "
            "a checkpoint path after '//', or 'random' for an untrained model"
        )
    weights = None if pretrained == "random" else pretrained
    try:
        model, _, preprocess = open_clip.create_model_and_transforms(arch, pretrained=weights, device=device)
    except Exception as exc:  # hub errors come in many types; all mean the same to a user
        raise EncoderError(
            f"could not load weights {pretrained!r} for {arch}: {type(exc).__name__}: {exc}. "
            "Without network, pass a local checkpoint (clip:ARCH//path/to/weights.pt) "
            "or use the bundled demo model (--model demo)."
        ) from exc
    model.eval()
    dim = int(model.text_projection.shape[1]) if getattr(model, "text_projection", None) is not None else None
    if dim is None:
        dim = int(model.encode_text(open_clip.get_tokenizer(arch)(["x"]).to(device)).shape[-1])
    model_id = f"clip:{arch}/{pretrained if weights is None or not Path(weights).exists() else _file_id(weights)}"
    return ClipEncoder(model_id, model, open_clip.get_tokenizer(arch), device, preprocess, dim)


def _file_id(path: str) -> str:
    # The first 16 MiB identify a checkpoint well enough and keep start-up fast for multi-GB files.
    with open(path, "rb") as fh:
        digest = hashlib.sha256(fh.read(1 << 24)).hexdigest()[:12]
    return f"{Path(path).name}@{digest}"


def load(rest: str, device: torch.device) -> ClipEncoder:
    arch, _, pretrained = rest.partition("/")
    return load_model(arch, pretrained, device)
