"""The words printed in a picture (a label's "ORGANIC HONEY", a brand, a size), read by OCR at build time.

The engine is RapidOCR's PP-OCRv4 detection and recognition models in ONNX Runtime (the ``rapidocr-onnxruntime``
wheel ships them, Apache-2.0: nothing to download). Compared with Debian's tesseract 5.3 on the same pictures
(``python benchmarks/ocr.py``: rendered product labels and scikit-image's ``page``), it found 98.8% of the labels'
words where tesseract found 72.6% (it misses light words on colour), and on photos without text it kept nothing where
tesseract read noise off six of nine ("sy ns a", "| A /A4") that keyword search would then match. A picture in which
the detector finds no text box costs one detector pass and nothing else.

What is kept of a reading: lines the recogniser is at least ``min_confidence`` sure of, with at least two letters or
digits (PP-OCRv4 reads an "O" or a "?" off a cat's fur or a car's grille now and then, with confidence under 0.8).
"""

from __future__ import annotations

import hashlib
import re
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mmsearch.ingest.images import load_image

ENGINE = "rapidocr-onnxruntime PP-OCRv4"
# The wheel's models, checked before they are loaded: another file under the same name is refused.
MODEL_SHA256 = {
    "ch_PP-OCRv4_det_infer.onnx": "d2a7720d45a54257208b1e13e36a8479894cb74155a5efe29462512d42f49da9",
    "ch_PP-OCRv4_rec_infer.onnx": "48fc40f24f6d2a207a2b1091d3437eb3cc3eb6b676dc3ef9c37384005483683b",
}
MIN_CONFIDENCE = 0.8  # the one line the engine's own 0.5 kept off the benchmark's 9 text-less photos: "M6" at 0.54
MIN_CHARACTERS = 2  # letters or digits in a line
_WORDY = re.compile(r"[^\W_]", re.UNICODE)


class OcrUnavailable(RuntimeError):
    """The OCR engine is not installed, or its model files are not the ones this release was measured with."""


@dataclass
class Reading:
    """What OCR read off one picture: every line the engine returned with its confidence (the filter is applied by
    ``text``, so a stricter one needs no second reading), and the seconds it took."""

    lines: list[tuple[str, float]]
    seconds: float

    def text(self, min_confidence: float = MIN_CONFIDENCE) -> str:
        """The kept lines, joined by " / " ("" for a picture without words)."""
        return " / ".join(kept_lines(self.lines, min_confidence))


def kept_lines(lines: list[tuple[str, float]], min_confidence: float = MIN_CONFIDENCE) -> list[str]:
    """The lines worth keeping, spaced (``spaced``): sure enough, and with at least ``MIN_CHARACTERS`` letters or
    digits."""
    out = []
    for text, confidence in lines:
        text = " ".join(str(text).split())
        if confidence >= min_confidence and len(_WORDY.findall(text)) >= MIN_CHARACTERS:
            out.append(spaced(text))
    return out


def spaced(line: str) -> str:
    """A read line with the spaces the recogniser dropped put back. PP-OCRv4's recogniser (trained mostly on
    Chinese, which has no spaces) often runs words together: "ORGANICHONEY", "SEASALT", "500ml",
    "background.These" (benchmarks/ocr.py: 61% of label words found as read). A run of letters that is no word in
    the languages labels are mostly printed in (wordfreq's frequencies: "FROMAGE", "MERMELADA", "NUTELLA" are words)
    is split where English word frequencies say words meet (wordninja), unless a part would be a single letter;
    a number is parted from its unit ("500ml" -> "500 ml"), and a sentence's full stop from the next word."""
    line = _UNIT.sub(r"\1 \2", line)
    line = _STOP.sub(r"\1 \2", line)
    return _RUN.sub(_split_run, line)


_UNIT = re.compile(r"\b(\d+(?:[.,]\d+)?%?)([^\W\d_]+)\b")
_STOP = re.compile(r"([a-z][.,;:])([A-Za-z])")
_RUN = re.compile(r"[^\W\d_]{5,}")
LANGUAGES = ("en", "fr", "de", "es", "it", "pt", "nl")
# A Zipf frequency of 2.5 is about once in 300 million words: "kaffeebohnen" 2.7, "haribo" 3.0, "fairtrade" 3.2
# are words; "peanutbutter" 2.1, "glutenfree" 1.5, "seasalt" 1.3, "organichoney" 0 are words run together.
KNOWN_WORD_ZIPF = 2.5


def _split_run(match: re.Match) -> str:
    import wordfreq
    import wordninja

    run = match.group(0)
    if max(wordfreq.zipf_frequency(run.lower(), lang) for lang in LANGUAGES) >= KNOWN_WORD_ZIPF:
        return run
    parts = wordninja.split(run)
    if len(parts) < 2 or any(len(p) < 2 for p in parts):
        return run
    return " ".join(parts)


def _checked_models(folder: Path) -> dict[str, Path]:
    paths = {}
    for name, expected in MODEL_SHA256.items():
        path = folder / name
        digest = hashlib.sha256(path.read_bytes()).hexdigest() if path.exists() else "missing"
        if digest != expected:
            raise OcrUnavailable(
                f"the OCR model {path} is not the one mmsearch was measured with (sha256 {digest[:12]}..., expected "
                f"{expected[:12]}...); reinstall it: pip install --force-reinstall rapidocr-onnxruntime==1.4.4"
            )
        paths[name] = path
    return paths


class PictureReader:
    """Reads the words in pictures, one at a time (the engine's ONNX sessions use every core themselves)."""

    def __init__(self):
        try:
            import rapidocr_onnxruntime
            from rapidocr_onnxruntime import RapidOCR
        except ImportError as exc:
            raise OcrUnavailable(
                f"--ocr needs RapidOCR ({exc}); install it: pip install 'mmsearch[ocr]' (or -r requirements.txt)"
            ) from exc
        models = _checked_models(Path(rapidocr_onnxruntime.__file__).parent / "models")
        # No angle classifier: product labels are upright, and it costs a pass per box.
        self._engine = RapidOCR(
            use_angle_cls=False,
            det_model_path=str(models["ch_PP-OCRv4_det_infer.onnx"]),
            rec_model_path=str(models["ch_PP-OCRv4_rec_infer.onnx"]),
        )
        self._lock = threading.Lock()  # one reading at a time: the sessions are not meant to be shared

    def read(self, picture: str | Path | np.ndarray) -> Reading:
        """The words in one picture (a path, or an RGB array), decoded as the encoder decodes it (transparency on
        white, EXIF rotation, SVG rendered); one that cannot be used raises ImageError with the reason."""
        image = picture if isinstance(picture, np.ndarray) else np.asarray(load_image(picture))
        bgr = np.ascontiguousarray(image[:, :, ::-1])  # the engine's colour order, as OpenCV decodes
        started = time.perf_counter()
        with self._lock:
            found, _ = self._engine(bgr, use_cls=False)
        return Reading(
            [(str(line[1]), round(float(line[2]), 4)) for line in found or []], time.perf_counter() - started
        )
