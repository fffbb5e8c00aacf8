"""Item features in Feast: the ``feature_repo/`` definitions, incremental writes, materialization and online reads.

Two feature views, both keyed by content so that a write never changes a row an index already serves:

- ``catalog_items`` — what a person sees of an item, keyed by (catalog, item, revision); the revision is a hash of the
  row's fields, so a changed title is a new row and the index still serving the old title keeps reading it.
- ``image_embeddings`` — one vector per (catalog, item, model, image_hash); the image_hash is a hash of the picture's
  bytes (or of a precomputed vector), so an unchanged picture is never encoded twice.

The catalog is part of both keys: two catalogs whose item ids overlap never see each other's rows. Each build appends
only its new rows to the offline store (one parquet part per build and view) and writes the same rows, and no others,
to the online store.
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
from cachetools import LRUCache
from tqdm.auto import tqdm

from mmsearch.resources import FEATURE_REPO_DIR

ITEMS_VIEW = "catalog_items"
EMBEDDINGS_VIEW = "image_embeddings"  # (catalog_embeddings, keyed by "picture", before: re-encoded once, not read)
METADATA_FIELDS = ["title", "description", "category", "price", "image", "extra_json"]
_READ_BATCH = 1000  # rows per online read; keeps each sqlite query and protobuf response small
_WRITE_BATCH = 10_000  # rows per online write when the Feast CLI materializes
ONLINE_CHUNK = 20_000  # rows per online write of a build: bounds its memory whatever the catalog's size


class FeatureStoreError(RuntimeError):
    """The feature store cannot be opened or written (bad online-store setting, unreachable Redis, ...)."""


class StoreUnavailable(FeatureStoreError):
    """The online store did not answer a read: locked, missing, damaged or unreachable. Searches cannot show listings
    until it does; the service stays up and says so (``/readyz``)."""


def source_dirs(data_dir: Path) -> tuple[Path, Path]:
    base = Path(data_dir).resolve() / "feast"
    return base / ITEMS_VIEW, base / EMBEDDINGS_VIEW


def definitions(data_dir: Path):
    """The Feast objects, built in one place for both ``feast apply`` and mmsearch."""
    from feast import Entity, FeatureView, Field, FileSource, ValueType
    from feast.types import Array, Float32, Float64, String

    items_dir, embeddings_dir = source_dirs(data_dir)
    catalog = Entity(
        name="catalog",
        join_keys=["catalog_id"],
        value_type=ValueType.STRING,
        description="one indexed catalog; item ids are unique within it only",
    )
    item = Entity(name="item", join_keys=["item_id"], value_type=ValueType.STRING, description="a catalog item")
    revision = Entity(
        name="revision",
        join_keys=["revision"],
        value_type=ValueType.STRING,
        description="a hash of an item's listing fields",
    )
    model = Entity(
        name="model",
        join_keys=["model_id"],
        value_type=ValueType.STRING,
        description="the encoder that produced an embedding",
    )
    image_hash = Entity(
        name="image_hash",
        join_keys=["image_hash"],
        value_type=ValueType.STRING,
        description="a hash of the picture's bytes (or of a precomputed vector)",
    )
    items = FeatureView(
        name=ITEMS_VIEW,
        entities=[catalog, item, revision],
        ttl=timedelta(0),
        online=True,
        schema=[
            Field(name="title", dtype=String),
            Field(name="description", dtype=String),
            Field(name="category", dtype=String),
            Field(name="price", dtype=Float64),
            Field(name="image", dtype=String),
            Field(name="extra_json", dtype=String),
        ],
        source=FileSource(name="catalog_items_source", path=str(items_dir), timestamp_field="event_timestamp"),
        description="what a person sees of an item; extra_json holds the catalog's own columns",
    )
    embeddings = FeatureView(
        name=EMBEDDINGS_VIEW,
        entities=[catalog, item, model, image_hash],
        ttl=timedelta(0),
        online=True,
        schema=[Field(name="embedding", dtype=Array(Float32))],
        source=FileSource(name="image_embeddings_source", path=str(embeddings_dir), timestamp_field="event_timestamp"),
        description="L2-normalised image embeddings, one row per (catalog, item, model, image_hash)",
    )
    return catalog, item, revision, model, image_hash, items, embeddings


def online_store_config(spec: str, data_dir: Path) -> dict:
    """``sqlite`` (a file in the data directory) or ``redis://[:password@]host:port[/db]`` for several replicas."""
    spec = (spec or "sqlite").strip()
    if spec == "sqlite":
        return {"type": "sqlite", "path": str(Path(data_dir).resolve() / "feast" / "online_store.db")}
    if spec.startswith(("redis://", "rediss://")):
        from urllib.parse import urlparse

        url = urlparse(spec)
        parts = [f"{url.hostname or 'localhost'}:{url.port or 6379}"]
        if url.path.strip("/"):
            parts.append(f"db={url.path.strip('/')}")
        if url.password:
            parts.append(f"password={url.password}")
        if url.scheme == "rediss":
            parts.append("ssl=true")
        return {"type": "redis", "connection_string": ",".join(parts)}
    raise FeatureStoreError(f"unknown online store {spec!r}: use sqlite or redis://host:port[/db]")


