"""A pretrained ImageNet tower's features of pictures, beside whatever model serves a catalog: what tells an upload
unlike the catalog from one like it (index/picture_sample.py) when the catalog's own model cannot.

The zero-shot model's rows already hold these features, so with it nothing more is computed; any other model loads
EfficientNet-Lite0 at 160 px (18.8 MB, about 16 ms a picture on 2 cores) once per process. Without the tower's
package the check is left out, said once in the log.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable

import numpy as np
import torch
from PIL import Image

from mmsearch.encode.pretrained import PretrainedError

log = logging.getLogger("mmsearch.encode")
TOWER, SIDE = "efficientnet-lite0", 160
BATCH = 32


class GeneralFeatures:
    def __init__(self, encoder):
        self.encoder = encoder
        self._tower, self._lock = None, threading.Lock()
        own = getattr(encoder, "tower", None)
        self.shared = own is not None and own.name == TOWER and own.size == SIDE  # the zero-shot model's own tower

    @property
    def name(self) -> str:
        return f"{TOWER}@{SIDE}"

    def tower(self):
        """The tower, loaded at its first use; None when its package is not installed."""
        if self.shared:
            return self.encoder.tower
        with self._lock:
            if self._tower is None:
                from mmsearch.encode.image_towers import load_tower

                try:
                    self._tower = load_tower(TOWER, SIDE).eval()
                except PretrainedError as exc:
                    log.warning("uploads are judged by the model's own standing only: %s", exc)
                    self._tower = False
            return self._tower or None

    @property
    def available(self) -> bool:
        return self.tower() is not None

    @torch.inference_mode()
    def of(self, pictures: Iterable[Image.Image]) -> np.ndarray | None:
        """Unit rows of the tower's pooled features, one per picture (already decoded to RGB)."""
        tower = self.tower()
        if tower is None:
            return None
        pictures = list(pictures)
        rows = []
        for start in range(0, len(pictures), BATCH):
            pixels = torch.stack([tower.preprocess(p) for p in pictures[start : start + BATCH]])
            rows.append(torch.nn.functional.normalize(tower(pixels)[0].float(), dim=-1).numpy())
        return np.concatenate(rows) if rows else np.zeros((0, tower.width), np.float32)
