"""A pretrained ImageNet tower (encode/image_towers.py) in a two-tower model's vision seat: the seed's recipe of two
pretrained towers fine-tuned on a catalog's own pictures and captions.

It answers what the two-tower model asks of a ViT: ``vision(pixel_values=...).last_hidden_state`` (here one token, the
tower's pooled features, which the model's [CLS] pooling takes) and ``config.hidden_size``. A locked tower stays in
evaluation mode (its batch-norm statistics are ImageNet's) and remembers the features of every picture it has seen,
so the epochs after the first run the projections alone.
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
        self._seen: dict[bytes, torch.Tensor] = {}

    @classmethod
    def named(cls, spec: str, device: str | torch.device = "cpu") -> TowerVision:
        name, side = parse(spec)
        return cls(load_tower(name, side, device))

    @property
    def locked(self) -> bool:
        return not any(p.requires_grad for p in self.tower.parameters())

    def train(self, mode: bool = True) -> TowerVision:
        super().train(mode)
        if self.locked:
            self.tower.eval()  # a locked tower keeps ImageNet's batch-norm statistics
        return self

    def forward(self, pixel_values: torch.Tensor) -> SimpleNamespace:
        pooled = self._remembered(pixel_values) if self.locked else self.tower(pixel_values)[0]
        return SimpleNamespace(last_hidden_state=pooled[:, None, :])

    def _remembered(self, pixels: torch.Tensor) -> torch.Tensor:
        """A locked tower's features, each picture's computed once (keyed by its pixels' hash)."""
        keys = [hashlib.blake2b(p.detach().cpu().numpy().tobytes(), digest_size=16).digest() for p in pixels]
        todo = [i for i, k in enumerate(keys) if k not in self._seen]
        if todo:
            with torch.no_grad():
                fresh = self.tower(pixels[todo])[0]
            self._seen.update({keys[i]: row.cpu() for i, row in zip(todo, fresh)})
        return torch.stack([self._seen[k] for k in keys]).to(pixels.device)
