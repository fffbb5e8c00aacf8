"""The loaded index as queries see it: one ``Snapshot`` of an index directory, and the ``LoadedIndex`` that swaps a
newer snapshot in whole when a build lands (hot reload).

A query takes one snapshot at its start and uses it to the end, so swapping in a rebuilt index never mixes two
indexes inside one answer.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np
import pandas as pd

from mmsearch.index import keyword as kw
from mmsearch.index import vectors as vindex
from mmsearch.index.filters import Columns
from mmsearch.index.picture_sample import PictureSample
from mmsearch.ingest.catalog import PICTURES
from mmsearch.ingest.phrasing import Synonyms
from mmsearch.search.broader_terms import BroaderTerms
from mmsearch.search.catalog_languages import catalog_languages
from mmsearch.search.match import SAMPLE, Spread
from mmsearch.settings import Settings

# Columns no filter, facet or order reads: the index's bookkeeping, and the pictures' paths on the server (never shown:
# a facet of them would list the server's folders).
INTERNAL_COLUMNS = ("slot", "image_hash", "revision", "_size", "_mtime", "image", PICTURES)
log = logging.getLogger("mmsearch.search")


@dataclass
class Snapshot:
    """Everything a query reads from one index directory."""

    index: vindex.VectorIndex
    table: pd.DataFrame  # every item's catalog columns in index row order: what filters read
    keyword: kw.KeywordIndex
    groups: dict[str, str]  # item -> the first item of its near-duplicate group
    stamp: tuple
    columns: Columns = None  # the table prepared for filters, column by column on first use
    pictures: PictureSample | None = None  # the catalog's pictures as a pretrained tower sees them

    def __post_init__(self) -> None:
        self.columns = Columns(self.table)

    @cached_property
    def spread(self) -> Spread:
        """The moments of the present items' vectors (a sample of a large index), taken once (``warm``)."""
        slots = self.index.slots
        if len(slots) > SAMPLE:
            slots = np.sort(np.random.default_rng(0).choice(slots, SAMPLE, replace=False))
        return Spread.of(self.index.vectors[slots])

    @cached_property
    def broader(self) -> BroaderTerms:
        """The words naming a kind of what the catalog's words name, found once (``warm``; 1.2 s for a process's
        first catalog, WordNet read, 0.1 s for the next)."""
        return BroaderTerms.of(self.keyword.retriever.vocab_dict)

    def warm(self) -> None:
        """What the first query would otherwise take on itself, taken before the snapshot serves (when a searcher
        opens it or a newer build swaps it in): the moments (0.1 s for the stamps), the broader terms the match
        counts, and the word lists the keyword correction reads (the stamps' Spanish, French and German: 2.1 s). The
        first visitor's query on the stamps took 0.35 s where the next took 10 ms."""
        self.spread  # noqa: B018 - a cached property: taken once
        self.broader  # noqa: B018
        self.keyword.query_stems.warm()

    @property
    def build(self) -> str:
        """The build this snapshot holds: the mark its build wrote (an update writes a new one), or its time."""
        return build_of(self.index.manifest)

    @classmethod
    def open(cls, path: Path, model_id: str, config: Settings) -> Snapshot:
        stamp = stamp_of(path)  # before loading: a build landing meanwhile is seen by the next check
        return cls.of(vindex.load(path, expect_model_id=model_id, store=config.vector_store), config, stamp)

    @classmethod
    def of(cls, index: vindex.VectorIndex, config: Settings, stamp: tuple | None = None) -> Snapshot:
        path = index.path
        stamp = stamp or stamp_of(path)
        table = index.items.drop(columns=[c for c in INTERNAL_COLUMNS if c in index.items.columns])
        saved = Path(path) / kw.KEYWORD_DIR
        synonyms = Synonyms.load(config.synonyms)
        fields = index.manifest.get("keyword_fields") or config.keyword_field_list()
        languages = catalog_languages(table, fields)
        keyword = (
            kw.KeywordIndex.load(saved, len(index), synonyms, languages)
            if saved.exists()
            else kw.KeywordIndex.build(kw.item_texts(table, fields), synonyms, languages)
        )
        return cls(index, table, keyword, duplicate_groups(path), stamp, pictures=PictureSample.load(path))


class LoadedIndex:
    """The snapshot queries take now, and the swap to a newer build of the same directory."""

    def __init__(self, snapshot: Snapshot, model_id: str, config: Settings):
        self.snapshot, self.model_id, self.config = snapshot, model_id, config
        self.reloads = 0
        self._lock = threading.Lock()
        self._watcher: threading.Thread | None = None

    def reload_if_changed(self) -> bool:
        """Swaps in the index directory's newer build, if there is one; queries in flight finish on the old one.
        A directory that cannot be read (a build swapping it this instant, a damaged one) keeps the old index."""
        path = self.snapshot.index.path
        with self._lock:
            try:
                if stamp_of(path) == self.snapshot.stamp:
                    return False
                fresh = Snapshot.open(path, self.model_id, self.config)
                fresh.warm()
            except (OSError, vindex.IndexLoadError) as exc:
                log.warning("keeping the loaded index: %s", exc)
                return False
            self.snapshot = fresh  # one reference assignment: atomic for every reader
            self.reloads += 1
            log.info(
                "swapped in the index built at %s (%d items)", fresh.index.manifest.get("built_at"), len(fresh.index)
            )
            return True

    def watch(self, interval: float | None = None) -> None:
        """Checks the index directory every ``interval`` seconds in a daemon thread (the app's hot reload)."""
        interval = self.config.reload_interval if interval is None else interval
        if interval <= 0 or self._watcher is not None:
            return

        def loop() -> None:
            while True:
                time.sleep(interval)
                self.reload_if_changed()

        self._watcher = threading.Thread(target=loop, name="mmsearch-index-watch", daemon=True)
        self._watcher.start()


def build_of(manifest: dict) -> str:
    """A build's name, the same on every machine that reads its directory (a stamp is one file system's)."""
    return str(manifest.get("online_mark") or manifest.get("built_at") or "")


def stamp_of(path: Path) -> tuple:
    """Changes whenever a build swaps a new directory in (the manifest is written last, in a new inode)."""
    vindex.recover(path)  # a build killed in a swap that could not exchange: its complete build is put back
    st = (Path(path) / vindex.MANIFEST_FILE).stat()
    return st.st_ino, st.st_mtime_ns


def duplicate_groups(index_dir: Path | None) -> dict[str, str]:
    """Near-duplicate pairs from the build, joined into groups (a ~ b, b ~ c: one group); item -> group id."""
    if index_dir is None or not (Path(index_dir) / vindex.DUPLICATES_FILE).exists():
        return {}
    parent: dict[str, str] = {}

    def root(x: str) -> str:
        while parent.get(x, x) != x:
            x = parent[x]
        return x

    for a, b in pd.read_csv(Path(index_dir) / vindex.DUPLICATES_FILE, dtype=str)[
        ["item_id", "duplicate_of"]
    ].itertuples(index=False):
        ra, rb = root(a), root(b)
        if ra != rb:
            parent[max(ra, rb)] = min(ra, rb)
    return {x: root(x) for x in parent}  # a group's root is absent and stands for itself (see _collapse)
