"""Shared fixtures: tiny random-init encoders (no downloads) and a small demo catalog.

Random weights map distinct pictures to nearly the same vector, so tests that index with them switch near-duplicate
detection off (duplicate_threshold=0); tests of that feature use the trained demo model.
"""

from __future__ import annotations

import ast
import json
import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))  # services.py: the real servers the tests and benchmarks start
import services  # noqa: E402
from services import RunningApp, free_port  # noqa: E402,F401 - the tests' too

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
# Set before huggingface_hub is imported (it reads these once): tests never reach for the network, and a test of
# "weights cannot be had" fails fast instead of waiting on connection time-outs.
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


PACKAGE_MODULES = {module_name(p): p for p in (ROOT / "mmsearch").rglob("*.py")}


def package_imports(name: str) -> set[str]:
    """The package's modules that ``name`` imports, anywhere in its body (inside functions too)."""
    path = PACKAGE_MODULES[name]
    is_package = path.name == "__init__.py"
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = name.split(".") if is_package else name.split(".")[:-1]
                anchor = anchor[: len(anchor) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in PACKAGE_MODULES else base for a in node.names]
        else:
            continue
        found |= {t for t in targets if t in PACKAGE_MODULES and t != name}
    return found


INSTALL = {  # how a missing system program is had on Debian (and by .ci/run)
    "chromium": "apt-get install chromium",
    "redis-server": "apt-get install redis-server",
    "postgres": "apt-get install postgresql",
    "dataset-fashion-mnist": "apt-get install dataset-fashion-mnist",
    "strace": "apt-get install strace",
    "tuxpaint-stamps-default": "apt-get install tuxpaint-stamps-default",
    "wordnet-base": "apt-get install wordnet-base",
    "milvus": "pip install milvus==2.3.5 pymilvus==3.0.2 (requirements.txt pins them)",
    "ray-serve": "pip install 'ray[serve]==2.60.0' (requirements.txt pins it)",
    "ocr": "pip install 'mmsearch[ocr]' (requirements.txt pins it) and apt-get install libgl1 libglib2.0-0 (OpenCV's)",
}


@pytest.fixture(scope="session")
def ocr() -> None:
    """--ocr's engine, importable (RapidOCR, and the libraries its OpenCV loads); skipped without, failed in CI."""
    try:
        import rapidocr_onnxruntime  # noqa: F401
    except ImportError:
        missing("ocr")


def need_program(name: str, *alternatives: str) -> str:
    """The path of a system program a test needs. Missing, the test is skipped with the install command (the summary
    lists it, pyproject.toml's addopts has -rs), except in CI, where .ci/run installs it and its absence fails."""
    import shutil

    for candidate in (name, *alternatives):
        if path := shutil.which(candidate):
            return path
    missing(name)


def missing(name: str) -> None:
    """Skip (or, in CI, fail) a test for want of a Debian package, saying how to install it."""
    message = f"{name} is not installed: {INSTALL.get(name, name)}"
    if os.environ.get("CI"):
        pytest.fail(f"{message} (CI=true: .ci/run installs it, so its absence is a failure)", pytrace=False)
    pytest.skip(message)


def need_stamps() -> None:
    """For a test on Tux Paint's stamps (read in place from Debian's package)."""
    from mmsearch.ingest.datasets import tuxpaint_stamps

    if not (tuxpaint_stamps.DEBIAN_DIR / "animals").is_dir():
        missing("tuxpaint-stamps-default")


def need_wordnet() -> None:
    """For a test on WordNet's nouns (read in place from Debian's wordnet-base)."""
    from mmsearch.ingest import wordnet

    if not (wordnet.FOLDER / "data.noun").is_file():
        missing("wordnet-base")


def need_real_fashion_mnist() -> None:
    """For a test whose figure holds on the real photos only (the shipped model learnt them; small_fashion_mnist
    draws stand-in bars without Debian's package)."""
    from mmsearch.ingest.datasets import fashion_mnist

    if not (fashion_mnist.DEBIAN_DIR / "t10k-labels-idx1-ubyte.gz").exists():
        missing("dataset-fashion-mnist")


