"""Hits dressed with their listings: each (item, score) becomes a Hit with the title, picture, price and the
catalog's other columns, read from the Feast online store at the revision the loaded index holds."""

from __future__ import annotations

from mmsearch.ingest.catalog import PICTURES
from mmsearch.search.results import Hit, picture_url
from mmsearch.search.snapshot import Snapshot
from mmsearch.search.stages import stage
from mmsearch.store.features import FeatureStore

CORE = ("title", "image", "price", "category", "description", "picture_text")


def dress(store: FeatureStore, snapshot: Snapshot, hits: list[tuple[str, float]]) -> list[Hit]:
    index = snapshot.index
    ids = [item_id for item_id, _ in hits]
    revisions = [index.revisions[index.row(i)] for i in ids]
    with stage("feast_read"):
        listings = store.metadata(index.catalog_id, ids, revisions)
    several = index.pictures is not None  # else every product has one picture: no look at its row needed
    results = []
    for (item_id, score), listing in zip(hits, listings):
        core = {f: listing.get(f) for f in CORE}
        # one route per picture: their paths are never shown
        urls = [picture_url(item_id, n) for n in range(len(index.picture_paths(item_id)) if several else 1)]
        results.append(
            Hit.made(
                item_id=item_id,
                score=round(score, 4),
                title=core["title"] or item_id,
                image=core["image"] or "",
                price=core["price"],
                category=core["category"] or "",
                description=core["description"] or "",
                picture_text=core["picture_text"] or "",
                image_urls=urls,
                matched_image_url=urls[0],  # the search that found it says which matched (searcher.py)
                metadata={k: v for k, v in listing.items() if k not in core and k not in ("item_id", PICTURES)},
            )
        )
    return results
