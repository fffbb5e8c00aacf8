"""Every setting of build, serve and search, grouped by the command it belongs to, with its default and help text.

``Settings`` holds them all (a served app builds its index on first start, so ``serve`` takes every group); each field
is a flag and an ``MMSEARCH_<NAME>`` variable through mmsearch/flags.py. Precedence is the usual one for a deployable
tool: a preset, then variables (a Space or a Dockerfile sets them), then flags (a person at a shell passes them).
Training's settings are in mmsearch/train/settings.py.
"""

from __future__ import annotations

import dataclasses
import json
import os
import sys
from dataclasses import dataclass, field, fields
from pathlib import Path

from mmsearch import flags
from mmsearch.resources import ASSETS_DIR, PRESETS_FILE, SYNONYMS_FILE, default_data_dir


@dataclass
class CatalogSettings:
    """What is indexed and served, and where its data lives"""

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
        default="",
        metadata={
            "help": "demo, fashion-mnist, zero-shot, two-tower:<dir>, zero-shot:<image tower>[@<side>]+<text tower>, "
            "or clip:<arch>/<pretrained tag or checkpoint>; by default the demo model for the demo catalog, a "
            "preset's own model, the model an existing index was built with, else zero-shot"
        },
    )
    index: Path | None = field(
        default=None, metadata={"help": "the index directory (default: <data-dir>/indexes/<catalog>--<model>)"}
    )
    device: str = field(default="auto", metadata={"help": "auto, cpu or cuda[:N]"})
    online_store: str = field(
        default="sqlite",
        metadata={"help": "Feast online store: sqlite (a file in the data directory) or redis://host:port[/db]"},
    )
    vector_store: str = field(
        default="faiss",
        metadata={
            "help": "where the index's nearest-neighbour search runs: faiss (in this process, saved in the index "
            "directory) or milvus://host:port (a Milvus server; the index directory names its collection); an index "
            "is served from the kind of store it was built into"
        },
    )
    store_timeout_s: float = field(
        default=1.0,
        metadata={
            "help": "a read of the Feast online store must answer within this many seconds; a store that does not "
            "counts as down (searches answer 503 at once) until a check every second finds it back"
        },
    )
    demo_size: int = field(default=2048, metadata={"help": "images in the generated demo catalog"})
    product_folders: bool = field(
        default=False,
        metadata={
            "help": "an image-folder catalog holds a sub-folder per product: its pictures are that product's (its id "
            "and title are the folder's name; the first picture by name is its listing's)"
        },
    )
    max_upload_pixels: int = field(
        default=40_000_000,
        metadata={"help": "larger images are refused, in a catalog or an upload (decompression bombs)"},
    )
    hf_image_column: str = field(default="image", metadata={"help": "image column of a Hugging Face dataset"})
    hf_text_column: str = field(default="caption", metadata={"help": "title/caption column of a Hugging Face dataset"})
    hf_id_column: str = field(
        default="", metadata={"help": "id column of a Hugging Face dataset (default: row number)"}
    )
    hf_columns: str = field(
        default="",
        metadata={"help": "rename a Hugging Face dataset's columns: 'from:to,from:to', e.g. articleType:category"},
    )
    fashion_mnist_dir: Path = field(
        default=Path("/usr/share/datasets/fashion-mnist"),
        metadata={
            "help": "where --catalog fashion-mnist reads the idx files (apt-get install dataset-fashion-mnist puts "
            "them here); without them, the Hugging Face hub"
        },
    )