TINY_CLIP = {
    "embed_dim": 32,
    "vision_cfg": {"image_size": 32, "layers": 1, "width": 32, "patch_size": 16, "head_width": 16},
    "text_cfg": {"context_length": 16, "vocab_size": 49408, "width": 32, "heads": 2, "layers": 1},
}


@pytest.fixture(scope="session")
def tiny_clip_spec(tmp_path_factory) -> str:
    import open_clip

    path = tmp_path_factory.mktemp("clipcfg") / "mmsearch-tiny-clip.json"
    path.write_text(json.dumps(TINY_CLIP))
    open_clip.add_model_config(path)
    return "clip:mmsearch-tiny-clip/random"


def _tiny_two_tower(out: Path, seed: int) -> Path:
    import torch

    from mmsearch.encode import twotower
    from mmsearch.train import loop as train

    torch.manual_seed(seed)
    cfg = train.TrainSettings(
        image_size=32, patch_size=16, width=32, vision_layers=1, text_layers=1, heads=2, embed_dim=16
    )
    tok = twotower.build_tokenizer(train.demo_vocabulary_texts())
    vision, text = train.tiny_configs(cfg, len(tok))
    model = twotower.from_configs(vision, text, cfg.embed_dim)
    return twotower.save(model, tok, out)


@pytest.fixture(scope="session")
def tiny_two_tower_dir(tmp_path_factory) -> Path:
    """A random-init two-tower saved as a model directory, loadable as two-tower:<dir>."""
    return _tiny_two_tower(tmp_path_factory.mktemp("models") / "tiny-tt", seed=0)


@pytest.fixture(scope="session")
def other_two_tower_dir(tmp_path_factory) -> Path:
    """A second, differently initialised model, for comparisons."""
    return _tiny_two_tower(tmp_path_factory.mktemp("models") / "tiny-tt-b", seed=1)


def write_idx(path: Path, array) -> Path:
    """``array`` (uint8) as a gzipped idx file, the format of Fashion-MNIST's files."""
    import gzip

    import numpy as np

    array = np.asarray(array, dtype=np.uint8)
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(int(n).to_bytes(4, "big") for n in array.shape)
    with gzip.open(path, "wb") as fh:
        fh.write(header + array.tobytes())
    return path


@pytest.fixture(scope="session")
def small_fashion_mnist(tmp_path_factory) -> Path:
    """A folder laid out as Debian's dataset-fashion-mnist with the first photos of each real split when the package is
    installed (40 per category for training, 8 per category for testing), else drawn shapes of the same size."""
    import numpy as np

    from mmsearch.ingest.datasets import fashion_mnist

    out = tmp_path_factory.mktemp("fashion-mnist")
    for split, prefix, per in (("train", "train", 40), ("test", "t10k", 8)):
        if (fashion_mnist.DEBIAN_DIR / f"{prefix}-labels-idx1-ubyte.gz").exists():
            data = fashion_mnist.load_split(split)
            keep = np.concatenate([np.flatnonzero(data.labels == c)[:per] for c in range(10)])
            images, labels = data.images[keep], data.labels[keep]
        else:  # a bar per category, at a height of its own: learnable, and 28x28 greyscale like the real photos
            labels = np.repeat(np.arange(10), per)
            images = np.zeros((len(labels), 28, 28), dtype=np.uint8)
            for n, c in enumerate(labels):
                images[n, 2 + 2 * c : 5 + 2 * c, 4 + n % 3 : 22 + n % 3] = 255
        write_idx(out / f"{prefix}-images-idx3-ubyte.gz", images)
        write_idx(out / f"{prefix}-labels-idx1-ubyte.gz", labels)
    return out


@pytest.fixture(scope="session")
def demo_manifest(tmp_path_factory) -> Path:
    from mmsearch.ingest import demo

    return demo.write_catalog(tmp_path_factory.mktemp("democat"), n=96)


def tiny_demo_app(tmp_path_factory, manifest: Path, model_dir: Path, **env: str) -> RunningApp:
    """``python app.py`` on the small demo catalog with a tiny random-init model (near-duplicates off), plus ``env``."""
    return RunningApp(
        tmp_path_factory.mktemp("app"),
        {
            "MMSEARCH_CATALOG": str(manifest),
            "MMSEARCH_MODEL": f"two-tower:{model_dir}",
            "MMSEARCH_DUPLICATE_THRESHOLD": "0",
        }
        | env,
    )


