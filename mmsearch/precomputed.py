"""Bring your own embeddings: vectors made elsewhere (a cluster, another service) are indexed without encoding.

Two places hold them: an ``embedding`` column in a parquet manifest, or a side file (``--embeddings FILE``, parquet
with ``item_id`` and ``embedding``). Either way they must say which model made them — ``--embeddings-model`` or the
parquet file's ``mmsearch.model_id`` metadata — since a query is encoded by the index's model and vectors of another
model would rank nonsense without any error.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from .catalog import EMBEDDING_COLUMN, CatalogError

MODEL_KEY = b"mmsearch.model_id"


def load(config, model_id: str, dim: int) -> dict[str, np.ndarray]:
    """{item_id: unit vector} from the side file or the manifest; {} when the catalog carries none."""
    source = Path(config.embeddings) if config.embeddings else None
    if source is None:
        manifest = Path(str(config.catalog)).expanduser()
        if manifest.suffix.lower() != ".parquet" or not manifest.is_file():
            return {}
        if EMBEDDING_COLUMN not in pq.read_schema(manifest).names:
            return {}
        source = manifest
    if not source.is_file():
        raise CatalogError(f"embeddings file not found: {source}")
    try:
        table = pq.read_table(source, columns=["item_id", EMBEDDING_COLUMN])
    except (OSError, ValueError, KeyError) as exc:
        raise CatalogError(f"cannot read precomputed embeddings from {source}: it needs item_id and "
                           f"{EMBEDDING_COLUMN} columns ({exc})") from exc
    declared = config.embeddings_model or (table.schema.metadata or {}).get(MODEL_KEY, b"").decode()
    if not declared:
        raise CatalogError(f"{source} carries embeddings but does not say which model made them: pass "
                           f"--embeddings-model {model_id} (the index's model) if they are that model's")
    if declared not in (model_id, config.model):
        raise CatalogError(f"the embeddings in {source} were made with {declared!r}, but this index's model is "
                           f"{model_id!r} ({config.model}); queries would be encoded by another model than the items."
                           " Build with that model (--model), or supply its embeddings")
    ids = np.asarray([str(i) for i in table.column("item_id").to_pylist()], dtype=object)
    column = table.column(EMBEDDING_COLUMN).combine_chunks()
    present = ~np.asarray(column.is_null().to_numpy(zero_copy_only=False), dtype=bool)
    lengths = pc.list_value_length(column).to_numpy(zero_copy_only=False)
    wrong = np.flatnonzero(present & (np.nan_to_num(lengths, nan=-1) != dim))
    if len(wrong):
        raise CatalogError(f"item {ids[wrong[0]]!r}: its embedding has {int(lengths[wrong[0]])} values, but "
                           f"{model_id} makes {dim}-dimensional ones ({len(wrong)} items like it)")
    # One flat float32 buffer, not a Python list per item: a million 512-d vectors stay ~2 GB.
    vectors = pc.list_flatten(column.filter(pa.array(present))).to_numpy(zero_copy_only=False)
    vectors = vectors.astype(np.float32).reshape(-1, dim)  # a writable copy: arrow buffers are read-only
    norms = np.linalg.norm(vectors, axis=1)
    bad = np.flatnonzero(~np.isfinite(norms) | (norms == 0))
    if len(bad):
        raise CatalogError(f"item {ids[present][bad[0]]!r}: its embedding is zero or not finite")
    vectors /= norms[:, None]
    return dict(zip(ids[present].tolist(), vectors))  # rows are views into the one buffer
