import math

import numpy as np
import torch

from mmsearch.encode import twotower
from mmsearch.encode.encoders import load_encoder


def test_save_load_round_trip_gives_identical_embeddings(tiny_two_tower_dir, tmp_path):
    model, tok = twotower.load(tiny_two_tower_dir)
    again = twotower.save(model, tok, tmp_path / "copy")
    a, b = load_encoder(f"two-tower:{tiny_two_tower_dir}", "cpu"), load_encoder(f"two-tower:{again}", "cpu")
    np.testing.assert_array_equal(a.encode_text(["red mug"]), b.encode_text(["red mug"]))
    assert a.model_id.split("@")[1] == b.model_id.split("@")[1]
    with torch.no_grad():
        model.text_proj.weight.add_(0.1)
    twotower.save(model, tok, tmp_path / "copy")
    assert twotower.fingerprint(tmp_path / "copy") != twotower.fingerprint(tiny_two_tower_dir)
    assert not any(p.name.startswith(".") for p in tmp_path.iterdir())  # no temp or backup dirs left behind


def test_tokenizer_learns_word_pieces_and_never_turns_a_typed_word_into_unk():
    tok = twotower.build_tokenizer(["Red striped t-shirt", "blue mug"] * 3)
    assert tok.tokenize("red t-shirt") == ["red", "t", "-", "shirt"]
    for unseen in ("mugs", "stripy", "purple", "sneekers", "t-shirts2"):
        pieces = tok.tokenize(unseen)
        assert tok.unk_token not in pieces and "".join(p.removeprefix("##") for p in pieces) == unseen
    assert tok.tokenize("mugs")[0] == "mug"  # a plural keeps its word


def test_infonce_matches_a_hand_computed_case(tiny_two_tower_dir):
    model, _ = twotower.load(tiny_two_tower_dir)
    with torch.no_grad():
        model.logit_scale.fill_(0.0)  # scale 1: logits are plain cosines
    img = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    txt = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    expected = -math.log(math.e / (math.e + 1))  # each row: logits (1, 0), target the 1
    assert abs(model.contrastive_loss(img, txt).item() - expected) < 1e-6
    # Same group: both columns are positives, so the loss is the cross-entropy against (0.5, 0.5).
    same = model.contrastive_loss(img, txt, torch.tensor([3, 3])).item()
    p = math.e / (math.e + 1)
    assert abs(same - (-(0.5 * math.log(p) + 0.5 * math.log(1 - p)))) < 1e-6
