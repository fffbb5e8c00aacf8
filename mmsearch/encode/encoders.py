"""One interface for every model: texts and images in, L2-normalised float32 rows out.

Specs, in the spirit of open_clip's registry: ``demo``, ``two-tower:<dir>``, ``clip:<arch>/<pretrained tag>``,
``clip:<arch>//<checkpoint path>`` and ``clip:<arch>/random`` (random init, for tests and benchmarks only).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from typing import Protocol

import numpy as np
import torch
from PIL import Image

from mmsearch.ingest.images import load_image
from mmsearch.resources import NAMED_MODELS, NAMED_SPECS

log = logging.getLogger("mmsearch.encode")


class EncoderError(RuntimeError):
    """A model that cannot be loaded; the message says what to do instead."""


class Encoder(Protocol):
    model_id: str
    dim: int
    device: torch.device
    preprocess: Callable[[Image.Image], torch.Tensor]

    def encode_text(self, texts: list[str]) -> np.ndarray: ...

    def encode_pixels(self, pixels: torch.Tensor) -> np.ndarray: ...


def pick_device(device: str = "auto") -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise EncoderError(f"--device {device} asked for, but no CUDA device is available")
    return torch.device(device)


def rows(t: torch.Tensor) -> np.ndarray:
    t = torch.nn.functional.normalize(t.float(), dim=-1)
    return np.ascontiguousarray(t.cpu().numpy(), dtype=np.float32)


def image_transform(
    size: int, mean: list[float], std: list[float], grayscale: bool = False, whole_cut_outs: bool = False
) -> Callable[[Image.Image], torch.Tensor]:
    """Resize, centre crop and normalise; a model trained on greyscale photos sees colour ones turned grey, and with
    ``whole_cut_outs`` a cut-out is squared on white first so that the crop takes none of it (image_towers.py)."""
    from torchvision import transforms as T

    from mmsearch.encode.image_towers import SquareCutOut

    return T.Compose(
        [
            *([SquareCutOut(size)] if whole_cut_outs else []),
            *([T.Grayscale(num_output_channels=3)] if grayscale else []),
            T.Resize(size, interpolation=T.InterpolationMode.BICUBIC),
            T.CenterCrop(size),
            T.ToTensor(),
            T.Normalize(mean, std),
        ]
    )


def load_encoder(spec: str, device: str = "auto") -> Encoder:
    """The model a spec names: a bundled one by name (NAMED_MODELS), or ``PREFIX:rest`` for a module of
    encode/models/."""
    from mmsearch.plugins import discover

    dev = pick_device(device)
    spec = NAMED_SPECS.get(spec, spec)
    if spec in NAMED_MODELS:
        folder = NAMED_MODELS[spec]
        if not (folder / "twotower.json").exists():
            preset = "" if spec == "demo" else f" --preset {spec}"
            raise EncoderError(f"the {spec} model is missing from {folder}; run python -m mmsearch.train{preset}")
        spec = f"two-tower:{folder}"
    prefix, _, rest = spec.partition(":")
    kinds = discover("mmsearch.encode.models")
    for kind in kinds:
        if kind.PREFIX == prefix and rest:
            return kind.load(rest, dev)
    forms = ", ".join([*NAMED_MODELS, *NAMED_SPECS, *(f"{k.PREFIX}:{k.FORM}" for k in kinds)])
    raise EncoderError(f"unknown model spec {spec!r}: use {forms}")


# --- batch image encoding with DataLoader workers ------------------------------------------------------------------


def encode_images(encoder: Encoder, images: Iterable[Image.Image]) -> np.ndarray:
    pixels = torch.stack([encoder.preprocess(load_image(img)) for img in images])
    return encoder.encode_pixels(pixels)


def picture_query(encoder: Encoder, rows: np.ndarray) -> np.ndarray:
    """Index rows as a picture query. A model whose rows hold more than one space (zero-shot: the class bridge for
    words beside the tower's own features for pictures) says which part a picture asks with; others ask with the
    whole row."""
    own = getattr(encoder, "picture_query", None)
    return own(rows) if own is not None else rows


def input_size(encoder: Encoder) -> int:
    """The square input side the encoder's preprocessing produces."""
    return preprocessed_side(encoder.preprocess)


def preprocessed_side(preprocess) -> int:
    """The square side a preprocessing function's pixels come out at."""
    return int(preprocess(Image.new("RGB", (8, 8))).shape[-1])


def encode_pixel_tensor(encoder: Encoder, pixels: torch.Tensor, batch_size: int = 256) -> np.ndarray:
    return np.concatenate(
        [encoder.encode_pixels(pixels[i : i + batch_size]) for i in range(0, len(pixels), batch_size)]
    )
