"""The index build pipeline: catalog -> change plan -> encoder -> Feast -> Faiss -> an index directory, atomically.

An index directory that already holds an index of the same catalog and model is updated: only new pictures and
pictures whose bytes changed are encoded, unchanged vectors are kept (or found in Feast), removed items leave every
part of the index, and listing changes reach Feast as new rows without encoding. ``--full`` rebuilds from scratch.
"""

from __future__ import annotations

import functools
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import metadata as importlib_metadata
from pathlib import Path

import numpy as np
import pandas as pd

from mmsearch.builder import product_pictures, update
from mmsearch.builder.picture_text import COLUMN, ReadingCost, products_text
from mmsearch.builder.sampling import sample_pictures
from mmsearch.encode.encoders import Encoder, load_encoder
from mmsearch.encode.files import encode_image_files
from mmsearch.encode.picture_text import OcrUnavailable
from mmsearch.index import kinds as index_kinds
from mmsearch.index import milvus_store
from mmsearch.index import vectors as vindex
from mmsearch.index.keyword import KEYWORD_DIR, KeywordIndex, item_texts
from mmsearch.ingest import embeddings as precomputed
from mmsearch.ingest.catalog import catalog_key, load_configured, write_report
from mmsearch.settings import Settings, replace
from mmsearch.store.features import FeatureStore

Progress = Callable[[float, str], None]  # (fraction done, what is happening)
LIBRARIES = ["torch", "open_clip_torch", "transformers", "faiss-cpu", "feast", "bm25s", "gradio", "numpy", "ray"]
COUNTS = ("added", "changed", "removed", "unchanged", "encoded")


class BuildError(RuntimeError):
    """The build could not produce an index (no usable items, unloadable model, ...)."""


def _versions() -> dict[str, str]:
    out = {}
    for name in LIBRARIES:
        try:
            out[name] = importlib_metadata.version(name)
        except importlib_metadata.PackageNotFoundError:
            pass
    return out


def previous_index(
    out: Path, model_id: str, catalog_id: str, dim: int, config: Settings, say: Progress
) -> vindex.VectorIndex | None:
    """The index at ``out`` if this build can update it; otherwise None (and why, when there was one)."""
    manifest = vindex.read_index_manifest(out)
    if manifest is None:
        return None
    why = None
    if config.full:
        why = "--full"
    elif manifest.get("layout") != vindex.LAYOUT:
        why = "it was built by an older mmsearch layout"
    elif manifest.get("model_id") != model_id or manifest.get("dimension") != dim:
        why = f"it was built with {manifest.get('model_id')}"
    elif manifest.get("catalog_id") != catalog_id:
        why = f"it holds another catalog ({manifest.get('catalog')})"
    elif not vindex.same_store(vindex.store_of(manifest), config.vector_store):
        why = f"it was built into the vector store {vindex.store_of(manifest)}"
    elif config.index_kind not in ("auto", manifest.get("index_kind")):
        why = f"it is a {manifest.get('index_kind')} index and --index-kind {config.index_kind} was asked for"
    if why is None:
        try:
            return vindex.load(out, model_id, writable=True, store=config.vector_store)
        except vindex.IndexLoadError as exc:
            why = str(exc)
    say(0.06, f"rebuilding {out} in full: {why}")
    return None


@dataclass
class Job:
    """One build's fixed context: its settings, model, feature store, target directory, clock and progress report."""

    config: Settings
    encoder: Encoder
    catalog_id: str
    store: FeatureStore
    out: Path
    when: datetime
    started: float
    say: Progress
    repair: bool = False  # the online store lost the previous build's rows: write every row back, not only new ones


