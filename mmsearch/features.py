"""The Feast feature store: item metadata and item embeddings, keyed by catalog item.

Two feature views over parquet sources in the data directory: ``item_metadata`` (entity: item) and
``item_embeddings`` (entities: item and model), so several models' embeddings sit side by side. The index is built from
embeddings read back through Feast after materialization, and the app reads metadata from the online store.
"""
from __future__ import annotations

import json
import os
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from .catalog import Catalog
from .config import FEATURE_REPO_DIR

METADATA_VIEW = "item_metadata"
EMBEDDINGS_VIEW = "item_embeddings"
METADATA_FIELDS = ["title", "description", "category", "price", "image", "extra_json"]
_READ_BATCH = 1000  # rows per online read; keeps each sqlite query and protobuf response small


def source_paths(data_dir: Path) -> tuple[Path, Path]:
    base = Path(data_dir).resolve() / "feast"
    return base / "item_metadata.parquet", base / "item_embeddings.parquet"


def definitions(data_dir: Path):
    """The Feast objects, built in one place for both ``feast apply`` and mmsearch."""
    from feast import Entity, FeatureView, Field, FileSource, ValueType
    from feast.types import Array, Float32, Float64, String

    metadata_path, embeddings_path = source_paths(data_dir)
    item = Entity(name="item", join_keys=["item_id"], value_type=ValueType.STRING, description="a catalog item")
    model = Entity(name="model", join_keys=["model_id"], value_type=ValueType.STRING,
                   description="the encoder that produced an embedding")
    metadata = FeatureView(
        name=METADATA_VIEW, entities=[item], ttl=timedelta(0), online=True,
        schema=[Field(name="title", dtype=String), Field(name="description", dtype=String),
                Field(name="category", dtype=String), Field(name="price", dtype=Float64),
                Field(name="image", dtype=String), Field(name="extra_json", dtype=String)],
        source=FileSource(name="item_metadata_source", path=str(metadata_path), timestamp_field="event_timestamp"),
        description="what a person sees of an item; extra_json holds the catalog's own columns")
    embeddings = FeatureView(
        name=EMBEDDINGS_VIEW, entities=[item, model], ttl=timedelta(0), online=True,
        schema=[Field(name="embedding", dtype=Array(Float32))],
        source=FileSource(name="item_embeddings_source", path=str(embeddings_path), timestamp_field="event_timestamp"),
        description="L2-normalised image embeddings, one row per (item, model)")
    return item, model, metadata, embeddings


class FeatureStore:
    """mmsearch's view of the Feast repository in ``feature_repo/`` with its data under ``data_dir``."""

    def __init__(self, data_dir: Path):
        import feast

        self.data_dir = Path(data_dir).resolve()
        (self.data_dir / "feast").mkdir(parents=True, exist_ok=True)
        # feature_store.yaml names its paths through this variable; Feast expands it when the store opens.
        os.environ["MMSEARCH_DATA_DIR"] = str(self.data_dir)
        self.store = feast.FeatureStore(repo_path=str(FEATURE_REPO_DIR))
        self.metadata_path, self.embeddings_path = source_paths(self.data_dir)

    # --- offline writes --------------------------------------------------------------------------------------

    def write_items(self, catalog: Catalog, when: datetime | None = None) -> None:
        items = catalog.items
        extra_cols = catalog.extra_columns()
        frame = pd.DataFrame({
            "item_id": items["item_id"].astype(str),
            "title": items["title"].astype(str), "description": items["description"].astype(str),
            "category": items["category"].astype(str), "price": pd.to_numeric(items["price"]).astype("float64"),
            "image": items["image"].astype(str),
            "extra_json": [json.dumps({c: row[c] for c in extra_cols}, default=str)
                           for row in items[extra_cols].to_dict("records")] if extra_cols else ["{}"] * len(items),
            "event_timestamp": when or _now()})
        _upsert_parquet(self.metadata_path, frame, ["item_id"])

    def write_embeddings(self, model_id: str, item_ids: list[str], vectors: np.ndarray,
                         when: datetime | None = None) -> None:
        frame = pd.DataFrame({"item_id": list(map(str, item_ids)), "model_id": model_id,
                              "embedding": [v.astype(np.float32) for v in vectors], "event_timestamp": when or _now()})
        _upsert_parquet(self.embeddings_path, frame, ["item_id", "model_id"])

    # --- Feast -----------------------------------------------------------------------------------------------

    def apply(self) -> None:
        self.store.apply(list(definitions(self.data_dir)))

    def materialize(self) -> None:
        end = _now() + timedelta(seconds=1)
        self.store.materialize(start_date=datetime(2000, 1, 1, tzinfo=timezone.utc), end_date=end)

    def embeddings(self, model_id: str, item_ids: list[str], progress: bool = True) -> np.ndarray:
        """Reads embeddings back from the online store; raises if any item has none for this model."""
        rows = []
        for start in tqdm(range(0, len(item_ids), _READ_BATCH), desc="reading embeddings from Feast",
                          unit="batch", disable=not progress):
            chunk = item_ids[start:start + _READ_BATCH]
            res = self.store.get_online_features(
                features=[f"{EMBEDDINGS_VIEW}:embedding"],
                entity_rows=[{"item_id": i, "model_id": model_id} for i in chunk]).to_dict()
            rows.extend(res["embedding"])
        missing = [i for i, v in zip(item_ids, rows) if v is None]
        if missing:
            raise LookupError(f"Feast has no {model_id} embedding for {len(missing)} items, e.g. {missing[:3]}")
        return np.asarray(rows, dtype=np.float32)

    def metadata(self, item_ids: list[str]) -> list[dict]:
        """Item metadata from the online store, in the order asked; unknown ids come back with empty fields."""
        out = []
        for start in range(0, len(item_ids), _READ_BATCH):
            chunk = item_ids[start:start + _READ_BATCH]
            res = self.store.get_online_features(features=[f"{METADATA_VIEW}:{f}" for f in METADATA_FIELDS],
                                                 entity_rows=[{"item_id": i} for i in chunk]).to_dict()
            for n, item_id in enumerate(chunk):
                rec = {f: res[f][n] for f in METADATA_FIELDS}
                extra = json.loads(rec.pop("extra_json") or "{}")
                out.append({"item_id": item_id, **rec, **extra})
        return out


def _now() -> datetime:
    return datetime.now(timezone.utc)


def _upsert_parquet(path: Path, new: pd.DataFrame, keys: list[str]) -> None:
    """Replaces rows with the same keys and keeps the rest; written to a temp file and renamed into place."""
    if path.exists():
        old = pd.read_parquet(path)
        merged = old.merge(new[keys], on=keys, how="left", indicator=True)
        old = old[(merged["_merge"] == "left_only").to_numpy()]
        new = pd.concat([old, new], ignore_index=True)
    tmp = path.with_suffix(".parquet.tmp")
    new.to_parquet(tmp, index=False)
    tmp.replace(path)

