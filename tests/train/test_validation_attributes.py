"""The attribute-precision metric, proved on encoders whose answers are known in advance."""

from dataclasses import dataclass

import numpy as np
import pytest
import torch
from PIL import Image

from mmsearch.ingest import demo
from mmsearch.train import validation


@dataclass
class OracleEncoder:
    """Embeds the truth: images by their (kind, colour, pattern), texts by the query words. Optionally blind to
    colour, so the expected precision is known exactly."""

    see_colour: bool = True
    model_id: str = "oracle"
    dim: int = len(demo.KINDS) + len(demo.COLOURS) + len(demo.PATTERNS)

    def preprocess(self, img: Image.Image) -> torch.Tensor:
        return torch.from_numpy(np.asarray(img.resize((8, 8)))).permute(2, 0, 1).float()

    def _vec(self, kind, colour, pattern):
        v = np.zeros(self.dim, np.float32)
        v[demo.KINDS.index(kind)] = 1
        if self.see_colour:
            v[len(demo.KINDS) + list(demo.COLOURS).index(colour)] = 1
        v[len(demo.KINDS) + len(demo.COLOURS) + demo.PATTERNS.index(pattern)] = 1
        return v / np.linalg.norm(v)

    def encode_text(self, texts):
        out = []
        for t in texts:
            kind = next(k for k in demo.KINDS if t.endswith(k))
            colour = t.split()[0]
            pattern = next((p for p in demo.PATTERNS if f" {p} " in f" {t} "), "solid")
            out.append(self._vec(kind, colour, pattern))
        return np.stack(out)


def _truth_pixels(items):
    return torch.arange(len(items))[:, None]  # row numbers: the oracle looks the item up instead of the pixels


def _oracle_pixels(encoder, items):
    def encode_pixels(pixels):
        return np.stack(
            [encoder._vec(items[int(i)].kind, items[int(i)].colour, items[int(i)].pattern) for i in pixels[:, 0]]
        )

    encoder.encode_pixels = encode_pixels
    return _truth_pixels(items)


def test_a_perfect_encoder_scores_one():
    enc = OracleEncoder()
    items = demo.make_items(10 * len(demo.combos()), demo.HELDOUT_SEED, prefix="heldout")
    result = validation.attribute_precision(enc, per_combo=10, pixels=_oracle_pixels(enc, items))
    assert result["precision_at_k"] == 1.0 and result["per_attribute"]["colour"] == 1.0


def test_a_colour_blind_encoder_scores_what_chance_gives():
    enc = OracleEncoder(see_colour=False)
    items = demo.make_items(10 * len(demo.combos()), demo.HELDOUT_SEED, prefix="heldout")
    result = validation.attribute_precision(enc, per_combo=10, pixels=_oracle_pixels(enc, items))
    # Kind and pattern are always right; among the 100 equally good renders of that kind and pattern, the top 10 are
    # drawn without regard to colour, so on average one in ten colours matches.
    assert result["per_attribute"]["kind"] == 1.0 and result["per_attribute"]["pattern"] == 1.0
    assert 0.03 < result["precision_at_k"] < 0.2


@pytest.mark.slow
def test_the_bundled_demo_model_meets_its_quality_bar():
    """The offline default must work: >= 90% of top-10 results match kind, colour and pattern on unseen renders."""
    from mmsearch.encode.encoders import load_encoder

    result = validation.attribute_precision(load_encoder("demo", "cpu"), per_combo=10)
    assert result["precision_at_k"] >= 0.90, result