@dataclass
class BuildSettings:
    """How an index is built"""

    batch_size: int = field(default=64, metadata={"help": "encoder batch size"})
    workers: int = field(default=2, metadata={"help": "DataLoader workers that decode and resize images"})
    index_kind: str = field(
        default="auto",
        metadata={
            "help": "vector index kind: auto (chosen by size and memory), or a kind of mmsearch/index/kinds/: flat "
            "(exact), hnsw, or ivfpq (OPQ + IVF-PQ with exact re-ranking, memory-mapped)",
        },
    )
    index_memory_gb: float = field(
        default=0.0,
        metadata={
            "help": "memory an in-memory index may take, in GiB, when --index-kind auto chooses; 0: a quarter of RAM"
        },
    )
    full: bool = field(default=False, metadata={"help": "rebuild from scratch instead of updating the index"})
    # Strict by default: the demo model puts renders of one kind/colour/pattern at cosine 0.99+, so a looser cut
    # would fold distinct products together; with CLIP, ~0.97 also catches resized or re-encoded copies.
    duplicate_threshold: float = field(
        default=0.9999,
        metadata={
            "help": "cosine at or above which two items are near-duplicates (reported, collapsed in results); 0: off"
        },
    )
    keyword_fields: str = field(
        default="title,description",
        metadata={"help": "catalog columns the keyword (BM25) index reads, comma-separated"},
    )
    ocr: bool = field(
        default=False,
        metadata={
            "help": "read the words printed in each picture (PP-OCRv4; pip install mmsearch[ocr]) into a picture_text "
            "column that keyword and hybrid search use and results show; pictures read by an earlier build are not "
            "read again"
        },
    )
    ocr_min_confidence: float = field(
        default=0.8,
        metadata={"help": "--ocr keeps a line read with at least this confidence, 0..1 (and two letters or digits)"},
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
            "help": "the Ray cluster to use: index_build.py encodes with Ray Data, app.py --replicas serves its "
            "replicas with Ray Serve; a local cluster (the flag alone, or 'local'), or the cluster at ADDRESS "
            "(ray://host:10001 for encoding; auto or host:6379 for replicas)",
            "nargs": "?",
            "const": "local",
            "metavar": "ADDRESS",
        },
    )


@dataclass
class SearchSettings:
    """How searches run"""

    top_k: int = field(default=12, metadata={"help": "results shown by default"})
    # Every search ranks this deep whatever page it shows, so that its pages agree: 100 keeps hybrid fusion's lists
    # as deep as before pages (FUSION_DEPTH); deeper costs each search more (docs/api.md).
    max_k: int = field(
        default=100,
        metadata={
            "help": "the most results one query's pages reach (offset + k); facets count and sorting orders these"
        },
    )
    search_mode: str = field(
        default="hybrid",
        metadata={"help": "text search: vector, keyword (BM25) or hybrid", "choices": ("vector", "keyword", "hybrid")},
    )
    # Both chosen on the dev half of the demo's labelled queries (python -m mmsearch.evaluate --queries demo): a
    # small RRF constant lets the top places of each list count, where the classic 60 flattens them.
    keyword_weight: float = field(
        default=0.7, metadata={"help": "hybrid mode: the keyword list's share of reciprocal rank fusion, 0..1"}
    )
    rrf_k: int = field(default=5, metadata={"help": "hybrid mode: the rank constant of reciprocal rank fusion"})
    image_weight: float = field(default=0.5, metadata={"help": "text + image queries: the image's share, 0..1"})
    synonyms: str = field(
        default=str(SYNONYMS_FILE),
        metadata={"help": "synonym groups for keyword search ('variant, variant => canonical' lines); '' for none"},
    )
    # The answer's match (mmsearch/search/match.py). Chosen on the dev halves of the demo's labelled queries and
    # assets/unmatched-queries.csv (python -m mmsearch.evaluate --match); the figures are in docs/quality.md.
    match_words: float = field(
        default=0.55,
        metadata={
            "help": "a text answer matches when at least this share of the query's content words (stop words left "
            "out) is in the catalog's text or a synonym group, or names a kind of what it names (WordNet), or says "
            "one of its nouns in another language (a multilingual text tower)"
        },
    )
    match_standing: float = field(
        default=4.8,
        metadata={
            "help": "a text answer also matches when its best result stands this many standard deviations above the "
            "catalog's mean similarity to the query"
        },
    )
    match_image_standing: float = field(
        default=2.0, metadata={"help": "an image answer matches when its best result stands this far above the mean"}
    )
    match_affinity: float = field(
        default=1.01,
        metadata={
            "help": "a text answer also matches when the text tower finds the query at least this much nearer to one "
            "of the catalog's category words than to any of --match-background's other things (for a pretrained "
            "text tower; above 1: off)"
        },
    )
    match_similarity: float = field(
        default=0.0,
        metadata={
            "help": "a text answer also matches when its best result's similarity is at least this; 0: the model's "
            "own (the zero-shot models', whose similarities mean the same on every catalog; none for others); "
            "above 1: off"
        },
    )
    match_background: str = field(
        default="imagenet",
        metadata={
            "help": "the other things --match-affinity weighs a query against: imagenet (the 1,000 ImageNet class "
            "names torchvision ships), a file with a phrase a line, or '' for none (then the affinity is the "
            "query's similarity to the nearest category word)"
        },
    )
    expand: float = field(
        default=0.0,
        metadata={
            "help": "text queries are pulled toward the catalog categories their words resemble (text-to-text "
            "similarity to each category's name and synonyms): the pull's weight; 0: off"
        },
    )
    expand_temperature: float = field(
        default=0.05, metadata={"help": "--expand: how sharply the pull goes to the most resembling category"}
    )
    query_cache: int = field(default=1024, metadata={"help": "text queries whose embeddings are kept (LRU)"})
    listing_cache: int = field(
        default=100_000,
        metadata={
            "help": "item listings kept in memory (LRU); Feast rows are keyed by content, so a kept one is never stale"
        },
    )
    max_query_chars: int = field(default=500, metadata={"help": "longer text queries are refused"})
    reload_interval: float = field(
        default=2.0,
        metadata={
            "help": "seconds between the app's checks for a rebuilt index (swapped in without a restart); 0: off"
        },
    )