def revision(row: dict) -> str:
    """The listing's identity: any change to a shown or filterable field gives a new revision."""
    return hashlib.blake2b(json.dumps(row, sort_keys=True, default=str).encode(), digest_size=8).hexdigest()


class FeatureStore:
    """mmsearch's view of the Feast repository in ``feature_repo/`` with its data under ``data_dir``."""

    def __init__(self, data_dir: Path, online_store: str = "sqlite", listing_cache: int = 0):
        import feast
        from feast.repo_config import RepoConfig

        self.data_dir = Path(data_dir).resolve()
        self.online_store = re.sub(r"//[^@/]*@", "//", online_store or "sqlite")  # said in errors: no password
        (self.data_dir / "feast").mkdir(parents=True, exist_ok=True)
        config = RepoConfig(
            project="mmsearch",
            provider="local",
            registry=str(self.data_dir / "feast" / "registry.db"),
            online_store=online_store_config(online_store, self.data_dir),
            offline_store={"type": "file"},
            entity_key_serialization_version=3,
            # Written to the online store in batches: one batch of a million 512-d vectors as
            # protobuf values would take several GB.
            materialization={"online_write_batch_size": _WRITE_BATCH},
            repo_path=str(FEATURE_REPO_DIR),
        )
        self.store = feast.FeatureStore(config=config)
        self.items_dir, self.embeddings_dir = source_dirs(self.data_dir)
        self._pending: list[tuple[str, object]] = []  # (view, rows) appended and not yet online
        # Listings are keyed by content (catalog, item, revision), so a row once read never changes: a kept copy is
        # never stale, and popular items skip Feast's per-call cost (about a millisecond of Python per read).
        self._listings: LRUCache | None = LRUCache(listing_cache) if listing_cache > 0 else None
        self._listings_lock = threading.Lock()
        self.listing_hits = self.listing_misses = 0

    # --- offline writes: one new part per build and view ---------------------------------------------------------

    def write_items(self, catalog_id: str, frame: pd.DataFrame, when: datetime) -> int:
        """Appends listing rows (item_id, revision and METADATA_FIELDS) to the offline store."""
        rows = frame[["item_id", "revision", *METADATA_FIELDS]].assign(catalog_id=catalog_id, event_timestamp=when)
        self._pending.append((ITEMS_VIEW, rows))
        return self._append(self.items_dir, rows)

    def write_embeddings(
        self,
        catalog_id: str,
        model_id: str,
        item_ids: list[str],
        hashes: list[str],
        vectors: np.ndarray,
        when: datetime,
    ) -> int:
        import pyarrow as pa

        if len(item_ids) == 0:
            return 0
        flat = np.ascontiguousarray(vectors, dtype=np.float32)
        offsets = pa.array(np.arange(0, flat.size + 1, flat.shape[1], dtype=np.int32))
        rows = pa.table(
            {
                "catalog_id": pa.array([catalog_id] * len(item_ids)),
                "item_id": pa.array(list(map(str, item_ids))),
                "model_id": pa.array([model_id] * len(item_ids)),
                "image_hash": pa.array(list(hashes)),
                # One flat buffer with offsets: no Python object per vector, whatever the catalog's size.
                "embedding": pa.ListArray.from_arrays(offsets, pa.array(flat.ravel())),
                "event_timestamp": pa.array([when] * len(item_ids), pa.timestamp("us", tz="UTC")),
            }
        )
        self._pending.append((EMBEDDINGS_VIEW, rows))
        return self._append(self.embeddings_dir, rows)

    def _append(self, directory: Path, rows) -> int:
        """Writes one new part (a DataFrame or an Arrow table), atomically."""
        import pyarrow.parquet as pq

        if len(rows) == 0:
            return 0
        directory.mkdir(parents=True, exist_ok=True)
        part = directory / f"part-{_now():%Y%m%dT%H%M%S%f}-{uuid.uuid4().hex[:8]}.parquet"
        tmp = part.with_name("." + part.name + ".tmp")  # dot-files are invisible to the parquet dataset reader
        if isinstance(rows, pd.DataFrame):
            rows.to_parquet(tmp, index=False)
        else:
            pq.write_table(rows, tmp)
        tmp.replace(part)
        return len(rows)

    # --- Feast -----------------------------------------------------------------------------------------------

    def apply(self) -> None:
        self.store.apply(list(definitions(self.data_dir)))

    def write_online(self) -> None:
        """Brings the rows this build appended to the offline store to the online store, and nothing older.

        Through Feast's ``write_to_online_store``, in chunks of ONLINE_CHUNK rows from the rows in hand: Feast's own
        ``materialize`` would reread every offline part of a view to find this build's window, and holds the whole
        window in memory (over 10 GB for a million 512-d vectors). The offline parts stay the record: ``feast
        materialize`` rebuilds an online store (a new Redis, say) from them."""
        for view, rows in self._pending:
            for start in range(0, len(rows), ONLINE_CHUNK):
                chunk = (
                    rows.iloc[start : start + ONLINE_CHUNK]
                    if isinstance(rows, pd.DataFrame)
                    else rows.slice(start, ONLINE_CHUNK).to_pandas()
                )
                self.store.write_to_online_store(view, chunk)
        self._pending.clear()

    def embeddings(
        self,
        catalog_id: str,
        model_id: str,
        item_ids: list[str],
        hashes: list[str],
        progress: bool = True,
        required: bool = True,
    ) -> np.ndarray | list:
        """Vectors from the online store in the order asked. ``required``: raise if any is missing; otherwise return
        a list with None where Feast has no vector for that key."""
        out: np.ndarray | None = None  # filled batch by batch: never a Python float per value for the whole catalog
        found = np.zeros(len(item_ids), dtype=bool)
        for start in tqdm(
            range(0, len(item_ids), _READ_BATCH),
            desc="reading embeddings from Feast",
            unit="batch",
            disable=not progress or len(item_ids) <= _READ_BATCH,
        ):
            keys = zip(item_ids[start : start + _READ_BATCH], hashes[start : start + _READ_BATCH])
            res = self.store.get_online_features(
                features=[f"{EMBEDDINGS_VIEW}:embedding"],
                entity_rows=[
                    {"catalog_id": catalog_id, "item_id": i, "model_id": model_id, "image_hash": h} for i, h in keys
                ],
            ).to_dict()
            for n, vec in enumerate(res["embedding"]):
                if vec is not None:
                    if out is None:
                        out = np.zeros((len(item_ids), len(vec)), dtype=np.float32)
                    out[start + n], found[start + n] = vec, True
        if not required:
            return [out[n] if ok else None for n, ok in enumerate(found)]
        if not found.all():
            missing = [item_ids[n] for n in np.flatnonzero(~found)[:3]]
            raise LookupError(f"Feast has no {model_id} embedding for {int((~found).sum())} items, e.g. {missing}")
        return out if out is not None else np.zeros((0, 0), dtype=np.float32)

    def metadata(self, catalog_id: str, item_ids: list[str], revisions: list[str]) -> list[dict]:
        """Listings in the order asked, from the listing cache or the online store; a key with no row comes back
        with empty fields."""
        keys = [(catalog_id, i, r) for i, r in zip(item_ids, revisions)]
        kept: dict[tuple, dict] = {}
        if self._listings is not None:
            with self._listings_lock:
                kept = {k: rec for k in keys if (rec := self._listings.get(k)) is not None}
                self.listing_hits += len(kept)
                self.listing_misses += len(keys) - len(kept)
        wanted = [k for k in dict.fromkeys(keys) if k not in kept]
        read = self._read_listings(catalog_id, [k[1] for k in wanted], [k[2] for k in wanted])
        fresh = {k: rec for k, rec in zip(wanted, read)}
        if self._listings is not None and fresh:
            with self._listings_lock:
                for k, rec in fresh.items():
                    if rec.get("title") is not None:  # a key Feast has no row for is not kept
                        self._listings[k] = rec
        return [dict(kept.get(k) or fresh[k]) for k in keys]

    def _read_listings(self, catalog_id: str, item_ids: list[str], revisions: list[str]) -> list[dict]:
        out = []
        for start in range(0, len(item_ids), _READ_BATCH):
            chunk = list(zip(item_ids[start : start + _READ_BATCH], revisions[start : start + _READ_BATCH]))
            try:
                res = self.store.get_online_features(
                    features=[f"{ITEMS_VIEW}:{f}" for f in METADATA_FIELDS],
                    entity_rows=[{"catalog_id": catalog_id, "item_id": i, "revision": r} for i, r in chunk],
                ).to_dict()
            except Exception as exc:  # sqlite, Redis and Feast each raise their own kinds; all mean the same here
                raise StoreUnavailable(
                    f"the item listings cannot be read from the Feast online store "
                    f"({self.online_store}): {type(exc).__name__}: {exc}"
                ) from exc
            for n, (item_id, _) in enumerate(chunk):
                rec = {f: res[f][n] for f in METADATA_FIELDS}
                extra = json.loads(rec.pop("extra_json") or "{}")
                out.append({"item_id": item_id, **rec, **extra})
        return out

    def readable(self) -> bool:
        """The online store answers a read (used by health checks and after a Redis restart)."""
        try:
            self._read_listings("-", ["-"], ["-"])  # never from the cache
            return True
        except StoreUnavailable:
            return False


def listing_frame(items: pd.DataFrame, extra_cols: list[str]) -> pd.DataFrame:
    """The catalog as Feast listing rows: METADATA_FIELDS plus each row's revision."""
    frame = pd.DataFrame(
        {
            "item_id": items["item_id"].astype(str).to_numpy(),
            "title": items["title"].astype(str).to_numpy(),
            "description": items["description"].astype(str).to_numpy(),
            "category": items["category"].astype(str).to_numpy(),
            "price": pd.to_numeric(items["price"]).astype("float64").to_numpy(),
            "image": items["image"].astype(str).to_numpy(),
            "extra_json": [
                json.dumps({c: row[c] for c in extra_cols}, default=str, sort_keys=True)
                for row in items[extra_cols].to_dict("records")
            ]
            if extra_cols
            else ["{}"] * len(items),
        }
    )
    fields = frame[METADATA_FIELDS].astype(str).to_numpy()
    frame["revision"] = [revision(list(row)) for row in fields]
    return frame


def _now() -> datetime:
    return datetime.now(UTC)
