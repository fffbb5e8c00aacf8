"""A product's pictures after its first (a manifest's ``images`` column): each is encoded once, kept in Feast under
the product's id and its own content hash, and indexed as a vector of its own that answers for the product.

An update keeps the vector of every picture whose bytes did not change (from the previous index, else from Feast),
so adding or removing one picture of a product encodes that picture alone.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from mmsearch.builder import update
from mmsearch.ingest.catalog import PICTURES

COLUMNS = ["item_id", "position", "image", "image_hash", "_size", "_mtime"]


@dataclass
class OtherPictures:
    table: pd.DataFrame  # COLUMNS, one row per picture after a product's first
    kept: np.ndarray  # per row: the previous index's slot whose vector still holds, else -1
    encoded: int = 0
    left_out: int = 0  # pictures that could not be decoded: the product keeps its others

    def __len__(self) -> int:
        return len(self.table)


def listed(items: pd.DataFrame, before: pd.DataFrame | None) -> pd.DataFrame:
    """Every picture after each product's first, in product order (COLUMNS), with its content hash; ``before``: the
    previous index's, whose unchanged files are not read again. Hashed once a build: --ocr and the encoding use it."""
    rows = [
        (item_id, position, path)
        for item_id, cell in zip(items["item_id"].astype(str), items[PICTURES] if PICTURES in items.columns else ())
        if cell
        for position, path in enumerate(json.loads(cell)[1:], start=1)
    ]
    table = pd.DataFrame(rows, columns=["item_id", "position", "image"])
    hashes, sizes, times = update.image_hashes(table["image"].tolist(), before) if rows else ([], [], [])
    return table.assign(image_hash=hashes, _size=sizes, _mtime=times)[COLUMNS]


def gather(job, table: pd.DataFrame, items: pd.DataFrame, prev, encode: Callable) -> OtherPictures:
    """Finds a vector for every other picture (``table``: ``listed``'s) of the products in ``items``: kept from
    ``prev`` (the previous index), found in Feast, or encoded with ``encode(paths) -> (vectors, {position: reason})``;
    new vectors are written to Feast (offline)."""
    table = table[table["item_id"].isin(items["item_id"].astype(str))].reset_index(drop=True)
    before = None if prev is None else prev.pictures
    if table.empty:
        return OtherPictures(table, np.zeros(0, np.int64))
    hashes = table["image_hash"].tolist()
    kept = np.full(len(table), -1, dtype=np.int64)
    if before is not None:
        slot_of = {(i, h): s for i, h, s in before[["item_id", "image_hash", "slot"]].itertuples(index=False)}
        kept = np.array([slot_of.get(key, -1) for key in zip(table["item_id"], hashes)], dtype=np.int64)
    need = np.flatnonzero(kept < 0)
    ids, paths = table["item_id"].tolist(), table["image"].tolist()
    missing = need
    if len(need) and not job.config.full:
        found = job.store.embeddings(
            job.catalog_id, job.encoder.model_id, [ids[r] for r in need], [hashes[r] for r in need], required=False
        )
        missing = np.array([r for r, vec in zip(need, found) if vec is None], dtype=np.int64)
    pictures = OtherPictures(table, kept)
    if len(missing):
        job.say(0.8, f"encoding {len(missing):,} more pictures of products")
        vectors, failed = encode([paths[r] for r in missing])
        good = np.array([n not in failed for n in range(len(missing))], dtype=bool)
        job.store.write_embeddings(
            job.catalog_id,
            job.encoder.model_id,
            [ids[r] for r in missing[good]],
            [hashes[r] for r in missing[good]],
            vectors[good],
            job.when,
        )
        pictures.encoded, pictures.left_out = int(good.sum()), int((~good).sum())
        if pictures.left_out:  # an undecodable picture leaves the index; the product keeps its others
            drop = np.zeros(len(table), dtype=bool)
            drop[missing[~good]] = True
            pictures.table, pictures.kept = table[~drop].reset_index(drop=True), kept[~drop]
    return pictures


def vectors(job, pictures: OtherPictures, prev) -> np.ndarray:
    """The pictures' vectors in table order: kept ones from the previous index, the rest as Feast gives them back."""
    out = np.zeros((len(pictures), job.encoder.dim), dtype=np.float32)
    kept = pictures.kept >= 0
    if kept.any():
        out[kept] = np.asarray(prev.vectors[pictures.kept[kept]], dtype=np.float32)
    need = np.flatnonzero(~kept)
    if len(need):
        table = pictures.table
        out[need] = job.store.embeddings(
            job.catalog_id,
            job.encoder.model_id,
            table["item_id"].iloc[need].tolist(),
            table["image_hash"].iloc[need].tolist(),
        )
    return out
