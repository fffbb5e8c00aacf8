"""OCR engines compared on product labels and real photos, as ``--ocr`` uses them: words found, characters read
correctly, words invented on photos without text, and seconds per picture. scikit-image's ``page`` (a photographed
printed page) is scored against its transcription; its ``text`` (handwritten formulae) is shown as read.

    python benchmarks/ocr.py                  # 40 rendered labels, scikit-image's page, 9 photos without text
    python benchmarks/ocr.py --labels 100 --seed 7
    python benchmarks/ocr.py --build            # also: what --ocr adds to a build, and to an update


Engines: RapidOCR's PP-OCRv4 (what --ocr runs: mmsearch/encode/picture_text.py, with its confidence filter) and
Debian's tesseract 5 (``apt-get install tesseract-ocr``; skipped when absent), each given the same PNG files and
filtered the same way for tesseract's own confidences. Words found: a printed word counts when the reading holds it
as a word (case and punctuation aside). Characters: 1 - the normalised edit distance between what is printed and
what was read. "Detector only": PP-OCRv4's detection pass alone on the photos without text, the floor a picture
without words can cost.
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from labels import make_labels, save_textless  # noqa: E402

# scikit-image's ``page`` (a photo of a printed page), transcribed by hand.
PAGE_WORDS = (
    "Region-based segmentation Let us first determine markers of the coins and the background. These markers are "
    "pixels that we can label unambiguously as either object or background. Here, the markers are found at the two "
    "extreme parts of the histogram of grey values:"
).split()


def words_of(text: str) -> list[str]:
    return re.findall(r"[^\W_]+", text.upper())


def found_share(printed: list[str], read: str) -> float:
    seen = set(words_of(read))
    wanted = [w for p in printed for w in words_of(p)]
    return sum(w in seen for w in wanted) / len(wanted)


def character_accuracy(printed: str, read: str) -> float:
    from rapidfuzz.distance import Levenshtein

    a, b = " ".join(words_of(printed)), " ".join(words_of(read))
    return 1 - Levenshtein.normalized_distance(a, b)


class Rapid:
    name = "rapidocr PP-OCRv4"

    def __init__(self):
        from mmsearch.encode.picture_text import PictureReader

        self.reader = PictureReader()

    def read(self, path: Path) -> tuple[str, float]:
        reading = self.reader.read(path)
        return reading.text(), reading.seconds

    def detect_only(self, path: Path) -> tuple[float, int]:
        """The detector's pass alone: its seconds, and how many text boxes it found (boxes are then recognised)."""
        from mmsearch.ingest.images import load_image

        bgr = np.ascontiguousarray(np.asarray(load_image(path))[:, :, ::-1])
        started = time.perf_counter()
        boxes, _ = self.reader._engine.text_det(bgr)
        return time.perf_counter() - started, 0 if boxes is None else len(boxes)


