import numpy as np
import pytest
from PIL import Image

from mmsearch.encode.encoders import EncoderError, encode_images, load_encoder
from mmsearch.encode.files import encode_image_files


@pytest.fixture(params=["clip", "two-tower"])
def encoder(request, tiny_clip_spec, tiny_two_tower_dir):
    spec = tiny_clip_spec if request.param == "clip" else f"two-tower:{tiny_two_tower_dir}"
    return load_encoder(spec, "cpu")


def test_outputs_are_normalised_float32_of_the_stated_dimension(encoder):
    text = encoder.encode_text(["red striped t-shirt", "blue mug", "x"])
    image = encode_images(encoder, [Image.new("RGB", (50, 70), (200, 0, 0)), Image.new("L", (20, 20))])
    for out, rows in ((text, 3), (image, 2)):
        assert out.dtype == np.float32 and out.shape == (rows, encoder.dim)
        np.testing.assert_allclose(np.linalg.norm(out, axis=1), 1.0, rtol=1e-5)
    assert not np.allclose(text[0], text[1])


def test_model_id_is_stable_across_loads(encoder, tiny_clip_spec, tiny_two_tower_dir):
    spec = tiny_clip_spec if encoder.model_id.startswith("clip") else f"two-tower:{tiny_two_tower_dir}"
    assert load_encoder(spec, "cpu").model_id == encoder.model_id


def test_image_files_encode_in_workers_and_bad_files_are_reported(encoder, tmp_path):
    paths = []
    for i in range(5):
        Image.new("RGB", (40, 40), (i * 50, 0, 0)).save(tmp_path / f"{i}.png")
        paths.append(str(tmp_path / f"{i}.png"))
    (tmp_path / "bad.png").write_bytes(b"\x89PNG garbage")
    paths.insert(2, str(tmp_path / "bad.png"))
    vectors, failed = encode_image_files(encoder, paths, batch_size=2, workers=2)
    assert list(failed) == [2] and "not a readable image" in failed[2]
    assert vectors.shape == (6, encoder.dim) and not vectors[2].any()
    direct = encode_images(encoder, [Image.open(paths[0])])
    np.testing.assert_allclose(vectors[0], direct[0], atol=1e-5)


@pytest.mark.parametrize(
    "spec,message",
    [
        ("bogus", "unknown model spec"),
        ("clip:NoSuchNet/openai", "unknown open_clip model"),
        ("clip:ViT-B-32/", "names no weights"),
        ("two-tower:/nonexistent/model", "no two-tower model"),
    ],
)
def test_bad_specs_say_what_to_do(spec, message):
    with pytest.raises(EncoderError, match=message):
        load_encoder(spec, "cpu")


def test_unobtainable_weights_fail_with_a_clear_message():
    # conftest sets HF_HUB_OFFLINE, as on a machine without network; nothing is cached for this tag.
    with pytest.raises(EncoderError, match="could not load weights .*Without network"):
        load_encoder("clip:ViT-B-32/laion2b_s34b_b79k", "cpu")


class _Payload:
    """Unpickling this runs code: what a malicious checkpoint carries."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


def test_pickled_checkpoints_with_code_are_refused(tiny_clip_spec, tmp_path):
    import torch

    from mmsearch.train import loop as train

    marker = tmp_path / "ran"
    evil = tmp_path / "evil.pt"
    torch.save({"state_dict": {}, "x": _Payload(marker)}, evil)
    with pytest.raises(EncoderError, match="could not load weights"):
        load_encoder(f"clip:mmsearch-tiny-clip/{evil}", "cpu")
    resume = tmp_path / "run.checkpoint.pt"
    torch.save({"model": {}, "x": _Payload(marker)}, resume)
    with pytest.raises(Exception, match="Weights only load failed|Unsupported global"):
        train.train(
            train.TrainSettings(
                out=tmp_path / "run",
                resume=True,
                renders=64,
                epochs=1,
                batch_size=16,
                image_size=32,
                patch_size=8,
                width=32,
                vision_layers=1,
                text_layers=1,
                heads=2,
                embed_dim=16,
                workers=1,
                data_dir=tmp_path / "data",
                tracker="none",
            )
        )
    assert not marker.exists()  # neither load ran the payload


def test_a_loaded_two_towers_text_runs_frozen_with_the_same_vectors_and_falls_back_when_it_cannot(monkeypatch):
    import torch

    demo = load_encoder("demo")
    texts = ["red striped t-shirt", "a mug", "show me some green trainers please"]
    frozen = demo.encode_text(texts)
    assert isinstance(demo._text_graph, torch.jit.ScriptModule)
    demo.freeze_text = False
    eager = demo.encode_text(texts)
    assert np.abs(frozen - eager).max() < 1e-5
    assert np.abs(np.concatenate([load_encoder("demo").encode_text([t]) for t in texts]) - eager).max() < 1e-5

    def refuse(*args, **kwargs):
        raise RuntimeError("tracing is not available")

    monkeypatch.setattr(torch.jit, "trace", refuse)
    fallback = load_encoder("demo")
    assert np.abs(fallback.encode_text(texts) - eager).max() < 1e-6 and fallback._text_graph is False
