"""``zero-shot:<image tower>[@<side>]+<text tower>``: a pretrained ImageNet image tower and a pretrained text tower,
joined through ImageNet's classes (encode/class_bridge.py) with no training; ``zero-shot`` by name is the default
pair (resources.ZERO_SHOT).

An item's row holds two blocks, each a unit vector scaled by 1/sqrt(2): the class bridge's vector (in the text
tower's space) and the image tower's own pooled features. A text query fills the first block only, so words rank by
the bridge; a picture query (an upload, more-like-this) fills the second only, so pictures rank by the tower's own
features, which know far more than 1,000 class names; words and a picture together fill both, weighted by
``image_weight``.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field

import numpy as np
import torch

from mmsearch.encode.class_bridge import ZERO_SHOT_DIR, ClassBridge
from mmsearch.encode.encoders import EncoderError
from mmsearch.encode.image_towers import READING, ImageTower, load_tower, tower_and_side
from mmsearch.encode.pretrained import PretrainedError
from mmsearch.encode.query_language import QueryLanguage
from mmsearch.encode.text_towers import load_text
from mmsearch.encode.tower_runtime import RuntimeTower, runtime_tower

PREFIX, FORM = "zero-shot", "<image tower>[@<side>]+<text tower>"
HALF = 1 / math.sqrt(2)
EXAMPLE = "efficientnet-lite0+sentence-transformers/all-MiniLM-L6-v2"
MATCH_FILE = ZERO_SHOT_DIR / "match.json"  # each text tower's similarity that makes an answer good


def own_similarity(text_tower: str) -> float | None:
    """The similarity at which this text tower's best result matches its words, on any catalog (search/match.py);
    None for a tower not calibrated."""
    return json.loads(MATCH_FILE.read_text())["similarity"].get(text_tower)


@dataclass
class ZeroShotEncoder:
    model_id: str
    tower: ImageTower | RuntimeTower
    text: object  # text_towers.TransformersText or UseText
    bridge: ClassBridge
    device: torch.device
    preprocess: object = field(init=False)
    languages: QueryLanguage = field(init=False)
    match_similarity: float | None = field(init=False)  # the best result's similarity that makes words match

    def __post_init__(self):
        self.preprocess = self.tower.preprocess
        self.languages = QueryLanguage(self.text.languages)
        self.match_similarity = own_similarity(self.text.name)

    def query_language(self, text: str) -> str | None:
        """The language the text tower takes ``text`` as (ISO 639-1), or None when it cannot tell."""
        return self.languages.guess(text)

    @property
    def text_dim(self) -> int:
        return int(self.bridge.vectors.shape[1])

    @property
    def dim(self) -> int:
        return self.text_dim + self.tower.width

    def encode_text(self, texts: list[str]) -> np.ndarray:
        words = self.text.encode(list(texts))
        return np.ascontiguousarray(np.hstack([words, np.zeros((len(words), self.tower.width), np.float32)]))

    @torch.inference_mode()
    def features(self, pixels: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
        """The tower's pooled features (unit rows) and ImageNet probabilities for a batch."""
        pooled, probabilities = self.tower(pixels.to(self.device))
        pooled = torch.nn.functional.normalize(pooled.float(), dim=-1)
        return pooled.cpu().numpy(), probabilities.float().cpu().numpy()

    def encode_pixels(self, pixels: torch.Tensor) -> np.ndarray:
        pooled, probabilities = self.features(pixels)
        return np.ascontiguousarray(np.hstack([self.bridge(probabilities), pooled]) * HALF, dtype=np.float32)

    def score_scale(self, query: np.ndarray) -> float:
        """What a unit query is multiplied by so that its score with a row is the mean of its two blocks' cosines,
        weighted by its share in each: words alone score their cosine with the bridge, a picture alone its cosine
        with the tower's features (not 1/sqrt(2) of them)."""
        words, picture = np.linalg.norm(query[: self.text_dim]), np.linalg.norm(query[self.text_dim :])
        return float(math.sqrt(2) / max(words + picture, 1e-12))

    def picture_query(self, rows: np.ndarray) -> np.ndarray:
        """Items' rows as picture queries: the pooled features alone."""
        out = np.array(rows, dtype=np.float32, copy=True, ndmin=2)
        out[:, : self.text_dim] = 0
        out /= np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)
        return out if np.ndim(rows) == 2 else out[0]


def parse(rest: str) -> tuple[str, int | None, str]:
    """'efficientnet-lite0@192+sentence-transformers/all-MiniLM-L6-v2' -> (tower, side, text tower)."""
    image, plus, text = rest.partition("+")
    named = tower_and_side(image)
    if not plus or named is None or not text:
        raise EncoderError(f"zero-shot:{rest!r}: use zero-shot:{FORM}, e.g. zero-shot:{EXAMPLE}")
    return *named, text


def load(rest: str, device: torch.device) -> ZeroShotEncoder:
    tower_name, side, text_name = parse(rest)
    try:
        tower = runtime_tower(load_tower(tower_name, side, device), device)
        text = load_text(text_name)
        bridge = ClassBridge(text)
    except PretrainedError as exc:
        raise EncoderError(str(exc)) from exc
    model_id = f"zero-shot:{tower_name}@{tower.size}+{text_name}@{text.sha256[:8]}/{bridge.key[:8]}/{READING}"
    return ZeroShotEncoder(model_id, tower, text, bridge, device)
