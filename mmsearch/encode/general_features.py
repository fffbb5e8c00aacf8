"""A pretrained ImageNet tower's features of pictures, beside whatever model serves a catalog: what tells an upload
unlike the catalog from one like it (index/picture_sample.py) when the catalog's own model cannot.

A zero-shot model's rows already hold its own tower's features, so with it nothing more is computed; any other model
loads EfficientNet-Lite0 at 160 px (18.8 MB; one picture 2.8 ms in ONNX Runtime on 2 cores) once per process. Without
the tower's package the check is left out, said once in the log.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable

import numpy as np
import torch
from PIL import Image

from mmsearch.encode.image_towers import TOWERS
from mmsearch.encode.pretrained import PretrainedError

log = logging.getLogger("mmsearch.encode")
TOWER, SIDE = "efficientnet-lite0", 160
BATCH = 32


class GeneralFeatures:
    def __init__(self, encoder):
        self.encoder = encoder
        self._tower, self._lock = None, threading.Lock()
        own = getattr(encoder, "tower", None)
        # A zero-shot model's own tower (Lite2 at 260 px or Lite0 at 160): its rows and picture queries hold them
        self.shared = own is not None and own.name in TOWERS
        self._name = f"{own.name}@{own.size}" if self.shared else f"{TOWER}@{SIDE}"

    @property
    def name(self) -> str:
        """The tower and side the features come from (a picture sample records it: features of two towers do not
        compare)."""
        return self._name

    def tower(self):
        """The tower, loaded at its first use; None when its package is not installed."""
        if self.shared:
            return self.encoder.tower
        with self._lock:
            if self._tower is None:
                from mmsearch.encode.image_towers import load_tower
                from mmsearch.encode.tower_runtime import runtime_tower

                try:
                    self._tower = runtime_tower(load_tower(TOWER, SIDE).eval())
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