def build_index(
    config: Settings, encoder: Encoder | None = None, progress: Progress | None = None
) -> vindex.VectorIndex:
    import pyarrow as pa

    # Arrow's default allocator (mimalloc) keeps what a build frees: reading a million 512-d vectors in batches
    # held 4.6 GB for 2 GB of data. The system allocator hands it back.
    pa.set_memory_pool(pa.system_memory_pool())
    say = progress or (lambda fraction, message: None)
    started = time.time()
    if config.index_kind != "auto":
        try:
            index_kinds.kind(config.index_kind)  # before minutes of encoding
        except ValueError as exc:
            raise BuildError(str(exc)) from exc
    say(0.0, f"reading catalog {config.catalog}")
    catalog = load_configured(config, known=None if config.full else update.known_images(config.index))
    if len(catalog.items) == 0:
        raise BuildError(
            f"no usable items in {config.catalog}: {catalog.summary()}; "
            + "; ".join(f"row {s.row}: {s.reason}" for s in catalog.skipped[:5])
        )
    say(0.04, f"loading model {config.model}")
    encoder = encoder or load_encoder(config.model, config.device)
    out = config.resolved_index(encoder.model_id)
    catalog_id = catalog_key(config.catalog)
    byo = precomputed.load(config, encoder.model_id, encoder.dim)
    prev = previous_index(out, encoder.model_id, catalog_id, encoder.dim, config, say)

    say(0.08, "comparing the catalog with the index")
    others = product_pictures.listed(catalog.items, None if prev is None else prev.pictures)
    reading = ReadingCost() if config.ocr else None
    words = None
    if reading is not None:

        def words(items: pd.DataFrame) -> dict[str, list[str]]:
            try:
                return {COLUMN: products_text(config.data_dir, items, others, config.ocr_min_confidence, say, reading)}
            except OcrUnavailable as exc:
                raise BuildError(str(exc)) from exc

    plan = update.plan(catalog.items, catalog.extra_columns(), None if prev is None else prev.items, byo, words)
    plan.pictures = others
    if reading is not None:
        say(0.11, f"read the words in {reading.read:,} pictures ({reading.per_picture()}), {reading.known:,} known")
    say(0.09, "opening the feature store")
    store = FeatureStore(config.data_dir, config.online_store, timeout_s=config.store_timeout_s)
    store.apply()  # before the first read: a fresh data directory has no views yet
    when = datetime.now(UTC)
    repair = prev is not None and not prev.held_by(store)
    if repair:
        say(0.09, "the online store lacks the served index's rows (a Redis restarted empty?): writing them back")
    try:
        job = Job(config, encoder, catalog_id, store, out, when, started, say, repair)
        return _index_and_write(job, catalog, plan, prev, byo, reading)
    finally:
        vindex.scratch_vectors(out).unlink(missing_ok=True)  # a scratch file the write did not take


def _index_and_write(
    job: Job, catalog, plan: update.Plan, prev: vindex.VectorIndex | None, byo: dict, reading: ReadingCost | None
) -> vindex.VectorIndex:
    built, plan, encoded = _vectors_and_index(job, plan, prev, byo)
    catalog = catalog.skip(*plan.skipped)
    counts = plan.counts | {"encoded": encoded}
    built.manifest |= {
        "model_id": job.encoder.model_id,
        "model_spec": job.config.model,
        "catalog": job.config.catalog,
        "catalog_id": job.catalog_id,
        "catalog_name": catalog.name,
        "data_dir": str(Path(job.config.data_dir).resolve()),
        "online_store": job.config.online_store,
        "image_roots": image_roots(plan.items["image"].tolist()),
        "rows": catalog.total_rows,
        "skipped": len(catalog.skipped),
        "warnings": len(catalog.warnings),
        "built_at": job.when.isoformat(timespec="seconds"),
        "mode": "update" if prev else "full",
        **counts,
        "versions": _versions(),
    }
    if reading is not None:
        built.manifest["ocr"] = reading.manifest() | {"min_confidence": job.config.ocr_min_confidence}

    if not isinstance(built.vectors, np.memmap):  # to a file now: later stages read a few rows, the write moves it
        built.vectors = vindex.stream_npy(vindex.scratch_vectors(job.out), [built.vectors], job.encoder.dim)
    job.say(0.92, "looking for near-duplicate images")
    duplicates = _near_duplicates(built, prev, plan, job.config.duplicate_threshold)
    built.manifest["near_duplicate_pairs"] = len(duplicates)
    built.manifest["exact_duplicate_pairs"] = exact_duplicate_pairs(plan.items["image_hash"])
    job.say(0.93, "sampling the catalog's pictures as a pretrained tower sees them (the uploads' check)")
    pictures = sample_pictures(job.encoder, built)
    if pictures is not None:
        built.manifest["picture_sample"] = {"tower": pictures.tower, "pictures": len(pictures.features)}
    job.say(0.95, "building the keyword (BM25) index")
    fields = job.config.keyword_field_list()
    if job.config.ocr and COLUMN not in fields:  # the words read off the pictures
        fields = [*fields, COLUMN]
    keywords = KeywordIndex.build(item_texts(built.items, fields))
    built.manifest["keyword_fields"] = fields
    built.manifest["build_seconds"] = round(time.time() - job.started, 1)

    if job.repair:
        restored = job.store.write_back(job.catalog_id, job.encoder.model_id, plan.listing, built)
        job.say(0.96, f"wrote {restored:,} listings and embeddings back to the online store, nothing encoded")
    built.manifest["online_mark"] = f"{job.when:%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:8]}"
    job.store.mark_complete(job.catalog_id, built.manifest["online_mark"], job.when)  # last: every row is online

    def reports(tmp: Path) -> None:
        keywords.save(tmp / KEYWORD_DIR)
        if pictures is not None:
            pictures.save(tmp)
        write_report(catalog, tmp)
        pd.DataFrame(duplicates, columns=["item_id", "duplicate_of", "score"]).to_csv(
            tmp / vindex.DUPLICATES_FILE, index=False
        )

    vindex.write(built, job.out, extra=reports)
    built.manifest["summary"] = catalog.summary()
    job.say(1.0, f"index ready at {job.out}: {catalog.summary()}; " + ", ".join(f"{c} {counts[c]}" for c in COUNTS))
    return built


