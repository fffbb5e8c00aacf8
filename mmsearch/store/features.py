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
import logging
import re
import threading
import uuid
import warnings
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
from cachetools import LRUCache
from tqdm.auto import tqdm

from mmsearch.resources import FEATURE_REPO_DIR
from mmsearch.store.errors import FeatureStoreError, StoreUnavailable
from mmsearch.store.online import OnlineReads

ITEMS_VIEW = "catalog_items"
EMBEDDINGS_VIEW = "image_embeddings"  # (catalog_embeddings, keyed by "picture", before: re-encoded once, not read)
METADATA_FIELDS = ["title", "description", "category", "price", "image", "extra_json"]
_READ_BATCH = 1000  # rows per online read; keeps each sqlite query and protobuf response small
_WRITE_BATCH = 10_000  # rows per online write when the Feast CLI materializes
ONLINE_CHUNK = 20_000  # rows per online write of a build: bounds its memory whatever the catalog's size
SENTINEL_ID = "__mmsearch_build__"  # the item id of a build's mark in the online store (mark_complete)
# With pymilvus installed (--vector-store milvus://), Feast 0.67 imports its Milvus online store while reading and
# pydantic warns, once a build, that a field of that store's config shadows its parent's: Feast's own, nothing a
# person running a build can act on.
warnings.filterwarnings(
    "ignore", message='Field name "vector_enabled" in "MilvusOnlineStoreConfig"', category=UserWarning
)


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


def online_store_config(spec: str, data_dir: Path, timeout_s: float = 1.0) -> dict:
    """``sqlite`` (a file in the data directory) or ``redis://[:password@]host:port[/db]`` for several replicas; a
    Redis connection and each answer on it are given ``timeout_s``."""
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
        parts += [f"socket_connect_timeout={timeout_s:g}", f"socket_timeout={timeout_s:g}"]
        return {"type": "redis", "connection_string": ",".join(parts)}
    raise FeatureStoreError(f"unknown online store {spec!r}: use sqlite or redis://host:port[/db]")


def revision(row: dict) -> str:
    """The listing's identity: any change to a shown or filterable field gives a new revision."""
    return hashlib.blake2b(json.dumps(row, sort_keys=True, default=str).encode(), digest_size=8).hexdigest()


