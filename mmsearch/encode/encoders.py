"""One interface for every model: texts and images in, L2-normalised float32 rows out.

Specs, in the spirit of open_clip's registry: ``demo``, ``two-tower:<dir>``, ``clip:<arch>/<pretrained tag>``,
``clip:<arch>//<checkpoint path>`` and ``clip:<arch>/random`` (random init, for tests and benchmarks only).
"""

from __future__ import annotations

import hashlib
import logging
import threading
import warnings
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import numpy as np
import torch
from PIL import Image
from torch.utils.data import DataLoader, Dataset
from tqdm.auto import tqdm

from mmsearch.ingest.images import ImageError, load_image
from mmsearch.ingest.phrasing import normalize
from mmsearch.resources import NAMED_MODELS

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


class _TextTower(torch.nn.Module):
    def __init__(self, model: torch.nn.Module):
        super().__init__()
        self.model = model

    def forward(self, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return self.model.encode_text(ids, mask)


def _frozen_text_graph(model: torch.nn.Module, ids: torch.Tensor, mask: torch.Tensor):
    """The text tower traced on one batch and frozen; False (run it as it is) where tracing fails. torch marks
    TorchScript deprecated: when it goes, this falls back and queries take the eager path's 2.6 ms more."""
    hf_log = logging.getLogger("transformers")
    level = hf_log.level
    try:
        # Quiet: TorchScript's deprecation notice, the tracer's remarks on HF's code, and HF's note on a loss
        # attribute the tracer reads (no loss is computed here).
        hf_log.setLevel(logging.ERROR)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            graph = torch.jit.freeze(torch.jit.trace(_TextTower(model).eval(), (ids, mask), check_trace=False))
            for _ in range(2):  # TorchScript profiles the first runs and optimises after them (36 ms for MiniLM)
                graph(ids, mask)
            return graph
    except Exception as exc:  # any failure of an optional speed-up leaves the eager path, which is correct
        log.warning("text tower not frozen (%s); it runs eagerly", exc)
        return False
    finally:
        hf_log.setLevel(level)


def pick_device(device: str = "auto") -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise EncoderError(f"--device {device} asked for, but no CUDA device is available")
    return torch.device(device)


def _rows(t: torch.Tensor) -> np.ndarray:
    t = torch.nn.functional.normalize(t.float(), dim=-1)
    return np.ascontiguousarray(t.cpu().numpy(), dtype=np.float32)


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

    @property
    def dim(self) -> int:
        return self.model.embed_dim

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
        return _rows(self._text_forward(tok["input_ids"], tok["attention_mask"]))

    def _text_forward(self, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        if self.freeze_text and self.device.type == "cpu":
            if self._text_graph is None:
                with self._lock:
                    if self._text_graph is None:
                        self._text_graph = _frozen_text_graph(self.model, ids, mask)
            if self._text_graph is not False:
                return self._text_graph(ids, mask)
        return self.model.encode_text(ids, mask)

    @torch.inference_mode()
    def encode_pixels(self, pixels: torch.Tensor) -> np.ndarray:
        return _rows(self.model.encode_image(pixels.to(self.device)))


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
        return _rows(self.model.encode_text(self.tokenizer(list(texts)).to(self.device)))

    @torch.inference_mode()
    def encode_pixels(self, pixels: torch.Tensor) -> np.ndarray:
        return _rows(self.model.encode_image(pixels.to(self.device)))


def image_transform(
    size: int, mean: list[float], std: list[float], grayscale: bool = False
) -> Callable[[Image.Image], torch.Tensor]:
    """Resize, centre crop and normalise; a model trained on greyscale photos sees colour ones turned grey."""
    from torchvision import transforms as T

    return T.Compose(
        [
            *([T.Grayscale(num_output_channels=3)] if grayscale else []),
            T.Resize(size, interpolation=T.InterpolationMode.BICUBIC),
            T.CenterCrop(size),
            T.ToTensor(),
            T.Normalize(mean, std),
        ]
    )


def load_two_tower(model_dir: Path, device: torch.device) -> TwoTowerEncoder:
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
        image_transform(model.image_size, model.image_mean, model.image_std, model.grayscale),
        model_dir,
        freeze_text=True,
    )


def load_clip(arch: str, pretrained: str, device: torch.device) -> ClipEncoder:
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


def load_encoder(spec: str, device: str = "auto") -> Encoder:
    dev = pick_device(device)
    if spec in NAMED_MODELS:
        folder = NAMED_MODELS[spec]
        if not (folder / "twotower.json").exists():
            preset = "" if spec == "demo" else f" --preset {spec}"
            raise EncoderError(f"the {spec} model is missing from {folder}; run python -m mmsearch.train{preset}")
        return load_two_tower(folder, dev)
    kind, _, rest = spec.partition(":")
    if kind == "two-tower" and rest:
        return load_two_tower(Path(rest).expanduser(), dev)
    if kind == "clip" and rest:
        arch, _, pretrained = rest.partition("/")
        return load_clip(arch, pretrained, dev)
    raise EncoderError(
        f"unknown model spec {spec!r}: use {', '.join(NAMED_MODELS)}, two-tower:<dir> or clip:<arch>/<pretrained>"
    )


# --- batch image encoding with DataLoader workers ------------------------------------------------------------------


class _ImageFiles(Dataset):
    def __init__(self, paths: list[str], preprocess, max_pixels: int):
        self.paths, self.preprocess, self.max_pixels = paths, preprocess, max_pixels

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, i: int):
        try:
            return i, self.preprocess(load_image(self.paths[i], self.max_pixels)), None
        except ImageError as exc:
            return i, None, str(exc)