def _vectors_and_index(job: Job, plan: update.Plan, prev: vindex.VectorIndex | None, byo: dict):
    """Finds a vector for every row (kept, precomputed, already in Feast, or encoded), writes what is new to Feast,
    and builds or updates the Faiss index from the vectors Feast gives back."""
    items, need = plan.items, np.flatnonzero(plan.reused < 0)
    ids, hashes = items["item_id"].tolist(), items["image_hash"].tolist()
    fresh = np.zeros((len(need), job.encoder.dim), dtype=np.float32)
    to_write = np.zeros(len(need), dtype=bool)  # vectors Feast does not hold yet
    pending = []
    for j, row in enumerate(need):
        if ids[row] in byo:
            fresh[j], to_write[j] = byo[ids[row]], True
        else:
            pending.append(j)
    byo.clear()  # copied into ``fresh``: at a million 512-d items each copy is 2 GB
    if pending and not job.config.full:  # vectors another build of this catalog already put in Feast
        job.say(0.1, f"looking up {len(pending):,} embeddings in Feast")
        found = job.store.embeddings(
            job.catalog_id,
            job.encoder.model_id,
            [ids[need[j]] for j in pending],
            [hashes[need[j]] for j in pending],
            required=False,
        )
        still = []
        for j, vec in zip(pending, found):
            if vec is None:
                still.append(j)
            else:
                fresh[j] = vec
        pending = still
    encoded, bad = 0, {}
    if pending:
        paths = [items["image"].iloc[need[j]] for j in pending]
        job.say(0.12, f"encoding {len(paths):,} pictures")
        vectors, failed = _encode(job.config, job.encoder, paths, job.say)
        for n, j in enumerate(pending):
            if n in failed:
                bad[ids[need[j]]] = failed[n]
            else:
                fresh[j], to_write[j] = vectors[n], True
        encoded = len(paths) - len(failed)
    if bad:  # pictures that could not be decoded leave the catalog, listed in skipped.csv with their reason
        drop = np.isin(items["item_id"].to_numpy(), list(bad))
        keep_need = ~np.isin(need, np.flatnonzero(drop))
        fresh, to_write, need = fresh[keep_need], to_write[keep_need], need[keep_need]
        plan = plan.without(drop, (list(bad), list(bad.values())))
        need = np.flatnonzero(plan.reused < 0)
        items, ids, hashes = plan.items, plan.items["item_id"].tolist(), plan.items["image_hash"].tolist()
    if len(items) == 0:
        raise BuildError(f"no picture of {job.config.catalog} could be decoded; e.g. {list(bad.items())[:3]}")
    encode = functools.partial(_encode, job.config, job.encoder, say=job.say)
    others = product_pictures.gather(job, plan.pictures, items, prev, encode)
    encoded += others.encoded

    # New rows only, under keys no served index uses: a build that fails or is killed after this leaves rows that
    # change nothing served, and the next build finds its vectors here instead of encoding them again.
    job.say(0.82, "writing new rows to Feast")
    job.store.write_items(job.catalog_id, plan.listing[plan.new_revisions], job.when)
    job.store.write_embeddings(
        job.catalog_id,
        job.encoder.model_id,
        [ids[r] for r in need[to_write]],
        [hashes[r] for r in need[to_write]],
        fresh if to_write.all() else fresh[to_write],
        job.when,
    )  # no 2 GB copy on a full build
    del fresh  # the index is built from what Feast gives back
    job.say(0.86, "writing the new rows to the online store")
    job.store.write_online()
    job.say(0.88, "reading the new embeddings back from Feast")
    from_feast = (
        job.store.embeddings(job.catalog_id, job.encoder.model_id, [ids[r] for r in need], [hashes[r] for r in need])
        if len(need)
        else np.zeros((0, job.encoder.dim), np.float32)
    )
    manifest = {"index_rule": None, "pictures": len(items) + len(others), "pictures_left_out": others.left_out}
    # Products with several pictures are indexed afresh from kept and Feast vectors: nothing is encoded again.
    several = len(others) > 0 or (prev is not None and prev.pictures is not None)
    if prev is not None and not several and not vindex.compaction_due(len(prev.vectors) + len(need), len(items)):
        job.say(
            0.9,
            f"updating the {prev.kind} index: {len(need):,} vectors in, "
            f"{len(prev.slots) - int((plan.reused >= 0).sum()):,} out",
        )
        scratch = vindex.scratch_vectors(job.config.resolved_index(job.encoder.model_id))
        return vindex.updated(prev, items, plan.reused, from_feast, manifest, scratch), plan, encoded
    kept = plan.reused >= 0
    if not kept.any():  # a full build: Feast's answer is the whole matrix already
        vectors = from_feast
    else:
        vectors = np.empty((len(items), job.encoder.dim), dtype=np.float32)
        vectors[need] = from_feast
        vectors[kept] = np.asarray(prev.vectors[plan.reused[kept]], dtype=np.float32)
    if len(others):
        vectors = np.concatenate([np.asarray(vectors, dtype=np.float32), product_pictures.vectors(job, others, prev)])
    kind, rule = index_kinds.choose(
        len(vectors), job.encoder.dim, job.config.index_kind, index_kinds.memory_budget(job.config.index_memory_gb)
    )
    job.say(0.9, f"building a {kind} index of {len(vectors):,} vectors ({rule})")
    plan.reused = np.full(len(items), -1, dtype=np.int64)
    how = vindex.engine_kind(kind, job.config.vector_store, milvus_store.alias_for(job.out))
    table = others.table if len(others) else None
    return vindex.build(vectors, items, manifest | {"index_rule": rule}, kind, how, table), plan, encoded


