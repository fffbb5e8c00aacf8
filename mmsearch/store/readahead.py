"""Reading the feature store ahead, so that a started server's first searches do not wait on the disk.

In a sqlite online store the listings share one file with every embedding. After a reboot, each search's listing read
seeks through that file; read in order, the whole file comes in at the disk's sequential speed, and walking just the
listing table's b-tree (reading less, but seeking) is kept for a file too big to cache. The server runs this in a
background thread at start, and ``/readyz`` waits for it. docs/large-catalogs.md has the figures.
"""

# Measured at a million 512-d items (benchmarks/scale.py): the file is 7 GB; a vector search takes 7.6 to 14 ms while
# its listing reads seek, 3 to 4 ms once the pages are cached; the file reads in order in 15 s, the b-tree walk 114 s.

from __future__ import annotations

import logging
import os
import sqlite3
import threading
import time
from pathlib import Path

from mmsearch.store.features import ITEMS_VIEW, FeatureStore

log = logging.getLogger("mmsearch.readahead")


def listing_pages(store: FeatureStore) -> int:
    """Puts the online store's listing pages in the OS page cache; returns the bytes read (0 for Redis, which holds
    everything in memory, or when there is nothing to read)."""
    from feast.infra.online_stores.helpers import compute_table_id

    settings = store.store.config.online_store
    path = Path(getattr(settings, "path", "") or "")
    if getattr(settings, "type", "") != "sqlite" or not path.is_file():
        return 0
    size = path.stat().st_size
    if size <= available_memory() // 2:
        try:
            with open(path, "rb", buffering=0) as fh:
                if hasattr(os, "posix_fadvise"):  # Linux: larger read-ahead windows; macOS has no fadvise
                    os.posix_fadvise(fh.fileno(), 0, 0, os.POSIX_FADV_SEQUENTIAL)
                chunk = bytearray(8 << 20)
                while fh.readinto(chunk):
                    pass
            return size
        except OSError as exc:
            log.warning("the feature store was not read ahead: %s", exc)
            return 0
    table = compute_table_id(store.store.project, store.store.get_feature_view(ITEMS_VIEW))
    con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        # count(*) through an index visits every page of that index; the NOT INDEXED sum every page of the table
        con.execute(f'SELECT count(*) FROM "{table}" INDEXED BY "{table}_ek"').fetchone()
        payload = con.execute(f'SELECT sum(length(entity_key) + length(value)) FROM "{table}" NOT INDEXED')
        return int(payload.fetchone()[0] or 0)
    except sqlite3.Error as exc:  # an older or damaged store: searches say so themselves; this only saves time
        log.warning("the listing pages were not read ahead: %s", exc)
        return 0
    finally:
        con.close()


def in_background(store: FeatureStore) -> threading.Event:
    """Runs ``listing_pages`` in a thread of its own; the event is set when it is done (or has given up)."""
    done = threading.Event()

    def run() -> None:
        try:
            started = time.perf_counter()
            covered = listing_pages(store)
            took = time.perf_counter() - started
            if covered:
                print(f"read {covered / 2**20:,.0f} MB of the feature store ahead in {took:.1f} s", flush=True)
        finally:
            done.set()

    threading.Thread(target=run, name="listing-read-ahead", daemon=True).start()
    return done


def available_memory() -> int:
    """Bytes the kernel could hand out now without swapping (MemAvailable), or a quarter of RAM where unknown."""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // 4
