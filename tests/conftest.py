"""Shared fixtures: tiny random-init encoders (no downloads) and a small demo catalog.

Random weights map distinct pictures to nearly the same vector, so tests that index with them switch near-duplicate
detection off (duplicate_threshold=0); tests of that feature use the trained demo model.
"""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
# Set before huggingface_hub is imported (it reads these once): tests never reach for the network, and a test of
# "weights cannot be had" fails fast instead of waiting on connection time-outs.
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

TINY_CLIP = {
    "embed_dim": 32,
    "vision_cfg": {"image_size": 32, "layers": 1, "width": 32, "patch_size": 16, "head_width": 16},
    "text_cfg": {"context_length": 16, "vocab_size": 49408, "width": 32, "heads": 2, "layers": 1},
}


@pytest.fixture(scope="session")
def tiny_clip_spec(tmp_path_factory) -> str:
    import open_clip

    path = tmp_path_factory.mktemp("clipcfg") / "mmsearch-tiny-clip.json"
    path.write_text(json.dumps(TINY_CLIP))
    open_clip.add_model_config(path)
    return "clip:mmsearch-tiny-clip/random"


def _tiny_two_tower(out: Path, seed: int) -> Path:
    import torch

    from mmsearch import twotower, train

    torch.manual_seed(seed)
    cfg = train.TrainConfig(image_size=32, patch_size=16, width=32, vision_layers=1, text_layers=1, heads=2,
                            embed_dim=16)
    tok = twotower.build_tokenizer(train.demo_vocabulary_texts())
    vision, text = train.tiny_configs(cfg, len(tok))
    model = twotower.from_configs(vision, text, cfg.embed_dim)
    return twotower.save(model, tok, out)


@pytest.fixture(scope="session")
def tiny_two_tower_dir(tmp_path_factory) -> Path:
    """A random-init two-tower saved as a model directory, loadable as two-tower:<dir>."""
    return _tiny_two_tower(tmp_path_factory.mktemp("models") / "tiny-tt", seed=0)


@pytest.fixture(scope="session")
def other_two_tower_dir(tmp_path_factory) -> Path:
    """A second, differently initialised model, for comparisons."""
    return _tiny_two_tower(tmp_path_factory.mktemp("models") / "tiny-tt-b", seed=1)


@pytest.fixture(scope="session")
def demo_manifest(tmp_path_factory) -> Path:
    from mmsearch import demo

    return demo.write_catalog(tmp_path_factory.mktemp("democat"), n=96)