@dataclass
class CompareSettings:
    """A second model, beside the served one"""

    compare_model: str = field(
        default="",
        metadata={
            "help": "a second model (same spec forms): the Compare tab's, pooled in the Judge tab, and evaluated "
            "beside the first by python -m mmsearch.evaluate --judgments"
        },
    )
    compare_index: Path | None = field(default=None, metadata={"help": "the second model's index directory"})


@dataclass
class ServeSettings:
    """How the app is served"""

    host: str = field(default="127.0.0.1", metadata={"help": "address the app listens on"})
    port: int = field(default=7860, metadata={"help": "port the app listens on"})
    examples: str = field(
        default="",
        metadata={
            "help": "example queries under the search box, separated by '|' (default: the demo's for the demo catalog, "
            "another catalog's most common categories, none without categories)"
        },
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
    image_workers: int = field(
        default=2,
        metadata={"help": "uploaded pictures decoded and embedded at once, in threads beside the event loop"},
    )
    image_queue: int = field(
        default=8,
        metadata={"help": "uploaded pictures allowed to wait for those threads; beyond that HTTP 503 (busy)"},
    )
    keep_alive_s: float = field(
        default=30.0,
        metadata={"help": "an idle kept-alive connection is closed after this many seconds"},
    )
    header_timeout_s: float = field(
        default=10.0,
        metadata={
            "help": "a request's headers must arrive within this many seconds of its first byte (or of the "
            "connection), else the connection is closed (slow-header attacks)"
        },
    )
    body_timeout_s: float = field(
        default=30.0,
        metadata={
            "help": "a request's body may pause at most this many seconds between arrivals, else the "
            "connection is closed"
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
            "(or HTTP basic) for REST and /metrics; empty: open, for public demos (better set as MMSEARCH_AUTH: a "
            "flag shows in the process list)"
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
    replicas: int = field(
        default=0,
        metadata={
            "help": "serve from N Ray Serve replicas behind the one port, each a whole server (REST, agent tools, "
            "UI; a visitor's UI session stays on one replica), on a local Ray or the cluster --ray names; 0: this "
            "one process, without Ray"
        },
    )
    replica_cpus: float = field(
        default=0.0,
        metadata={
            "help": "CPUs Ray reserves for each replica (0: an equal share of a local machine's cores, at most 1; "
            "1 on a cluster)"
        },
    )


@dataclass
class FeedbackSettings:
    """What people do with answers: searches, events, judgments, analytics, interleaving"""

    database_url: str = field(
        default="",
        metadata={
            "help": "where searches, events and judgments are kept: a SQLAlchemy URL such as "
            "postgresql://user:password@host/db for several replicas (better set as MMSEARCH_DATABASE_URL); "
            "empty: SQLite under the data directory"
        },
    )
    record: bool = field(
        default=True,
        metadata={
            "help": "keep every answered search and the events on its results (analytics, the judging queue, "
            "interleaving); off: answers still carry a query_id, but nothing is written and events are refused"
        },
    )
    analytics_days: float = field(
        default=90.0,
        metadata={"help": "searches and events older than this many days are deleted (checked hourly); 0: kept"},
    )
    events_flush_s: float = field(
        default=1.0,
        metadata={
            "help": "searches are written in batches this often (an event at once, with the searches waiting then); "
            "a crash loses at most this much of the searches, a clean stop nothing"
        },
    )
    judging: str = field(
        default="",
        metadata={
            "choices": ["", "open"],
            "help": "who may judge and see analytics: by default only users logged in with --auth (the rater is "
            "the user's name), and no one on an open server; 'open': anyone, naming themselves (on a public demo "
            "that shows every visitor's queries to every visitor)",
        },
    )
    interleave: str = field(
        default="",
        metadata={
            "help": "compare a second ranker online: a mode (vector, keyword, hybrid) or a model spec; a share of "
            "text searches is answered by team-draft interleaving of the served ranker (A) and this one (B)"
        },
    )
    interleave_share: float = field(
        default=0.5, metadata={"help": "the share of text searches that are interleaved when --interleave is set"}
    )


@dataclass
class Settings(FeedbackSettings, CompareSettings, ServeSettings, SearchSettings, BuildSettings, CatalogSettings):
    """Every setting of build, serve and search."""

    def keyword_field_list(self) -> list[str]:
        return [f.strip().lower() for f in self.keyword_fields.split(",") if f.strip()]

    def resolved_index(self, model_id: str | None = None) -> Path:
        """The index directory: --index if given, else one per catalog and model under the data directory.

        With the model's id in the default path, a retrained model gets a fresh index instead of a stale one."""
        if self.index is not None:
            return Path(self.index)
        return Path(self.data_dir) / "indexes" / f"{slug(self.catalog)}--{slug(model_id or self.model)}"


GROUPS = {
    # serve builds what is missing
    "serve": (CatalogSettings, BuildSettings, SearchSettings, ServeSettings, CompareSettings, FeedbackSettings),
    "build": (CatalogSettings, BuildSettings),
    "search": (CatalogSettings, SearchSettings),
}
# Old spellings still read, with a warning: (old variable, new field).
RENAMED_VARIABLES = {"MMSEARCH_INDEX_TYPE": "index_kind"}


def slug(text: str) -> str:
    """A file-name-safe rendering of a catalog or model spec."""
    keep = [c if c.isalnum() or c in "-_." else "-" for c in text.strip()]
    return "".join(keep).strip("-.")[:80] or "default"


def from_env(env: dict[str, str] | None = None, **overrides: object) -> Settings:
    """Defaults, then a preset, then ``MMSEARCH_<FIELD>`` variables, then explicit overrides (already typed)."""
    env = dict(os.environ if env is None else env)
    for old, new in RENAMED_VARIABLES.items():
        if old in env and flags.env_name(Settings, new) not in env:
            print(f"warning: {old} is now {flags.env_name(Settings, new)}", file=sys.stderr)
            env[flags.env_name(Settings, new)] = env[old]
    base: dict[str, object] = {}
    if "SPACE_ID" in env:  # on a Hugging Face Space the proxy reaches the app on all interfaces only
        base["host"] = "0.0.0.0"
    preset = overrides.get("preset") or env.get("MMSEARCH_PRESET", "")
    if preset:  # a preset's settings sit between the defaults and the environment
        types = {f.name: f.type for f in fields(Settings)}
        base |= {k: flags.cast(types[k], str(v)) for k, v in load_preset(str(preset)).items() if k in types}
    config = flags.settings_from(Settings, env, base, **overrides)
    return config if config.model else dataclasses.replace(config, model=default_model(config))


def default_model(config: Settings) -> str:
    """The model when none is named: the model the index named by --index was built with (an index keeps its
    model: ``app.py --index data/indexes/shop`` serves what index_build.py built there); else the demo's for the demo
    catalog; for any other, the model its index was built with when one exists, else the zero-shot model, which
    knows colour photos and drawings of a thousand kinds of things without training."""
    built = [Path(config.index)] if config.index else []
    if not built and config.catalog == "demo":
        return "demo"
    if not built:
        found = (Path(config.data_dir) / "indexes").glob(f"{slug(config.catalog)}--*/manifest.json")
        built = [m.parent for m in sorted(found, key=lambda m: m.stat().st_mtime, reverse=True)]
    for folder in built:
        try:  # the index's manifest (index/vectors.py writes it last); read here, before any stage is loaded
            spec = json.loads((folder / "manifest.json").read_text()).get("model_spec")
        except (OSError, ValueError):
            continue
        if spec:
            return str(spec)
    return "demo" if config.catalog == "demo" else "zero-shot"


def presets() -> dict[str, dict]:
    return json.loads(PRESETS_FILE.read_text())


def load_preset(name: str, section: str = "") -> dict:
    """A preset's settings (``section``: its block for another command, such as "train"); an unknown name is
    refused with the known ones. A value that starts with ``assets/`` names a file shipped with mmsearch, found
    wherever the package is installed."""
    known = presets()
    if name not in known:
        raise ValueError(f"unknown preset {name!r}; the presets are {', '.join(sorted(known))} (assets/presets.json)")
    chosen = known[name].get(section, {}) if section else known[name]
    return {
        k: str(ASSETS_DIR / v[len("assets/") :]) if isinstance(v, str) and v.startswith("assets/") else v
        for k, v in chosen.items()
        if k != "about" and not isinstance(v, dict)
    }


def replace(config: Settings, **changes: object) -> Settings:
    return dataclasses.replace(config, **changes)
