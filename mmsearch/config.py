"""One place for every setting: defaults here, then ``MMSEARCH_*`` environment variables, then CLI flags.

Precedence is the usual one for a deployable tool: a Space or a Dockerfile sets env vars, a person at a shell passes
flags.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
from dataclasses import dataclass, field, fields
from pathlib import Path

from mmsearch.resources import PRESETS_FILE, SYNONYMS_FILE, default_data_dir


@dataclass
class Config:
    preset: str = field(
        default="",
        metadata={
            "help": "a named setup from assets/presets.json (fashion: a Hugging Face catalog, a CLIP model and its "
            "column names); MMSEARCH_* variables and flags still override each of its settings"
        },
    )
    data_dir: Path = field(
        default_factory=default_data_dir, metadata={"help": "where the Feast stores, renders and indexes live"}
    )
    catalog: str = field(
        default="demo", metadata={"help": "manifest (.csv/.jsonl/.parquet), image folder, hf:<name>[:split], or demo"}
    )
    model: str = field(
        default="demo", metadata={"help": "demo, two-tower:<dir>, or clip:<arch>/<pretrained tag or checkpoint>"}
    )
    index: Path | None = field(
        default=None, metadata={"help": "index directory (default: <data-dir>/indexes/<catalog>-<model>)"}
    )
    compare_model: str = field(default="", metadata={"help": "a second model for the Compare tab (same spec forms)"})
    compare_index: Path | None = field(default=None, metadata={"help": "the second model's index directory"})
    # Strict by default: the demo model puts renders of one kind/colour/pattern at cosine 0.99+, so a looser cut
    # would fold distinct products together; with CLIP, ~0.97 also catches resized or re-encoded copies.
    duplicate_threshold: float = field(
        default=0.9999,
        metadata={
            "help": "cosine at or above which two items are near-duplicates (reported, collapsed in results); 0: off"
        },
    )
    index_type: str = field(
        default="auto",
        metadata={
            "help": "Faiss index kind: auto (chosen by size and memory), flat (exact), hnsw, or ivfpq "
            "(OPQ + IVF-PQ with exact re-ranking, memory-mapped)"
        },
    )
    full: bool = field(default=False, metadata={"help": "rebuild from scratch instead of updating the index at --out"})
    online_store: str = field(
        default="sqlite",
        metadata={"help": "Feast online store: sqlite (a file in the data directory) or redis://host:port[/db]"},
    )
    embeddings: Path | None = field(
        default=None,
        metadata={"help": "precomputed embeddings (parquet: item_id, embedding) to index without encoding"},
    )
    embeddings_model: str = field(
        default="",
        metadata={"help": "the model id the precomputed embeddings were made with (must be the index's model)"},
    )
    ray: str = field(
        default="",
        metadata={
            "help": "encode with Ray Data: 'local' for a local cluster, or a cluster address (ray://host:10001, auto)"
        },
    )
    reload_interval: float = field(
        default=2.0,
        metadata={
            "help": "seconds between the app's checks for a rebuilt index (swapped in without a restart); 0: off"
        },
    )
    batch_size: int = field(default=64, metadata={"help": "encoder batch size"})
    workers: int = field(default=2, metadata={"help": "DataLoader workers that decode and resize images"})
    device: str = field(default="auto", metadata={"help": "auto, cpu or cuda[:N]"})
    host: str = field(default="127.0.0.1", metadata={"help": "address the app listens on"})
    port: int = field(default=7860, metadata={"help": "port the app listens on"})
    top_k: int = field(default=12, metadata={"help": "results shown by default"})
    search_mode: str = field(default="hybrid", metadata={"help": "text search: vector, keyword (BM25) or hybrid"})
    # Both chosen on the dev half of the demo's labelled queries (python -m mmsearch.evaluate --queries demo): a
    # small RRF constant lets the top places of each list count, where the classic 60 flattens them.
    keyword_weight: float = field(
        default=0.7, metadata={"help": "hybrid mode: the keyword list's share of reciprocal rank fusion, 0..1"}
    )
    rrf_k: int = field(default=5, metadata={"help": "hybrid mode: the rank constant of reciprocal rank fusion"})
    image_weight: float = field(default=0.5, metadata={"help": "text + image queries: the image's share, 0..1"})
    keyword_fields: str = field(
        default="title,description",
        metadata={"help": "catalog columns the keyword (BM25) index reads, comma-separated"},
    )
    synonyms: str = field(
        default=str(SYNONYMS_FILE),
        metadata={"help": "synonym groups for keyword search ('variant, variant => canonical' lines); '' for none"},
    )
    query_cache: int = field(default=1024, metadata={"help": "text queries whose embeddings are kept (LRU)"})
    listing_cache: int = field(
        default=100_000,
        metadata={
            "help": "item listings kept in memory (LRU); Feast rows are keyed by content, so a kept one is never stale"
        },
    )
    max_query_chars: int = field(default=500, metadata={"help": "longer text queries are refused"})
    max_upload_pixels: int = field(
        default=40_000_000, metadata={"help": "larger images are refused (decompression bombs)"}
    )
    max_upload_mb: int = field(default=20, metadata={"help": "larger uploads are refused by the server"})
    concurrency: int = field(
        default=4,
        metadata={
            "help": "UI and Gradio-API searches run at once (REST searches take turns on the server's event loop)"
        },
    )
    max_queue: int = field(
        default=64,
        metadata={
            "help": "searches allowed to wait; beyond that a caller is told the server is busy (HTTP 429 on REST)"
        },
    )
    rate_limit: float = field(
        default=0.0,
        metadata={
            "help": "searches per second allowed to each client (token bucket, by address or token); 0: no limit"
        },
    )
    rate_burst: int = field(
        default=0,
        metadata={"help": "a client's bucket size: searches it may make at once (default: twice the rate, at least 1)"},
    )
    auth: str = field(
        default="",
        metadata={
            "help": "user:password to lock the app: Gradio's login for the UI, 'Authorization: Bearer <password>' "
            "(or HTTP basic) for REST and /metrics; empty: open, for public demos"
        },
    )
    mcp: bool = field(
        default=False,
        metadata={
            "help": "also serve the search tools (search_products, search_by_image, similar_products, get_product) "
            "to agents over the Model Context Protocol at /gradio_api/mcp/"
        },
    )
    log_queries: bool = field(
        default=False,
        metadata={"help": "write each query's text into the JSON request log (off: only latency, counts and settings)"},
    )
    demo_size: int = field(default=2048, metadata={"help": "images in the generated demo catalog"})
    hf_image_column: str = field(default="image", metadata={"help": "image column of a Hugging Face dataset"})
    hf_text_column: str = field(default="caption", metadata={"help": "title/caption column of a Hugging Face dataset"})
    hf_columns: str = field(
        default="",
        metadata={"help": "rename a Hugging Face dataset's columns: 'from:to,from:to', e.g. articleType:category"},
    )
    hf_id_column: str = field(
        default="", metadata={"help": "id column of a Hugging Face dataset (default: row number)"}
    )

    def keyword_field_list(self) -> list[str]:
        return [f.strip().lower() for f in self.keyword_fields.split(",") if f.strip()]

    def resolved_index(self, model_id: str | None = None) -> Path:
        """The index directory: --index if given, else one per catalog and model under the data directory.

        With the model's id in the default path, a retrained model gets a fresh index instead of a stale one."""
        if self.index is not None:
            return Path(self.index)
        return Path(self.data_dir) / "indexes" / f"{slug(self.catalog)}--{slug(model_id or self.model)}"


