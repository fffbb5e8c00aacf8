"""The index build pipeline: catalog -> encoder -> Feast -> Faiss -> an index directory, written atomically."""
from __future__ import annotations

import os
import time
from datetime import datetime, timezone
from importlib import metadata as importlib_metadata
from pathlib import Path
from typing import Callable

import pandas as pd

from . import index as vindex
from .catalog import load_catalog, write_report
from .config import Config, replace
from .encoders import Encoder, encode_image_files, load_encoder
from .features import FeatureStore
from .keyword import KEYWORD_DIR, KeywordIndex, item_texts

Progress = Callable[[float, str], None]  # (fraction done, what is happening)
LIBRARIES = ["torch", "open_clip_torch", "transformers", "faiss-cpu", "feast", "bm25s", "gradio", "numpy"]


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


def build_index(config: Config, encoder: Encoder | None = None, progress: Progress | None = None) -> vindex.VectorIndex:
    say = progress or (lambda fraction, message: None)
    started = time.time()
    say(0.0, f"reading catalog {config.catalog}")
    catalog = load_catalog(config.catalog, config.data_dir, config.max_upload_pixels, config.demo_size,
                           config.hf_image_column, config.hf_text_column, config.hf_id_column)
    if len(catalog.items) == 0:
        raise BuildError(f"no usable items in {config.catalog}: {catalog.summary()}; "
                         + "; ".join(f"row {s.row}: {s.reason}" for s in catalog.skipped[:5]))
    say(0.05, f"loading model {config.model}")
    encoder = encoder or load_encoder(config.model, config.device)
    out = config.resolved_index(encoder.model_id)

    paths = catalog.items["image"].tolist()
    vectors, failed = encode_image_files(
        encoder, paths, config.batch_size, config.workers, config.max_upload_pixels,
        progress=lambda done, total: say(0.1 + 0.7 * done / total, f"encoding images {done}/{total}"))
    if failed:
        bad_ids = [catalog.items["item_id"].iloc[i] for i in failed]
        keep = [i for i in range(len(paths)) if i not in failed]
        catalog, vectors = catalog.skip(bad_ids, list(failed.values())), vectors[keep]
    if len(catalog.items) == 0:
        raise BuildError(f"no image of {config.catalog} could be decoded; see the reasons in {catalog.skipped[:3]}")
    ids = catalog.items["item_id"].tolist()

    say(0.82, "writing features to Feast")
    store = FeatureStore(config.data_dir)
    store.write_items(catalog)
    store.write_embeddings(encoder.model_id, ids, vectors)
    store.apply()
    say(0.88, "materializing Feast features to the online store")
    store.materialize()
    say(0.94, "reading embeddings back from Feast and building the Faiss index")
    from_feast = store.embeddings(encoder.model_id, ids)

    manifest = {"model_id": encoder.model_id, "model_spec": config.model, "catalog": config.catalog,
                "catalog_name": catalog.name, "catalog_fingerprint": catalog.fingerprint(),
                "data_dir": str(Path(config.data_dir).resolve()), "image_roots": image_roots(paths),
                "rows": catalog.total_rows,
                "skipped": len(catalog.skipped), "warnings": len(catalog.warnings),
                "built_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                "build_seconds": None, "versions": _versions()}
    built = vindex.build(from_feast, ids, manifest, config.index_type)
    say(0.97, "looking for near-duplicate images")
    duplicates = built.near_duplicates(config.duplicate_threshold) if config.duplicate_threshold > 0 else []
    built.manifest["near_duplicate_pairs"] = len(duplicates)
    built.manifest["build_seconds"] = round(time.time() - started, 1)

    say(0.98, "building the keyword (BM25) index")
    fields = config.keyword_field_list()
    keywords = KeywordIndex.build(item_texts(catalog.items.to_dict("records"), fields))
    built.manifest["keyword_fields"] = fields

    def reports(tmp: Path) -> None:
        keywords.save(tmp / KEYWORD_DIR)
        write_report(catalog, tmp)
        pd.DataFrame(duplicates, columns=["item_id", "duplicate_of", "score"]).to_csv(
            tmp / vindex.DUPLICATES_FILE, index=False)

    vindex.write(built, out, extra=reports)
    built.manifest["summary"] = catalog.summary()
    say(1.0, f"index ready at {out}: {catalog.summary()}")
    return built


def ensure_index(config: Config, encoder: Encoder) -> Config:
    """Builds the default index on first start (the demo on a fresh machine); an explicit --index must exist."""
    path = config.resolved_index(encoder.model_id)
    if (path / vindex.MANIFEST_FILE).exists() or config.index is not None:
        return config
    print(f"No index at {path} yet: building it from {config.catalog} with {encoder.model_id} (first start only).")
    build_index(config, encoder, progress=print_progress)
    return replace(config, index=path)


def print_progress(fraction: float, message: str) -> None:
    """Progress for a terminal: the stage messages; per-image progress is tqdm's bar."""
    if not message.startswith("encoding images"):
        print(f"[{fraction:4.0%}] {message}", flush=True)


def image_roots(paths: list[str], most: int = 20) -> list[str]:
    """The folders the app may serve images from: the images' own folders, or their common ancestor if many."""
    parents = sorted({str(Path(p).parent) for p in paths})
    return parents if len(parents) <= most else [os.path.commonpath(parents)]
