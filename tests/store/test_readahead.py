from datetime import UTC, datetime

from mmsearch.ingest import catalog
from mmsearch.store import features, readahead


def test_the_listing_pages_are_read_ahead_and_a_damaged_store_only_skips_it(tmp_path, demo_manifest, monkeypatch):
    cat = catalog.load_catalog(str(demo_manifest), tmp_path)
    store = features.FeatureStore(tmp_path / "data")
    store.apply()
    listing = features.listing_frame(cat.items, cat.extra_columns())
    store.write_items("cat-a", listing, datetime.now(UTC))
    store.write_online()
    db = store.data_dir / "feast" / "online_store.db"
    assert readahead.listing_pages(store) == db.stat().st_size  # small enough to cache: the whole file, in order
    monkeypatch.setattr(readahead, "available_memory", lambda: 1024)  # too big to cache: the listing b-tree only
    walked = readahead.listing_pages(store)
    assert 0 < walked < db.stat().st_size
    assert 100 < walked / len(listing) < 4000  # listing fields and keys of each item, six fields a row
    db.write_bytes(b"not a database" * 300)
    assert readahead.listing_pages(store) == 0  # searches report the damage themselves; the read-ahead just gives up
