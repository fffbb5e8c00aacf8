"""Retrieval metrics on hand-made cases whose recalls can be worked out on paper."""

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from mmsearch.encode.encoders import load_encoder
from mmsearch.ingest.pairs import load_pairs
from mmsearch.train import validation

# 3 images, 5 captions: captions 0,1 -> image 0; 2,3 -> image 1; 4 -> image 2.
OWNER = np.array([0, 0, 1, 1, 2])
SIM = np.array(
    [
        [0.9, 0.1, 0.0],  # caption 0: own image first            -> rank 1
        [0.2, 0.8, 0.1],  # caption 1: image 1 beats its own        -> rank 2
        [0.3, 0.2, 0.1],  # caption 2: image 0 ahead of its own     -> rank 2
        [0.1, 0.7, 0.0],  # caption 3: own first                    -> rank 1
        [0.5, 0.4, 0.3],  # caption 4: both others ahead            -> rank 3
    ]
)


def test_text_to_image_ranks_and_recalls():
    ranks = validation.ranks_text_to_image(SIM, OWNER)
    assert ranks.tolist() == [1, 2, 2, 1, 3]
    m = validation.summarize(ranks, ks=(1, 2, 3))
    assert m == {"R@1": 0.4, "R@2": 0.8, "R@3": 1.0, "median_rank": 2.0, "queries": 5}


def test_image_to_text_counts_the_best_placed_caption():
    sim = SIM.copy()
    sim[0, 2] = 0.6  # image 2: its own caption c4 scores 0.3, c0 now 0.6 above it        -> rank 2
    sim[3, 1] = 0.1  # image 1: its own captions c2, c3 score 0.2 and 0.1 ...
    sim[1, 1] = 0.0  # ... and c4's 0.4 is above both                                       -> rank 2
    # image 0: its own caption c0 scores 0.9, the highest in its column                     -> rank 1
    ranks = validation.ranks_image_to_text(sim, OWNER)
    assert ranks.tolist() == [1, 2, 2]
    m = validation.retrieval_metrics(sim, OWNER)["image_to_text"]
    assert m["R@1"] == pytest.approx(1 / 3) and m["R@5"] == 1.0 and m["median_rank"] == 2.0


def test_ties_do_not_cost_a_hit():
    sim = np.array([[0.5, 0.5], [0.5, 0.5]])
    assert validation.ranks_text_to_image(sim, np.array([0, 1])).tolist() == [1, 1]


def test_an_image_without_captions_is_an_error():
    with pytest.raises(ValueError, match="image 2 has no caption"):
        validation.ranks_image_to_text(np.zeros((2, 3)), np.array([0, 1]))


def test_captions_file_with_several_rows_per_image(tmp_path, tiny_two_tower_dir):
    for i in range(3):
        Image.new("RGB", (32, 32), (i * 80, 0, 0)).save(tmp_path / f"{i}.png")
    pd.DataFrame(
        {
            "image": ["0.png", "0.png", "1.png", "2.png", "2.png"],
            "caption": ["a", "b", "c", "d", "e"],
            "split": ["test", "test", "test", "train", "train"],
        }
    ).to_csv(tmp_path / "caps.csv", index=False)
    pairs = load_pairs(str(tmp_path / "caps.csv"), where={"split": "test"})
    assert len(pairs.images) == 2 and pairs.captions == ["a", "b", "c"] and pairs.caption_image.tolist() == [0, 0, 1]
    report = validation.evaluate_pairs(load_encoder(f"two-tower:{tiny_two_tower_dir}", "cpu"), pairs, workers=0)
    assert report["images"] == 2 and report["text_to_image"]["queries"] == 3
    assert report["text_to_image"]["R@5"] == 1.0  # only two images: every caption's image is in the top 5


def test_hugging_face_pairs_with_caption_lists(tmp_path):
    import datasets

    ds = datasets.Dataset.from_dict(
        {
            "image": [Image.new("RGB", (8, 8))] * 3,
            "caption": [["x", "y"], ["z"], ["w", "v"]],
            "split": ["test", "val", "test"],
        }
    )
    ds.cast_column("image", datasets.Image()).save_to_disk(str(tmp_path / "ds"))
    pairs = load_pairs(f"hf:{tmp_path / 'ds'}", where={"split": "test"})
    assert pairs.captions == ["x", "y", "w", "v"] and pairs.caption_image.tolist() == [0, 0, 1, 1]


@pytest.mark.slow
def test_evaluate_command_writes_a_report(tmp_path, tiny_two_tower_dir, capsys):
    import json

    from mmsearch.evaluate import cli as evaluate

    for i in range(4):
        Image.new("RGB", (16, 16), (0, i * 60, 0)).save(tmp_path / f"{i}.png")
    pd.DataFrame({"image": [f"{i}.png" for i in range(4)], "caption": ["w", "x", "y", "z"]}).to_csv(
        tmp_path / "c.csv", index=False
    )
    code = evaluate.main(
        [
            "--model",
            f"two-tower:{tiny_two_tower_dir}",
            "--dataset",
            str(tmp_path / "c.csv"),
            "--report",
            str(tmp_path / "r.json"),
            "--device",
            "cpu",
            "--data-dir",
            str(tmp_path),
        ]
    )
    assert code == 0 and "text_to_image" in capsys.readouterr().out
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["text_to_image"]["queries"] == 4 and report["text_to_image"]["R@5"] == 1.0
    assert evaluate.main(["--model", f"two-tower:{tiny_two_tower_dir}", "--dataset", str(tmp_path / "x.csv")]) == 2
    from mlflow.tracking import MlflowClient

    from mmsearch.train.tracking import mlflow_uri

    client = MlflowClient(mlflow_uri(tmp_path))
    (run,) = client.search_runs([client.get_experiment_by_name("mmsearch-evaluate").experiment_id])
    assert run.data.metrics["text_to_image.R_at_5"] == 1.0 and run.data.params["dataset"] == str(tmp_path / "c.csv")
