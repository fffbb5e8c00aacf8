"""Bring your own embeddings: vectors made elsewhere (a cluster, another service) are indexed without encoding.

Two places hold them: an ``embedding`` column in a parquet manifest, or a side file (``--embeddings FILE``, parquet
with ``item_id`` and ``embedding``). Either way they must say which model made them — ``--embeddings-model`` or the
parquet file's ``mmsearch.model_id`` metadata — since a query is encoded by the index's model and vectors of another
model would rank nonsense without any error.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow.compute as pc
import pyarrow.parquet as pq

from mmsearch.ingest.catalog import EMBEDDING_COLUMN, CatalogError

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
        parquet = pq.ParquetFile(source, pre_buffer=False)  # one batch's bytes at a time
        names = parquet.schema_arrow.names
    except (OSError, ValueError) as exc:
        raise CatalogError(f"cannot read precomputed embeddings from {source}: {exc}") from exc
    if "item_id" not in names or EMBEDDING_COLUMN not in names:
        raise CatalogError(
            f"{source} needs item_id and {EMBEDDING_COLUMN} columns to carry embeddings (it has {', '.join(names)})"
        )
    metadata = parquet.schema_arrow.metadata or {}
    declared = config.embeddings_model or metadata.get(MODEL_KEY, b"").decode()
    if not declared:
        raise CatalogError(
            f"{source} carries embeddings but does not say which model made them: pass "
            f"--embeddings-model {model_id} (the index's model) if they are that model's"
        )
    if declared not in (model_id, config.model):
        raise CatalogError(
            f"the embeddings in {source} were made with {declared!r}, but this index's model is "
            f"{model_id!r} ({config.model}); queries would be encoded by another model than the items."
            " Build with that model (--model), or supply its embeddings"
        )
    return _read_vectors(parquet, model_id, dim)


def _read_vectors(parquet: pq.ParquetFile, model_id: str, dim: int) -> dict[str, np.ndarray]:
    """Batch by batch into one float32 matrix: never the whole column as Arrow copies, nor a Python list per item
    (a million 512-d vectors stay ~2 GB)."""
    out = np.empty((parquet.metadata.num_rows, dim), dtype=np.float32)
    ids: list[str] = []
    present = np.zeros(parquet.metadata.num_rows, dtype=bool)
    pos = 0
    for batch in parquet.iter_batches(batch_size=65_536, columns=["item_id", EMBEDDING_COLUMN]):
        batch_ids = [str(i) for i in batch.column(0).to_pylist()]
        column = batch.column(1)
        valid = ~np.asarray(column.is_null().to_numpy(zero_copy_only=False), dtype=bool)
        lengths = pc.list_value_length(column).to_numpy(zero_copy_only=False)
        wrong = np.flatnonzero(valid & (np.nan_to_num(lengths, nan=-1) != dim))
        if len(wrong):
            raise CatalogError(
                f"item {batch_ids[wrong[0]]!r}: its embedding has {int(lengths[wrong[0]])} values, "
                f"but {model_id} makes {dim}-dimensional ones ({len(wrong)} items like it)"
            )
        rows = pos + np.flatnonzero(valid)
        out[rows] = pc.list_flatten(column).to_numpy(zero_copy_only=False).reshape(-1, dim)
        norms = np.linalg.norm(out[rows], axis=1)
        bad = np.flatnonzero(~np.isfinite(norms) | (norms == 0))
        if len(bad):
            raise CatalogError(f"item {batch_ids[int(rows[bad[0]] - pos)]!r}: its embedding is zero or not finite")
        out[rows] /= norms[:, None]
        present[rows] = True
        ids.extend(batch_ids)
        pos += len(batch_ids)
    return {ids[i]: out[i] for i in np.flatnonzero(present)}  # rows are views into the one matrix