def _encode(config: Settings, encoder: Encoder, paths: list[str], say: Progress) -> tuple[np.ndarray, dict[int, str]]:
    if config.ray:
        from mmsearch.encode.ray_data import encode_with_ray

        say(0.12, f"encoding {len(paths):,} pictures with Ray Data ({config.ray})")
        return encode_with_ray(config, paths, encoder.preprocess, encoder.dim)
    return encode_image_files(
        encoder,
        paths,
        config.batch_size,
        config.workers,
        config.max_upload_pixels,
        progress=lambda done, total: say(0.12 + 0.7 * done / total, f"encoding images {done}/{total}"),
    )


def exact_duplicate_pairs(hashes: pd.Series) -> int:
    """Pairs of items whose pictures are byte for byte the same (the same content hash): a catalog may hold one
    picture under several ids."""
    sizes = hashes.value_counts()
    return int((sizes * (sizes - 1) // 2).sum())


def _near_duplicates(
    built: vindex.VectorIndex, prev: vindex.VectorIndex | None, plan: update.Plan, threshold: float
) -> list[tuple[str, str, float]]:
    """Each item's nearest neighbours above the threshold; an update only searches for its new vectors and keeps the
    earlier pairs whose two pictures are unchanged."""
    if threshold <= 0:
        return []
    kept = plan.reused >= 0
    if prev is None or prev.path is None or not kept.any():
        return built.near_duplicates(threshold)
    unchanged = set(built.items["item_id"][kept])
    old = (
        pd.read_csv(prev.path / vindex.DUPLICATES_FILE, dtype={"item_id": str, "duplicate_of": str})
        if (prev.path / vindex.DUPLICATES_FILE).exists()
        else pd.DataFrame(columns=["item_id", "duplicate_of", "score"])
    )
    pairs = {(a, b, float(s)) for a, b, s in old.itertuples(index=False) if a in unchanged and b in unchanged}
    return sorted(pairs | set(built.near_duplicates(threshold, rows=np.flatnonzero(~kept))))


def ensure_index(config: Settings, encoder: Encoder) -> Settings:
    """Builds the default index on first start (the demo on a fresh machine), and rebuilds it when it is of an
    older layout; an explicit --index must exist."""
    path = config.resolved_index(encoder.model_id)
    manifest = vindex.read_index_manifest(path)
    if config.index is not None or (manifest is not None and manifest.get("layout") == vindex.LAYOUT):
        return config
    why = "first start only" if manifest is None else "it was built by an older mmsearch"
    print(f"No usable index at {path}: building it from {config.catalog} with {encoder.model_id} ({why}).")
    build_index(config, encoder, progress=print_progress)
    return replace(config, index=path)


def print_progress(fraction: float, message: str) -> None:
    """Progress for a terminal: the stage messages; per-image progress is tqdm's bar."""
    if not message.startswith("encoding images"):
        print(f"[{fraction:4.0%}] {message}", flush=True)


def image_roots(paths: list[str], most: int = 20) -> list[str]:
    """The folders the app may serve images from: the images' own folders, or their common ancestor if many."""
    import os

    parents = sorted({str(Path(p).parent) for p in paths})
    return parents if len(parents) <= most else [os.path.commonpath(parents)]
