"""SVG pictures in a catalog, rendered to pixels with CairoSVG (it needs the cairo library: Debian's libcairo2).

Rendered in CairoSVG's safe mode: no external files and no XML entities, so a catalog's SVG cannot make the build read
other files; the few that need them are skipped with that reason (safe mode alone would draw an external picture as
nothing, and the item would be indexed as a blank). Uploads are never SVG (a browser-made script is no
search query)."""

from __future__ import annotations

import io
from pathlib import Path

from PIL import Image

SVG = ".svg"
SIDE = 512  # pixels on the longer side: four times a 128-px model input, twice the largest tower's 260


class VectorArtError(ValueError):
    """An SVG that does not render; the message says why."""


def is_svg(source: object) -> bool:
    return isinstance(source, (str, Path)) and Path(source).suffix.lower() == SVG


def render_svg(path: str | Path, side: int = SIDE) -> Image.Image:
    """The SVG at ``path`` as an RGBA picture whose longer side is ``side`` pixels.

    Drawn once, ``side`` wide; a tall one is then scaled down to ``side`` high. Measured on the stamps' 246 SVGs
    that render: 25 ms each at 260 px where a small probe for the shape, then the drawing, took 38 (49 at 512)."""
    try:
        with open(path, "rb") as fh:
            data = fh.read()
    except FileNotFoundError as exc:
        raise VectorArtError(f"image file not found: {path}") from exc
    try:
        picture = _drawn(data, output_width=side)
    except VectorArtError:
        raise
    except Exception as exc:  # cairosvg and defusedxml raise many kinds for a file they cannot draw
        try:  # one far taller than wide, drawn ``side`` wide, would pass cairo's limit of 32,767 pixels a side
            picture = _drawn(data, output_height=side)
        except Exception:
            raise VectorArtError(f"an SVG that does not render ({type(exc).__name__}: {exc})") from exc
    if picture.height > side:
        width = max(1, round(picture.width * side / picture.height))
        picture = picture.resize((width, side), Image.Resampling.LANCZOS)
    return picture


def _drawn(data: bytes, **size: int) -> Image.Image:
    try:
        import cairosvg
    except OSError as exc:  # the module imports cairo's C library when it is first imported
        raise VectorArtError(f"SVG pictures need the cairo library (apt-get install libcairo2): {exc}") from exc
    picture = Image.open(
        io.BytesIO(cairosvg.surface.PNGSurface.convert(bytestring=data, url_fetcher=_embedded_only, **size))
    )
    picture.load()
    return picture


def _embedded_only(url: str, resource_type: str) -> bytes:
    """CairoSVG's fetcher for what an SVG refers to: what is embedded in it (data: URLs) and nothing else."""
    from cairosvg.url import fetch

    if url and url.startswith("data:"):
        return fetch(url, resource_type)
    raise VectorArtError(
        f"an SVG that needs another file ({url}): SVGs are drawn without reading other files; embed the picture "
        "in the SVG as a data: URL"
    )