def _postgres_bin(name: str) -> str:
    found = services.postgres_program(name)
    if not found:
        need_program("postgres")  # skips (or fails in CI) with the install command
    return found


class PostgresServer(services.PostgresServer):
    """Debian's PostgreSQL for a test (skipped, or failed in CI, without it)."""

    def __init__(self):
        super().__init__(_postgres_bin("initdb"), _postgres_bin("pg_ctl"))


@pytest.fixture(scope="session")
def postgres_url():
    """A real PostgreSQL server for the session; stopped at the end."""
    server = PostgresServer()
    try:
        yield server.url
    finally:
        server.remove()


class RedisServer(services.RedisServer):
    """Debian's redis-server for a test (skipped, or failed in CI, without it)."""

    def __init__(self, directory: Path):
        super().__init__(need_program("redis-server"), directory)


class MilvusServer(services.MilvusServer):
    """A Milvus standalone server for a test (skipped, or failed in CI, without PyPI's milvus wheel)."""

    def __init__(self, directory: Path):
        try:
            import milvus  # noqa: F401
            import pymilvus  # noqa: F401
        except ImportError:
            missing("milvus")
        super().__init__(directory)


@pytest.fixture(scope="session")
def milvus_server(tmp_path_factory):
    """One Milvus standalone server for the session (one per machine: its embedded etcd's peer port is fixed)."""
    server = MilvusServer(tmp_path_factory.mktemp("milvus"))
    yield server
    server.stop()


@pytest.fixture
def milvus(milvus_server, tmp_path_factory):
    """The session's Milvus server, running: one a test killed is started again, empty, in a new directory."""
    if not milvus_server.running:
        milvus_server.start(tmp_path_factory.mktemp("milvus"))
    return milvus_server


def ask(searcher, q=None, k=None, **fields):
    """A search as every way in makes one: a request checked against the searcher's limits, then the search."""
    return searcher.search(searcher.request(q=q, k=k, **fields))


def tiny_settings(folder: Path, catalog, model_dir: Path, **more):
    """Build settings for a small catalog in ``folder`` with the tiny model: its data and index there, no workers,
    near-duplicates off, no reloading; ``more`` overrides or adds settings."""
    from mmsearch import settings

    fields = dict(
        data_dir=folder / "data",
        catalog=str(catalog),
        model=f"two-tower:{model_dir}",
        index=folder / "ix",
        workers=0,
        duplicate_threshold=0,
        reload_interval=0,
    )
    return settings.Settings(**(fields | more))


@pytest.fixture(scope="session")
def small_index(tmp_path_factory, demo_manifest, tiny_two_tower_dir):
    """The small demo catalog (96 items) indexed once with the tiny random model: the settings that open it. Tests
    change what does not touch the index with ``settings.replace`` (a private ``data_dir`` keeps their searches and
    judgments apart; the feature store stays where the index says it is)."""
    from mmsearch.builder.pipeline import build_index

    cfg = tiny_settings(tmp_path_factory.mktemp("small-index"), demo_manifest, tiny_two_tower_dir, workers=1)
    build_index(cfg)
    return cfg


@pytest.fixture(scope="session")
def small_searcher(small_index):
    from mmsearch.search.searcher import Searcher

    return Searcher.open(small_index)


@pytest.fixture(scope="session")
def demo_app(tmp_path_factory):
    """``python app.py`` as the README starts it: the real demo (built on first start, about a minute), with --mcp
    and judging open (docs/feedback.md's examples judge)."""
    app = RunningApp(
        tmp_path_factory.mktemp("demo-data"), {"MMSEARCH_MCP": "1", "MMSEARCH_JUDGING": "open"}, timeout=600
    )
    yield app
    app.stop()


@pytest.fixture(scope="session")
def open_app(tmp_path_factory, demo_manifest, tiny_two_tower_dir):
    """One started app for the end-to-end modules that need no settings of their own (REST, the agent tools over MCP,
    the API's contract): the small demo catalog, the tiny model, every route on (judging open, MCP). Started once:
    each start costs about 15 s."""
    app = tiny_demo_app(tmp_path_factory, demo_manifest, tiny_two_tower_dir, MMSEARCH_MCP="1", MMSEARCH_JUDGING="open")
    yield app
    app.stop()
