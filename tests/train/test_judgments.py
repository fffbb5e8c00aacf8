"""Tuning on judgments: the pairs come from the train half only, and the tuned model moves toward what raters
judged relevant."""

import json

import torch

from mmsearch.feedback.judgments import half_of
from mmsearch.train.judgments import JudgedPairs, loss


def tune_args(model_dir, catalog, data, out) -> list[str]:
    """``python -m mmsearch.train --judgments`` on a tiny model and the small demo catalog, untracked."""
    return [
        "--judgments",
        "--judged-model",
        f"two-tower:{model_dir}",
        "--judged-catalog",
        str(catalog),
        "--data-dir",
        str(data),
        "--out",
        str(out),
        "--tracker",
        "none",
    ]


def test_pairs_come_from_the_train_half_with_grade_0_items_as_hard_negatives():
    queries = [f"query {n}" for n in range(40)]
    qrels = {q: {"a": 3, "b": 2, "c": 1, "d": 0, "gone": 3} for q in queries}
    pairs = JudgedPairs.of(qrels, known={"a", "b", "c", "d"})
    assert pairs.queries and all(half_of(q) == "train" for q in pairs.queries)
    assert len(pairs.queries) < len(queries)  # the test half is never seen
    assert {item for _, item in pairs.rows} == {"a", "b"}  # grade 1 is neither; an item not in the index is left out
    assert all(neg == ["d"] for neg in pairs.negatives.values())


def test_the_loss_prefers_the_positive_over_the_hard_negative_and_counts_shared_positives_as_positives():
    class Scale(torch.nn.Module):
        logit_scale = torch.nn.Parameter(torch.tensor(2.0))

    text = torch.nn.functional.normalize(torch.tensor([[1.0, 0.0], [0.0, 1.0]]), dim=1)
    hard = torch.tensor([[0.9, 0.1]])
    relevant = torch.tensor([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
    right = loss(Scale(), text, torch.cat([text, hard]), relevant, 2)
    swapped = loss(Scale(), text, torch.cat([text.flip(0), hard]), relevant, 2)
    assert right < swapped
    close = torch.nn.functional.normalize(text[:1] * 0.99 + 0.01, dim=1)
    assert loss(Scale(), text, torch.cat([text, close]), relevant, 2) > right  # a negative near the query is harder
    nan = float("nan")
    shared = torch.tensor([[1.0, 1.0, 0.0], [nan, 1.0, nan]])  # y is relevant to both; b's raters never saw x, z
    pairs = JudgedPairs(["a", "b"], [(0, "x"), (1, "y")], {0: ["z"], 1: []}, {0: {"x": 3, "y": 2, "z": 0}, 1: {"y": 3}})
    assert torch.equal(pairs.relevance([0, 1], ["x", "y", "z"]).nan_to_num(-1), shared.nan_to_num(-1))
    unjudged = torch.tensor([[1.0, nan, nan], [nan, 1.0, nan]])  # an unjudged image is no one's negative
    assert loss(Scale(), text, torch.cat([text.flip(0), hard]), unjudged, 2) < swapped


def test_train_judgments_tunes_the_served_model_and_keeps_the_test_half_out(
    tmp_path, monkeypatch, demo_manifest, tiny_two_tower_dir, capsys
):
    from mmsearch.cli import main as cli
    from mmsearch.encode import twotower
    from mmsearch.train.loop import main as train_main

    monkeypatch.setenv("MMSEARCH_DUPLICATE_THRESHOLD", "0")  # a random-init model sees every picture alike
    import pandas as pd

    items = pd.read_csv(demo_manifest)["item_id"].tolist()
    rows = ["query,item_id,grade,rater"]
    for n in range(30):
        rows += [f"red thing {n},{items[n]},3,ann", f"red thing {n},{items[n + 1]},0,ann"]
    (tmp_path / "j.csv").write_text("\n".join(rows) + "\n")
    data = tmp_path / "data"
    assert cli(["judgments", "import", str(tmp_path / "j.csv"), "--data-dir", str(data)]) == 0
    out = tmp_path / "tuned"
    code = train_main(
        tune_args(tiny_two_tower_dir, demo_manifest, data, out) + ["--tune-epochs", "2", "--tune-lr", "1e-3"]
    )
    assert code == 0, capsys.readouterr().err
    printed = capsys.readouterr().out
    assert "--judged-half test" in printed
    model, _ = twotower.load(out)
    before, _ = twotower.load(tiny_two_tower_dir)
    changed = any(not torch.equal(a, b) for a, b in zip(model.state_dict().values(), before.state_dict().values()))
    meta = json.loads((out / twotower.CONFIG_FILE).read_text())
    by_epoch = meta["training"]["check_ndcg_at_10_by_epoch"]
    assert len(by_epoch) == 3  # the starting model, then each of the 2 epochs
    kept = meta["training"]["kept_epoch"]
    assert changed == (kept > 0)  # the saved weights are the kept epoch's: epoch 0 is the model as it was
    if by_epoch[0] is not None:
        assert by_epoch[kept] == max(by_epoch)
    assert 0 < meta["training"]["judged_queries"] < 30  # the train half only
    assert meta["training"]["recipe"] == "judgments" and meta["training"]["hard_negatives"] > 0


def test_train_judgments_without_judgments_says_what_to_do(
    tmp_path, demo_manifest, tiny_two_tower_dir, capsys, monkeypatch
):
    from mmsearch.train.loop import main as train_main

    monkeypatch.setenv("MMSEARCH_DUPLICATE_THRESHOLD", "0")
    code = train_main(tune_args(tiny_two_tower_dir, demo_manifest, tmp_path, tmp_path / "m"))
    assert code == 2 and "no judged pairs" in capsys.readouterr().err
