"""What changed since the last build: which items are new, changed or gone, and which pictures need an embedding.

A picture is identified by a hash of its bytes (its ``image_hash``), so a re-saved file with the same bytes is
unchanged and an edited one is not, whatever its name. Hashing every file again on each update would cost more than the
update, so a file whose path, size and modification time match the previous build keeps its hash, as git's index
does.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from mmsearch.store.features import listing_frame


@dataclass
class Plan:
    items: pd.DataFrame  # the new catalog in row order: listing fields, image_hash, revision, every catalog column
    reused: np.ndarray  # per row: the previous index's slot whose vector still holds, else -1
    counts: dict = field(default_factory=dict)
    new_revisions: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=bool))  # rows Feast has not seen
    skipped: tuple[list, list] = ([], [])  # (item ids, reasons) of pictures that failed to decode while encoding
    listing: pd.DataFrame | None = None  # the rows Feast's listing view holds, in row order (features.listing_frame)
    pictures: pd.DataFrame | None = None  # products' pictures after their first, hashed (product_pictures.listed)

    def without(self, drop: np.ndarray, skipped: tuple[list, list]) -> Plan:
        """The plan less the rows in ``drop`` (pictures found undecodable while encoding)."""
        return Plan(
            self.items[~drop].reset_index(drop=True),
            self.reused[~drop],
            self.counts | {"added": self.counts["added"] - int(drop.sum())},
            self.new_revisions[~drop],
            skipped,
            self.listing[~drop].reset_index(drop=True),
            self.pictures,  # a dropped product's pictures are passed over where they are gathered
        )


def image_hashes(paths: list[str], previous: pd.DataFrame | None = None) -> tuple[list[str], list, list]:
    """(image_hash, size, mtime_ns) per path; unchanged files (same stat as in ``previous``) are not read."""
    known = {}
    if previous is not None and {"image", "_size", "_mtime"} <= set(previous.columns):
        known = {
            (p, s, t): f
            for p, s, t, f in previous[["image", "_size", "_mtime", "image_hash"]].itertuples(index=False)
            if isinstance(f, str) and not f.startswith("vec:")
        }
    memo: dict[tuple, str] = {}
    hashes, sizes, times = [], [], []
    for path in tqdm(paths, desc="hashing pictures", unit="img", leave=False, disable=len(paths) < 5000):
        st = os.stat(path)
        key = (path, st.st_size, st.st_mtime_ns)
        if key not in memo:
            memo[key] = known.get(key) or _hash_file(path)
        hashes.append(memo[key])
        sizes.append(st.st_size)
        times.append(st.st_mtime_ns)
    return hashes, sizes, times


def _hash_file(path: str) -> str:
    digest = hashlib.blake2b(digest_size=10)
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return "img:" + digest.hexdigest()


def known_images(index_dir: Path | None) -> set[tuple[str, int, int]]:
    """(path, size, mtime_ns) of every picture the index at ``index_dir`` was built from: an update need not open
    them again to check they are images."""
    path = Path(index_dir) / "items.parquet" if index_dir else None
    if path is None or not path.exists():
        return set()
    try:
        table = pd.read_parquet(path, columns=["image", "_size", "_mtime"])
    except (OSError, ValueError, KeyError):
        return set()
    return set(zip(table["image"], table["_size"].astype(int), table["_mtime"].astype(int)))


def vector_hash(vector: np.ndarray) -> str:
    """The image_hash of a precomputed embedding: a new vector for an item is a changed item."""
    return "vec:" + hashlib.blake2b(np.asarray(vector, dtype=np.float32).tobytes(), digest_size=10).hexdigest()


def plan(
    catalog_items: pd.DataFrame,
    extra_cols: list[str],
    previous: pd.DataFrame | None,
    byo: dict[str, np.ndarray] | None = None,
    picture_columns: Callable[[pd.DataFrame], dict[str, list]] | None = None,
) -> Plan:
    """Compares the catalog with the previous index's items (None: a full build). ``picture_columns``: columns read
    off the pictures themselves (their words), from the catalog with each first picture's ``image_hash``, added
    before the listings."""
    paths = catalog_items["image"].astype(str).tolist()
    hashes, sizes, times = image_hashes(paths, previous)
    if picture_columns is not None:
        read = picture_columns(catalog_items.assign(image_hash=hashes))
        catalog_items = catalog_items.assign(**read)
        extra_cols = [*extra_cols, *(c for c in read if c not in extra_cols)]
    ids = catalog_items["item_id"].astype(str).tolist()
    if byo:
        hashes = [vector_hash(byo[i]) if i in byo else h for i, h in zip(ids, hashes)]
    listing = listing_frame(catalog_items, extra_cols)
    items = catalog_items.reset_index(drop=True).assign(
        item_id=ids, image_hash=hashes, revision=listing["revision"].to_numpy(), _size=sizes, _mtime=times
    )
    n = len(items)
    reused = np.full(n, -1, dtype=np.int64)
    new_revisions = np.ones(n, dtype=bool)
    if previous is None or previous.empty:
        counts = {"added": n, "changed": 0, "removed": 0, "unchanged": 0}
        return Plan(items, reused, counts, new_revisions, listing=listing)
    prev = previous.set_index(previous["item_id"].astype(str))
    known = items["item_id"].isin(prev.index).to_numpy()
    old = prev.reindex(items["item_id"])
    same_image = known & (old["image_hash"].to_numpy() == items["image_hash"].to_numpy())
    same_listing = known & (old["revision"].to_numpy() == items["revision"].to_numpy())
    reused[same_image] = old["slot"].to_numpy()[same_image].astype(np.int64)
    new_revisions = ~same_listing
    counts = {
        "added": int((~known).sum()),
        "changed": int((known & ~(same_image & same_listing)).sum()),
        "removed": int(len(prev) - known.sum()),
        "unchanged": int((same_image & same_listing).sum()),
    }
    return Plan(items, reused, counts, new_revisions, listing=listing)
