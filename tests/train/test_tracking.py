"""Both trackers behind one interface: MLflow (tests/train/test_loop.py reads its runs back) and Weights & Biases."""

import pytest

from mmsearch.train import loop as train
from mmsearch.train.tracking import open_tracker

pytestmark = [pytest.mark.slow]


def test_wandb_tracker_records_a_training_run_offline(tmp_path, monkeypatch):
    monkeypatch.setenv("WANDB_MODE", "offline")  # no account or network: the run is kept on disk for `wandb sync`
    monkeypatch.setenv("WANDB_SILENT", "true")
    meta = train.train(
        train.TrainSettings(
            out=tmp_path / "m",
            renders=128,
            batch_size=32,
            image_size=32,
            patch_size=8,
            width=32,
            vision_layers=1,
            text_layers=1,
            heads=2,
            embed_dim=16,
            warmup_steps=1,
            eval_per_combo=1,
            workers=1,
            epochs=2,
            log_every=2,
            checkpoint_every=0,
            tracker="wandb",
            data_dir=tmp_path / "data",
        )
    )
    runs = list((tmp_path / "data" / "wandb").glob(f"offline-run-*-{meta['run_id']}/run-{meta['run_id']}.wandb"))
    assert len(runs) == 1
    # The run file holds protobuf records; their keys are plain strings in it.
    records = runs[0].read_bytes()
    for key in (b"loss", b"temperature", b"val_R@10", b"heldout_attribute_precision_at_10", b"embed_dim"):
        assert key in records, key
    assert b"model.safetensors" in records  # the model directory went in as an artifact


def test_unknown_tracker_is_a_clear_error(tmp_path):
    with pytest.raises(ValueError, match="unknown tracker 'tensorboard'"):
        open_tracker("tensorboard", tmp_path, "x")
