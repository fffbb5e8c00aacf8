"""Pictures from anywhere (files, uploads, PIL images) to checked 8-bit RGB, with a reason a person can read when one
cannot be used: not an image, damaged, truncated, or absurdly large (decompression bombs)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from mmsearch.ingest.vector_art import SIDE, VectorArtError, is_svg, render_svg

DEFAULT_MAX_PIXELS = 40_000_000  # a decompression bomb's guard: a 6,000 x 6,000 photo passes
CUT_OUT = "mmsearch.cut_out"  # the info key that marks a picture composited from transparency
CHECK_SIDE = 64  # an SVG is drawn this small to check that it renders: 13 ms a stamp, where 512 px took 49


class ImageError(ValueError):
    """An image that cannot be used; the message says why in words a person can act on."""


def to_rgb(img: Image.Image) -> Image.Image:
    """Any PIL mode to 8-bit RGB: transparency on white, CMYK converted, 16-bit and float rescaled to 8 bits. A
    picture with transparent pixels comes back marked as a cut-out (``is_cut_out``)."""
    img = ImageOps.exif_transpose(img)
    if img.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        arr = np.asarray(img, dtype=np.float64)
        lo, hi = float(arr.min()), float(arr.max())
        arr = (arr - lo) / (hi - lo) * 255 if hi > lo else np.zeros_like(arr)
        img = Image.fromarray(arr.astype(np.uint8), "L")
    if img.mode == "P" or img.mode == "PA":
        img = img.convert("RGBA")
    cut_out = False
    if img.mode in ("RGBA", "LA", "La", "RGBa"):
        img = img.convert("RGBA")
        cut_out = img.getchannel("A").getextrema()[0] < 255
        white = Image.new("RGBA", img.size, (255, 255, 255, 255))
        img = Image.alpha_composite(white, img)
    out = img.convert("RGB")
    if cut_out:
        out.info[CUT_OUT] = True
    return out


def on_white_square(picture: Image.Image, side: int) -> Image.Image:
    """``picture`` (no larger than ``side`` either way) centred on a white ``side`` square."""
    square = Image.new("RGB", (side, side), "white")
    square.paste(picture, ((side - picture.width) // 2, (side - picture.height) // 2))
    return square


def is_cut_out(picture: Image.Image) -> bool:
    """Whether ``picture`` (from ``to_rgb``) was cut out on a transparent background, now white: the whole picture
    is the thing shown, with no scene around it (the stamps: 962 of 966)."""
    return bool(picture.info.get(CUT_OUT))


def check_header(path: str | Path, max_pixels: int) -> tuple[int, int]:
    """Cheap check without decoding pixels: the file opens as an image of sane size (an SVG: it renders)."""
    if is_svg(path):
        try:
            return render_svg(path, CHECK_SIDE).size
        except VectorArtError as exc:
            raise ImageError(str(exc)) from exc
    try:
        with Image.open(path) as img:
            width, height = img.size
    except Image.DecompressionBombError as exc:
        raise ImageError(f"image is absurdly large ({exc})") from exc
    except FileNotFoundError as exc:
        raise ImageError(f"image file not found: {path}") from exc
    except UnidentifiedImageError as exc:
        raise ImageError(
            "not a readable image: the file is not in a known image format (JPEG, PNG, WebP, GIF, BMP, TIFF, ...)"
        ) from exc
    except Exception as exc:  # PIL raises several kinds for a damaged file
        raise ImageError(f"not a readable image ({type(exc).__name__}: {exc})") from exc
    if width <= 0 or height <= 0:
        raise ImageError(f"image has no pixels ({width}x{height})")
    if width * height > max_pixels:
        raise ImageError(f"image is too large ({width}x{height} = {width * height:,} pixels, limit {max_pixels:,})")
    return width, height


def load_image(
    source: str | Path | Image.Image,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    at_least: int = 0,
    svg_side: int = SIDE,
) -> Image.Image:
    """Opens, size-checks, fully decodes and converts to RGB. Raises ImageError with a readable reason.

    With ``at_least``, a JPEG larger than that on its shorter side is decoded at 1/2, 1/4 or 1/8 scale where that
    still leaves ``at_least`` pixels (the DCT's own scaling): a 40-megapixel photo decoded in 0.11 s instead of 0.51.
    An SVG is drawn with its longer side at ``svg_side``: a build passes the encoder's input side, so that no pixels
    are drawn only to be scaled away (the stamps' SVGs are cut-outs, read whole at that side)."""
    if isinstance(source, Image.Image):
        if source.width * source.height > max_pixels:
            raise ImageError(f"image is too large ({source.width}x{source.height} pixels, limit {max_pixels:,})")
        return to_rgb(source)
    if is_svg(source):
        try:
            return to_rgb(render_svg(source, svg_side))
        except VectorArtError as exc:
            raise ImageError(str(exc)) from exc
    check_header(source, max_pixels)
    if hasattr(source, "seek"):  # an in-memory upload: check_header read its start
        source.seek(0)
    try:
        with Image.open(source) as img:
            if at_least and img.format == "JPEG":
                img.draft("RGB", (at_least, at_least))
            img.load()
            return to_rgb(img)
    except Image.DecompressionBombError as exc:
        raise ImageError(f"image is absurdly large ({exc})") from exc
    except Exception as exc:
        raise ImageError(f"corrupt or truncated image ({type(exc).__name__}: {exc})") from exc
