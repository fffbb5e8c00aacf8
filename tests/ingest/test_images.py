"""Pictures to RGB: what transparency leaves behind."""

from PIL import Image

from mmsearch.ingest.images import is_cut_out, load_image, to_rgb


def test_a_picture_with_transparent_pixels_comes_back_on_white_marked_as_a_cut_out():
    stamp = Image.new("RGBA", (40, 20), (0, 0, 0, 0))
    stamp.paste((200, 10, 10, 255), (10, 5, 30, 15))
    rgb = load_image(stamp)
    assert rgb.mode == "RGB" and rgb.getpixel((0, 0)) == (255, 255, 255) and rgb.getpixel((20, 10)) == (200, 10, 10)
    assert is_cut_out(rgb)
    assert is_cut_out(to_rgb(stamp.convert("LA")))


def test_an_opaque_picture_is_no_cut_out_whatever_its_mode():
    assert not is_cut_out(to_rgb(Image.new("RGB", (8, 8), "red")))
    assert not is_cut_out(to_rgb(Image.new("RGBA", (8, 8), (1, 2, 3, 255))))  # an alpha channel, nothing see-through
    assert not is_cut_out(to_rgb(Image.new("L", (8, 8), 128)))