class FeatureStore:
    """mmsearch's view of the Feast repository in ``feature_repo/`` with its data under ``data_dir``."""

    def __init__(self, data_dir: Path, online_store: str = "sqlite", listing_cache: int = 0, timeout_s: float = 1.0):
        import feast
        from feast.repo_config import RepoConfig

        self.data_dir = Path(data_dir).resolve()
        self.online_store = re.sub(r"//[^@/]*@", "//", online_store or "sqlite")  # said in errors: no password
        (self.data_dir / "feast").mkdir(parents=True, exist_ok=True)
        config = RepoConfig(
            project="mmsearch",
            provider="local",
            registry=str(self.data_dir / "feast" / "registry.db"),
            online_store=online_store_config(online_store, self.data_dir, timeout_s),
            offline_store={"type": "file"},
            entity_key_serialization_version=3,
            # Written to the online store in batches: one batch of a million 512-d vectors as
            # protobuf values would take several GB.
            materialization={"online_write_batch_size": _WRITE_BATCH},
            repo_path=str(FEATURE_REPO_DIR),
        )
        self.store = feast.FeatureStore(config=config)
        self.online = OnlineReads(self.online_store, timeout_s)
        if config.online_store.type == "redis":
            _redis_fails_fast(self.store)
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
        try:
            if isinstance(rows, pd.DataFrame):
                rows.to_parquet(tmp, index=False)
            else:
                pq.write_table(rows, tmp)
            tmp.replace(part)
        except BaseException:
            tmp.unlink(missing_ok=True)  # a full disk leaves no half part behind
            raise
        return len(rows)

    # --- Feast -----------------------------------------------------------------------------------------------

    def apply(self) -> None:
        try:
            self.store.apply(list(definitions(self.data_dir)))
        except Exception as exc:  # a Redis that is down, a registry that cannot be written
            raise FeatureStoreError(
                f"cannot set up the Feast feature store ({self.online_store}): {_said(exc)}"
            ) from exc

    def _write_online(self, view: str, rows: pd.DataFrame) -> None:
        try:
            self.store.write_to_online_store(view, rows)
        except Exception as exc:  # Redis down, a full disk under sqlite: the build stops with one line
            raise FeatureStoreError(
                f"cannot write to the Feast online store ({self.online_store}): {_said(exc)}"
            ) from exc

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
                self._write_online(view, chunk)
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
            rows = [{"catalog_id": catalog_id, "item_id": i, "model_id": model_id, "image_hash": h} for i, h in keys]
            try:
                res = self.store.get_online_features(features=[f"{EMBEDDINGS_VIEW}:embedding"], entity_rows=rows)
                res = res.to_dict()
            except Exception as exc:  # a build's read: no deadline (a batch of 1,000 vectors may take a while)
                raise StoreUnavailable(f"cannot read embeddings from the Feast online store: {_said(exc)}") from exc
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
        """Listings in the order asked, from the listing cache or the online store; StoreUnavailable when the store
        does not answer, or lacks a row (it lost it)."""
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
        lost = [k[1] for k, rec in fresh.items() if rec.get("title") is None]
        if lost:  # every item of a loaded index has its row; none means the store lost it
            raise StoreUnavailable(
                f"The Feast online store ({self.online_store}) lacks the listings of {len(lost)} items of the loaded "
                f"index (e.g. {lost[0]!r}): it lost rows (a Redis restarted empty?). Run index_build.py with the "
                "same settings: it writes them back without encoding."
            )
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
            rows = [{"catalog_id": catalog_id, "item_id": i, "revision": r} for i, r in chunk]
            # sqlite, Redis and Feast each raise their own kinds; all mean the same here (online.py words them)
            res = self.online.read(lambda rows=rows: self._listing_rows(rows), probe=self._probe)
            for n, (item_id, _) in enumerate(chunk):
                rec = {f: res[f][n] for f in METADATA_FIELDS}
                extra = json.loads(rec.pop("extra_json") or "{}")
                out.append({"item_id": item_id, **rec, **extra})
        return out

    def _listing_rows(self, rows: list[dict]) -> dict:
        features = [f"{ITEMS_VIEW}:{f}" for f in METADATA_FIELDS]
        return self.store.get_online_features(features=features, entity_rows=rows).to_dict()

    def warm(self) -> None:
        """One read of the online store now: Feast's first read of a repository costs about 0.25 s (the stamps'), a
        visitor's first search would pay it. A store that does not answer is left to the reads' outage handling."""
        try:
            self.online.read(self._probe)
        except StoreUnavailable:
            pass  # said once in the log; searches answer 503 until it is back

    def _probe(self) -> None:
        self._listing_rows([{"catalog_id": "-", "item_id": "-", "revision": "-"}])

    def write_back(self, catalog_id: str, model_id: str, listing: pd.DataFrame, index) -> int:
        """Every listing and embedding ``index`` reads, written to the online store from what is in hand (the
        catalog's listing rows, the index's vectors): the rows the offline store already holds, for an online store
        that lost them; nothing is encoded."""
        ids = index.items["item_id"].astype(str).tolist()
        hashes = index.items["image_hash"].astype(str).tolist()
        listing = listing.set_index(listing["item_id"].astype(str)).loc[ids].reset_index(drop=True)  # the index's order
        for start in range(0, len(ids), ONLINE_CHUNK):
            end = min(start + ONLINE_CHUNK, len(ids))
            rows = listing.iloc[start:end][["item_id", "revision", *METADATA_FIELDS]]
            self._write_online(ITEMS_VIEW, rows.assign(catalog_id=catalog_id, event_timestamp=_now()))
            vectors = np.asarray(index.vectors[index.slots[start:end]], dtype=np.float32)
            self._write_online(
                EMBEDDINGS_VIEW,
                pd.DataFrame(
                    {
                        "catalog_id": catalog_id,
                        "item_id": ids[start:end],
                        "model_id": model_id,
                        "image_hash": hashes[start:end],
                        "embedding": list(vectors),
                        "event_timestamp": _now(),
                    }
                ),
            )
        return len(ids)

    # --- whether the online store holds a build's rows --------------------------------------------------------------

    def mark_complete(self, catalog_id: str, stamp: str, when: datetime) -> None:
        """Written last by a build, after every row it wrote online: its presence says the rows are there (a Redis
        restarted empty lacks it). A listing row under an item id no catalog has, in both stores, so that
        ``feast materialize`` brings it back with the rest."""
        row = {
            "item_id": SENTINEL_ID,
            "title": f"rows of the build {stamp} are online",
            "description": "",
            "category": "",
            "price": 0.0,
            "image": "",
            "extra_json": "{}",
            "revision": stamp,
        }
        frame = pd.DataFrame([row]).assign(catalog_id=catalog_id, event_timestamp=when)
        self._append(self.items_dir, frame)
        self._write_online(ITEMS_VIEW, frame)

    def holds(self, catalog_id: str, stamp: str | None, item_ids: list[str], revisions: list[str]) -> bool:
        """Whether the online store holds a build's rows: its mark (``stamp``), or where an older build left none, a
        sample of its listings. Raises StoreUnavailable when the store does not answer."""
        if stamp:
            return self._read_listings(catalog_id, [SENTINEL_ID], [stamp])[0].get("title") is not None
        step = max(1, len(item_ids) // 16)
        read = self._read_listings(catalog_id, item_ids[::step][:16], revisions[::step][:16])
        return all(row.get("title") is not None for row in read)


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


def _said(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"[:400]


def _redis_fails_fast(store) -> None:
    """No retries on the Redis client Feast makes: redis-py retries a refused connection three times with backoff
    (4.6 to 12.5 s against a dead Redis); the reads' own deadline and probe (online.py) do the waiting."""
    from redis.backoff import NoBackoff
    from redis.retry import Retry

    try:
        provider = store._get_provider()  # Feast keeps its client inside; there is no setting for its retries
        client = provider.online_store._get_client(store.config.online_store)
        client.set_retry(Retry(NoBackoff(), 0))
    except Exception as exc:  # noqa: BLE001 - a Feast without these internals: the deadline still bounds each read
        logging.getLogger("mmsearch.store").warning("the Redis client keeps its own retries: %s", exc)


def _now() -> datetime:
    return datetime.now(UTC)
