"""A pretrained ImageNet tower (encode/image_towers.py) in a two-tower model's vision seat: the seed's recipe of two
pretrained towers fine-tuned on a catalog's own pictures and captions.

It answers what the two-tower model asks of a ViT: ``vision(pixel_values=...).last_hidden_state`` (here one token, the
tower's pooled features, which the model's [CLS] pooling takes) and ``config.hidden_size``. A locked tower stays in
evaluation mode (its batch-norm statistics are ImageNet's) and remembers the features of every picture it has seen,
so the epochs after the first run the projections alone. A tower tuned in its last stages only (``tune_stages``) does
the same below them: while training, each picture's outputs of the locked stages are remembered, and the epochs after
the first run the tuned stages alone.
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass
from types import SimpleNamespace

import torch
from torch import nn

from mmsearch.encode.image_towers import TOWERS, ImageTower, load_tower, tower_and_side


@dataclass
class TowerConfig:
    name: str
    image_size: int
    hidden_size: int

    def to_dict(self) -> dict:
        return asdict(self)


def parse(spec: str) -> tuple[str, int | None]:
    """'efficientnet-lite0@160' -> ('efficientnet-lite0', 160); None when it names no packaged tower."""
    named = tower_and_side(spec)
    return named if named is not None and named[0] in TOWERS else None


def is_tower(spec: str | None) -> bool:
    return bool(spec) and parse(spec) is not None


class TowerVision(nn.Module):
    def __init__(self, tower: ImageTower):
        super().__init__()
        self.tower = tower
        self.config = TowerConfig(tower.name, tower.size, tower.width)
        self.cut = 0  # the stages below it are locked (tune_stages)
        self._seen: dict[tuple[str, bytes], torch.Tensor] = {}

    @classmethod
    def named(cls, spec: str, device: str | torch.device = "cpu") -> TowerVision:
        name, side = parse(spec)
        return cls(load_tower(name, side, device))

    @property
    def locked(self) -> bool:
        return not any(p.requires_grad for p in self.tower.parameters())

    def tune_stages(self, stages: int) -> None:
        """Only the last ``stages`` stages and the head convolution learn; the ones below keep ImageNet's weights and
        batch-norm statistics."""
        if not 0 < stages <= self.tower.stages:
            raise ValueError(
                f"{self.config.name} has {self.tower.stages} stages: tune 1 to {self.tower.stages} of them"
            )
        self.cut = self.tower.stages - stages
        for module in self.tower.lower(self.cut):
            module.requires_grad_(False)

    def lower_prefixes(self, prefix: str = "") -> tuple[str, ...]:
        """State-dict prefixes of what is locked below the cut: it keeps the package's weights, so a model saves it
        by reference, not as a copy."""
        names = {id(m): n for n, m in self.named_modules()}
        return tuple(f"{prefix}{names[id(m)]}." for m in self.tower.lower(self.cut)) if self.cut else ()

    def train(self, mode: bool = True) -> TowerVision:
        super().train(mode)
        if self.locked:
            self.tower.eval()  # a locked tower keeps ImageNet's batch-norm statistics
        elif self.cut:
            for module in self.tower.lower(self.cut):
                module.eval()
        return self

    def forward(self, pixel_values: torch.Tensor) -> SimpleNamespace:
        if self.locked:
            pooled = self._remembered("pooled", pixel_values, lambda x: self.tower(x)[0])
        elif self.cut and self.training:
            below = self._remembered("below", pixel_values, lambda x: self.tower.below(x, self.cut).half())
            # Stacked rows come back in the default layout; the depthwise convolutions run twice as fast channels-last.
            pooled = self.tower.pooled_above(below.float().contiguous(memory_format=torch.channels_last), self.cut)
        else:  # evaluating, a cut or not: the two halves are the whole tower
            pooled = self.tower(pixel_values)[0]
        return SimpleNamespace(last_hidden_state=pooled[:, None, :])

    def _remembered(self, what: str, pixels: torch.Tensor, compute) -> torch.Tensor:
        """What ``compute`` gives for each picture of the locked part, computed once (keyed by its pixels' hash).
        The stages below a cut are kept in half precision: 60,000 Fashion-MNIST photos and their mirror images at
        96 px below Lite0's 5th stage take 0.7 GB so."""
        # ``what`` apart: with --freeze-epochs a tower tuned in its last stages is wholly locked at first, and remembers
        # pooled features; the lower stages' outputs of the same pictures come after.
        keys = [(what, hashlib.blake2b(p.detach().cpu().numpy().tobytes(), digest_size=16).digest()) for p in pixels]
        todo = [i for i, k in enumerate(keys) if k not in self._seen]
        if todo:
            with torch.no_grad():
                fresh = compute(pixels[todo])
            self._seen.update({keys[i]: row.cpu() for i, row in zip(todo, fresh)})
        return torch.stack([self._seen[k] for k in keys]).to(pixels.device)
