"""Result pictures where the web UI may show them, without opening the server's folders to the web.

Gradio serves files from the folders given to ``allowed_paths``: handing it the catalog's folders would publish
whatever else lives there (a data directory holds the Feast stores and the indexes). Instead each picture a search
returns is hard-linked (or copied, across file systems) into one folder under Gradio's upload directory that holds
nothing else, named by the source's path, size and modification time, so a changed picture gets a new name.

A small picture (a 28x28 product photo, say) is served scaled up by a whole factor with nearest-neighbour sampling, so
the browser, which would blur it, only scales it down: every pixel stays a crisp square.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import threading
from pathlib import Path

from PIL import Image


class ServedPictures:
    def __init__(self, root: str | Path):
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self.missing = self.root / "missing-picture.png"
        if not self.missing.exists():
            tmp = self.root / f".missing.{os.getpid()}.png"
            Image.new("RGB", (64, 64), (225, 225, 225)).save(tmp)
            os.replace(tmp, self.missing)

    def path(self, source: str) -> str:
        """A servable path for the catalog picture at ``source`` (a grey tile if it is gone from disk)."""
        try:
            st = os.stat(source)
        except OSError:
            return str(self.missing)
        key = hashlib.blake2b(f"{source}|{st.st_size}|{st.st_mtime_ns}".encode(), digest_size=12).hexdigest()
        target, scaled = self.root / f"{key}{Path(source).suffix.lower()[:8]}", self.root / f"{key}.x.png"
        for known in (target, scaled):
            if known.exists():
                return str(known)
        with self._lock:  # two searches showing a new picture at once write it once
            factor = _upscale_factor(source)
            out = scaled if factor > 1 else target
            if not out.exists():
                tmp = self.root / f".{key}.{os.getpid()}.{threading.get_ident()}"
                if factor > 1:
                    with Image.open(source) as img:
                        img.resize((img.width * factor, img.height * factor), Image.Resampling.NEAREST).save(tmp, "PNG")
                else:
                    try:
                        os.link(source, tmp)
                    except OSError:
                        shutil.copyfile(source, tmp)
                os.replace(tmp, out)
        return str(out)


CRISP_SIDE = 192  # a card is about 170 px wide: smaller pictures are scaled up to at least this, by a whole factor


def _upscale_factor(source: str) -> int:
    try:
        with Image.open(source) as img:
            side = max(img.size)
    except Exception:  # an unreadable picture is served as it is, and the browser shows what it can
        return 1
    return -(-CRISP_SIDE // side) if 0 < side < CRISP_SIDE // 2 else 1