def _collate(batch):
    ok = [(i, x) for i, x, _ in batch if x is not None]
    bad = [(i, err) for i, x, err in batch if x is None]
    idx = [i for i, _ in ok]
    pixels = torch.stack([x for _, x in ok]) if ok else None
    return idx, pixels, bad


def encode_image_files(
    encoder: Encoder,
    paths: list[str],
    batch_size: int = 64,
    workers: int = 2,
    max_pixels: int = 40_000_000,
    progress: Callable[[int, int], None] | None = None,
) -> tuple[np.ndarray, dict[int, str]]:
    """Encodes image files; images are decoded and resized in worker processes while the model runs.

    Returns one row per path (zeros for failures) and {position: reason} for the images that could not be decoded.
    """
    out = np.zeros((len(paths), encoder.dim), dtype=np.float32)
    failed: dict[int, str] = {}
    loader = DataLoader(
        _ImageFiles(paths, encoder.preprocess, max_pixels),
        batch_size=batch_size,
        num_workers=workers,
        collate_fn=_collate,
        persistent_workers=False,
    )
    done = 0
    with tqdm(total=len(paths), desc="encoding images", unit="img") as bar:
        for idx, pixels, bad in loader:
            failed.update(dict(bad))
            if pixels is not None:
                out[idx] = encoder.encode_pixels(pixels)
            done += len(idx) + len(bad)
            bar.update(len(idx) + len(bad))
            if progress is not None:
                progress(done, len(paths))
    return out, failed


def encode_images(encoder: Encoder, images: Iterable[Image.Image]) -> np.ndarray:
    pixels = torch.stack([encoder.preprocess(load_image(img)) for img in images])
    return encoder.encode_pixels(pixels)


def input_size(encoder: Encoder) -> int:
    """The square input side the encoder's preprocessing produces."""
    return int(encoder.preprocess(Image.new("RGB", (8, 8))).shape[-1])


def encode_pixel_tensor(encoder: Encoder, pixels: torch.Tensor, batch_size: int = 256) -> np.ndarray:
    return np.concatenate(
        [encoder.encode_pixels(pixels[i : i + batch_size]) for i in range(0, len(pixels), batch_size)]
    )