class Tesseract:
    name = "tesseract 5 (Debian)"

    def read(self, path: Path) -> tuple[str, float]:
        from mmsearch.encode.picture_text import MIN_CONFIDENCE, kept_lines

        started = time.perf_counter()
        tsv = subprocess.run(
            ["tesseract", str(path), "-", "--psm", "11", "tsv"], capture_output=True, text=True, check=True
        ).stdout
        took = time.perf_counter() - started
        words = []
        for row in tsv.splitlines()[1:]:
            parts = row.split("\t")
            if len(parts) == 12 and parts[11].strip() and float(parts[10]) >= 0:
                words.append((parts[11], float(parts[10]) / 100))
        return " ".join(kept_lines(words, MIN_CONFIDENCE)) if words else "", took

    def raw(self, path: Path) -> str:
        return subprocess.run(["tesseract", str(path), "-", "--psm", "11"], capture_output=True, text=True).stdout


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--labels", type=int, default=40, help="rendered labels to read")
    parser.add_argument("--seed", type=int, default=0, help="which labels (words, colours, layouts)")
    parser.add_argument("--build", action="store_true", help="also time index builds with and without --ocr")
    args = parser.parse_args()
    from PIL import Image
    from skimage import data

    work = Path(tempfile.mkdtemp(prefix="mmsearch-ocr-"))
    labels = make_labels(work / "labels", args.labels, args.seed)
    textless = save_textless(work / "textless")
    page, formulae = work / "page.png", work / "text.png"
    Image.fromarray(data.page()).save(page)
    Image.fromarray(data.text()).save(formulae)  # handwritten formulae on a page: few words to find
    engines = [Rapid()] + ([Tesseract()] if shutil.which("tesseract") else [])
    if len(engines) == 1:
        print("tesseract not installed (apt-get install tesseract-ocr): PP-OCRv4 alone\n")
    print(f"{len(labels)} labels ({', '.join(sorted({lb.background for lb in labels}))} backgrounds), "
          f"scikit-image's page, {len(textless)} photos without text; 2 cores\n")  # fmt: skip
    for engine in engines:
        engine.read(labels[0].path)  # warm: sessions made, first-run costs paid
        found, chars, secs = [], [], []
        missed = []
        for label in labels:
            text, took = engine.read(label.path)
            found.append(found_share(label.words, text))
            chars.append(character_accuracy(" ".join(label.words), text))
            secs.append(took)
            if found[-1] < 1:
                missed.append(f"{' '.join(label.words)!r} read {text!r}")
        page_text, page_s = engine.read(page)
        formulae_text, formulae_s = engine.read(formulae)
        invented, blank_s = {}, []
        for path in textless:
            text, took = engine.read(path)
            blank_s.append(took)
            if text:
                invented[path.stem] = text
        print(f"== {engine.name}")
        print(f"labels: words found {np.mean(found):.1%}, characters {np.mean(chars):.1%}, "
              f"{np.mean(secs):.2f} s a label (p50 {np.median(secs):.2f})")  # fmt: skip
        for line in missed[:8]:
            print("   missed:", line)
        print(f"page: words found {found_share(PAGE_WORDS, page_text):.1%}, characters "
              f"{character_accuracy(' '.join(PAGE_WORDS), page_text):.1%}, {page_s:.2f} s")  # fmt: skip
        print(f"text (handwritten formulae): read {formulae_text!r} in {formulae_s:.2f} s")
        print(f"photos without text: {len(invented)} of {len(textless)} read as having words {invented or ''}; "
              f"{np.mean(blank_s):.2f} s a photo")  # fmt: skip
        if isinstance(engine, Rapid):  # interleaved, three times each: the machine's slow seconds fall on both
            runs = {False: ([], []), True: ([], [])}  # did the detector find boxes: (read, detector alone) seconds
            for path in textless * 3:
                took = engine.read(path)[1]
                alone, boxes = engine.detect_only(path)
                runs[boxes > 0][0].append(took)
                runs[boxes > 0][1].append(alone)
            for fired, (whole, detector) in runs.items():
                if whole:
                    found = "some" if fired else "no"
                    print(f"   {len(whole) // 3} where the detector found {found} text boxes: {np.median(whole):.3f} s "
                          f"read, {np.median(detector):.3f} s the detector alone (medians)")  # fmt: skip
        if isinstance(engine, Tesseract):
            noisy = sum(bool(words_of(engine.raw(p))) for p in textless)
            print(f"   unfiltered, tesseract reads words off {noisy} of {len(textless)} of them")
        print()
    if args.build:
        build_cost(work, [lb.path for lb in labels] + textless)


def build_cost(work: Path, pictures: list[Path]) -> None:
    """A catalog of these pictures built with the demo model: without --ocr, with it (every picture read), and an
    update with it after one picture is replaced (one read)."""
    import pandas as pd

    from mmsearch import settings
    from mmsearch.builder.pipeline import build_index

    rows = [{"item_id": f"p{n}", "image": str(p), "title": f"product {n}"} for n, p in enumerate(pictures)]
    pd.DataFrame(rows).to_csv(work / "shop.csv", index=False)
    timings = {}
    for name, ocr, data in (("without --ocr", False, "a"), ("with --ocr", True, "b"), ("update with --ocr", True, "b")):
        if name.startswith("update"):
            pictures[0].write_bytes(pictures[1].read_bytes())
        config = settings.Settings(
            data_dir=work / data, catalog=str(work / "shop.csv"), model="demo", index=work / f"ix-{data}", ocr=ocr
        )
        started = time.perf_counter()
        built = build_index(config)
        timings[name] = time.perf_counter() - started
        read = built.manifest.get("ocr", {})
        cost = f", {read['pictures_read']} read ({read['seconds_per_picture'] or 0} s a picture)" if read else ""
        print(f"build {name}: {timings[name]:.1f} s for {len(pictures)} pictures{cost}")
    extra = timings["with --ocr"] - timings["without --ocr"]
    print(f"--ocr adds {extra:.1f} s to a full build, {extra / len(pictures):.2f} s a picture")


if __name__ == "__main__":
    main()
