"""Result pictures served to the gallery: copies in a folder of their own, small ones scaled up crisply."""

import numpy as np
from PIL import Image

from mmsearch.ui.pictures import CRISP_SIDE, ServedPictures


def test_a_small_picture_is_scaled_up_by_a_whole_factor_without_blur(tmp_path):
    small = np.kron(np.indices((7, 7)).sum(0) % 2, np.ones((4, 4))).astype(np.uint8) * 255  # 28x28 checks
    Image.fromarray(small, "L").save(tmp_path / "tiny.png")
    served = ServedPictures(tmp_path / "served").path(str(tmp_path / "tiny.png"))
    with Image.open(served) as img:
        assert img.size == (196, 196) and img.size[0] >= CRISP_SIDE
        pixels = np.asarray(img)
    assert set(np.unique(pixels)) == {0, 255}  # no blended grey: each source pixel is a 7x7 square
    assert (pixels[::7, ::7] == small).all()


def test_a_photo_is_served_as_it_is_and_a_missing_one_as_a_grey_tile(tmp_path):
    Image.new("RGB", (300, 200), (200, 10, 10)).save(tmp_path / "photo.jpg")
    pictures = ServedPictures(tmp_path / "served")
    served = pictures.path(str(tmp_path / "photo.jpg"))
    assert open(served, "rb").read() == (tmp_path / "photo.jpg").read_bytes()
    assert pictures.path(str(tmp_path / "photo.jpg")) == served  # the second search reuses the copy
    assert pictures.path(str(tmp_path / "gone.jpg")) == str(pictures.missing)
