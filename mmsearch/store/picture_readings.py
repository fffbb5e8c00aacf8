"""What OCR read off each picture, kept by the picture's content hash (``image_hash``) in the data directory, so
that a build reads only pictures it has not read before: an update reads its new and changed pictures, a rebuild
(``--full``, another model) none, and a stricter confidence filter applies to the kept lines without reading again.

One SQLite file (``picture_readings.sqlite``); each batch of readings is one transaction, so a build killed while
reading keeps every batch it finished.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

from mmsearch.encode.picture_text import ENGINE, Reading

FILE = "picture_readings.sqlite"


class PictureReadings:
    def __init__(self, data_dir: Path, engine: str = ENGINE):
        Path(data_dir).mkdir(parents=True, exist_ok=True)
        self.engine = engine
        self._db = sqlite3.connect(Path(data_dir) / FILE, timeout=30)
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS readings (image_hash TEXT, engine TEXT, lines TEXT, seconds REAL, "
            "PRIMARY KEY (image_hash, engine))"
        )
        self._db.commit()

    def known(self, hashes: list[str]) -> dict[str, Reading]:
        """The readings already made of these pictures by this engine."""
        out: dict[str, Reading] = {}
        unique = list(dict.fromkeys(hashes))
        for start in range(0, len(unique), 500):  # SQLite's limit on parameters per statement
            chunk = unique[start : start + 500]
            marks = ",".join("?" * len(chunk))
            rows = self._db.execute(
                f"SELECT image_hash, lines, seconds FROM readings WHERE engine = ? AND image_hash IN ({marks})",
                [self.engine, *chunk],
            )
            for image_hash, lines, seconds in rows:
                out[image_hash] = Reading([tuple(line) for line in json.loads(lines)], seconds)
        return out

    def keep(self, readings: dict[str, Reading]) -> None:
        """Records readings, all or none."""
        with self._db:
            self._db.executemany(
                "INSERT OR REPLACE INTO readings VALUES (?, ?, ?, ?)",
                [(h, self.engine, json.dumps(r.lines), r.seconds) for h, r in readings.items()],
            )

    def close(self) -> None:
        self._db.close()