def slug(text: str) -> str:
    """A file-name-safe rendering of a catalog or model spec."""
    keep = [c if c.isalnum() or c in "-_." else "-" for c in text.strip()]
    return "".join(keep).strip("-.")[:80] or "default"


def _cast(kind: object, raw: str) -> object:
    kind_name = kind if isinstance(kind, str) else getattr(kind, "__name__", str(kind))
    if "bool" in kind_name:
        return raw.strip().lower() in ("1", "true", "yes", "on")
    if "int" in kind_name:
        return int(raw)
    if "float" in kind_name:
        return float(raw)
    if "Path" in kind_name:
        return Path(raw) if raw else None
    return raw


def from_env(env: dict[str, str] | None = None, **overrides: object) -> Config:
    """Defaults, then ``MMSEARCH_<FIELD>`` variables, then explicit overrides (already typed)."""
    env = os.environ if env is None else env
    values: dict[str, object] = {}
    if "SPACE_ID" in env:  # on a Hugging Face Space the proxy reaches the app on all interfaces only
        values["host"] = "0.0.0.0"
    preset = overrides.get("preset") or env.get("MMSEARCH_PRESET", "")
    if preset:  # a preset's settings sit between the defaults and the environment
        types = {f.name: f.type for f in fields(Config)}
        values |= {k: _cast(types[k], str(v)) for k, v in load_preset(str(preset)).items() if k in types}
    for f in fields(Config):
        key = f"MMSEARCH_{f.name.upper()}"
        if key in env:
            values[f.name] = _cast(f.type, env[key])
    values.update({k: v for k, v in overrides.items() if v is not None})
    return Config(**values)


def presets() -> dict[str, dict]:
    return json.loads(PRESETS_FILE.read_text())


def load_preset(name: str) -> dict:
    """A preset's settings; an unknown name is refused with the known ones."""
    known = presets()
    if name not in known:
        raise ValueError(f"unknown preset {name!r}; the presets are {', '.join(sorted(known))} (assets/presets.json)")
    return {k: v for k, v in known[name].items() if k != "about"}


def add_arguments(parser: argparse.ArgumentParser, names: list[str]) -> None:
    """Adds ``--flag`` options for the named config fields; unset flags fall back to env vars and defaults."""
    by_name = {f.name: f for f in fields(Config)}
    for name in names:
        f = by_name[name]
        flag = "--" + name.replace("_", "-")
        if str(f.type) == "bool":
            parser.add_argument(flag, dest=name, action="store_true", default=None, help=f.metadata.get("help"))
            continue
        kind = {"int": int, "float": float}.get(str(f.type), Path if "Path" in str(f.type) else str)
        parser.add_argument(flag, dest=name, type=kind, default=None, help=f.metadata.get("help"))


def from_args(args: argparse.Namespace) -> Config:
    known = {f.name for f in fields(Config)}
    return from_env(**{k: v for k, v in vars(args).items() if k in known})


def replace(config: Config, **changes: object) -> Config:
    return dataclasses.replace(config, **changes)
