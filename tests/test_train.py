import json

from mmsearch import train
from mmsearch.encoders import load_encoder


def test_tiny_training_lowers_the_loss_and_saves_a_loadable_model(tmp_path):
    cfg = train.TrainConfig(out=tmp_path / "m", renders=640, epochs=3, batch_size=64, image_size=32, patch_size=8,
                            width=48, vision_layers=1, text_layers=1, heads=2, embed_dim=32, warmup_steps=5,
                            eval_per_combo=1, workers=1)
    meta = train.train_demo(cfg)
    assert meta["final_loss"] < meta["first_loss"] - 0.3
    saved = json.loads((tmp_path / "m" / "twotower.json").read_text())["training"]
    assert saved["heldout_attribute_precision_at_10"] == meta["heldout_attribute_precision_at_10"]
    enc = load_encoder(f"two-tower:{tmp_path / 'm'}", "cpu")
    assert enc.encode_text(["red mug"]).shape == (1, 32)
