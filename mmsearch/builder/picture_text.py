"""A build's ``--ocr`` step: the words printed in each picture, as the catalog's ``picture_text`` column (keyword
and hybrid search read it; results show it). Pictures read by an earlier build are not read again
(store/picture_readings.py)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from mmsearch.encode.picture_text import ENGINE, PictureReader, Reading
from mmsearch.store.picture_readings import PictureReadings

COLUMN = "picture_text"
BATCH = 32  # readings kept per transaction: a killed build loses at most this many (~10 s of reading)


@dataclass
class ReadingCost:
    """What a build's reading cost: pictures read now (the rest were read by an earlier build, ``known``), their
    seconds, and the seconds of each the engine read no line off (what a picture without words costs)."""

    read: int = 0
    known: int = 0
    seconds: float = 0.0
    without_text: list[float] = field(default_factory=list)

    def mean_seconds(self) -> tuple[float | None, float | None]:
        """Seconds a picture, and a picture without words (None where there were none)."""
        blank = sum(self.without_text) / len(self.without_text) if self.without_text else None
        return (self.seconds / self.read if self.read else None), blank

    def per_picture(self) -> str:
        every, blank = self.mean_seconds()
        if every is None:
            return "nothing to read"
        return f"{every:.2f} s a picture" + (f", {blank:.2f} s one without words" if blank is not None else "")

    def manifest(self) -> dict:
        every, blank = self.mean_seconds()
        return {
            "engine": ENGINE,
            "pictures_read": self.read,
            "pictures_known": self.known,
            "seconds": round(self.seconds, 1),
            "seconds_per_picture": None if every is None else round(every, 3),
            "seconds_per_picture_without_text": None if blank is None else round(blank, 3),
        }


def products_text(
    data_dir: Path,
    items: pd.DataFrame,
    others: pd.DataFrame,
    min_confidence: float,
    say: Callable[[float, str], None],
    cost: ReadingCost,
) -> list[str]:
    """Each product's words: those of its first picture (``items``' image and image_hash), then those of its other
    pictures (``others``: product_pictures.listed's, hashed) that say something more, " / " between them."""
    paths, hashes = items["image"].astype(str).tolist(), items["image_hash"].tolist()
    texts = read_picture_text(
        data_dir, paths + others["image"].tolist(), hashes + others["image_hash"].tolist(), min_confidence, say, cost
    )
    out = texts[: len(paths)]
    if len(others):
        row = {item_id: n for n, item_id in enumerate(items["item_id"].astype(str))}
        for item_id, text in zip(others["item_id"], texts[len(paths) :]):
            n = row[item_id]
            if text and text not in out[n].split(" / "):
                out[n] = f"{out[n]} / {text}" if out[n] else text
    return out


def read_picture_text(
    data_dir: Path,
    paths: list[str],
    hashes: list[str],
    min_confidence: float,
    say: Callable[[float, str], None],
    cost: ReadingCost,
) -> list[str]:
    """Each picture's words (its kept lines, " / " between them), in the order given; a picture that cannot be
    decoded reads as "" (the encoder then leaves it out of the index, saying why)."""
    readings = PictureReadings(data_dir)
    try:
        known = readings.known(hashes)
        todo = {h: p for p, h in zip(paths, hashes) if h not in known}
        cost.known = len(set(hashes)) - len(todo)
        if todo:
            _read(readings, todo, known, say, cost)
    finally:
        readings.close()
    return [known[h].text(min_confidence) if h in known else "" for h in hashes]


def _read(readings: PictureReadings, todo: dict[str, str], known: dict[str, Reading], say, cost: ReadingCost) -> None:
    reader = PictureReader()
    batch: dict[str, Reading] = {}
    say(0.08, f"reading the words in {len(todo):,} pictures ({cost.known:,} read by an earlier build)")
    for done, (image_hash, path) in enumerate(todo.items(), 1):
        try:
            reading = reader.read(path)
        except Exception:  # noqa: BLE001 - undecodable, too large, or one OpenCV refuses: the build goes on without
            continue  # its words, and without keeping the failure: the picture is tried again once it can be read
        batch[image_hash] = known[image_hash] = reading
        cost.read, cost.seconds = cost.read + 1, cost.seconds + reading.seconds
        if not reading.lines:
            cost.without_text.append(reading.seconds)
        if len(batch) >= BATCH or done == len(todo):
            readings.keep(batch)
            batch = {}
            say(
                0.08 + 0.01 * done / len(todo),
                f"reading words in pictures {done:,}/{len(todo):,}: {cost.per_picture()}",
            )
    if batch:
        readings.keep(batch)
