"""How mmsearch scales, measured through its own commands on synthetic data: all but the encoder.

    python benchmarks/scale.py --items 100000 --dim 512
    python benchmarks/scale.py --items 1000000 --dim 512 --report scale-1m.json
    python benchmarks/scale.py --items 1000000 --dim 512 --reuse --drop-caches   # as after a reboot (root)

The catalog is a parquet manifest with clustered embeddings (declared for a small random-init model of that dimension)
and listings, so ``index_build.py`` indexes it without encoding. Each step runs as a user would run it, in a child
process, whose peak resident memory is its own: the full build (stage by stage, from its progress lines), an update of
1% of the items, query timings inside a searcher (index alone; whole searches with their Feast listings; a filter that
1% of the catalog passes, each first straight after opening, then after the listing read-ahead the server runs at
start, then warm; recall@10 against exact search on 1,000 held-out queries), and ``app.py``'s start until it answers
HTTP and until ``/readyz`` says ready.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
WORDS = [
    f"{a}{b}"
    for a in ("ba", "ko", "mi", "ru", "te", "zo", "la", "pe")
    for b in ("nd", "rk", "st", "ll", "mp", "nt", "sh", "x", "ve", "ck", "dge", "rn", "lt", "ft", "sp", "wn")
]
CATEGORIES = 100  # so that category=c7 passes 1% of the items


def vectors(n: int, dim: int, centres: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    label = rng.integers(0, len(centres), n)
    v = centres[label] + rng.normal(scale=0.6, size=(n, dim)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True), label


def write_catalog(path: Path, n: int, dim: int, model_id: str, picture: Path, changed_seed: int | None = None) -> None:
    """Writes the manifest in chunks (bounded memory); ``changed_seed`` gives 1% of the items new vectors."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    centres = np.random.default_rng(0).normal(size=(max(64, n // 2000), dim)).astype(np.float32)
    writer = None
    for start in range(0, n, 100_000):
        count = min(100_000, n - start)
        v, label = vectors(count, dim, centres, seed=1 + start)
        if changed_seed is not None:
            pick = np.random.default_rng(changed_seed + start).random(count) < 0.01
            v[pick] = vectors(int(pick.sum()), dim, centres, seed=changed_seed + start)[0]
        rng = np.random.default_rng(7 + start)
        words = np.asarray(WORDS)
        titles = [" ".join(words[(lab * 7 + rng.integers(0, 24, 4)) % len(words)]) for lab in label]
        table = pa.table(
            {
                "item_id": [f"sku-{i}" for i in range(start, start + count)],
                "image": [str(picture)] * count,
                "title": titles,
                "category": [f"c{i % CATEGORIES}" for i in range(start, start + count)],
                "price": np.round(rng.uniform(1, 200, count), 2).astype(str),
                "embedding": pa.FixedSizeListArray.from_arrays(pa.array(v.ravel()), dim),
            }
        )
        if writer is None:
            schema = table.schema.with_metadata({b"mmsearch.model_id": model_id.encode()})
            writer = pq.ParquetWriter(path.with_suffix(".tmp"), schema)
        writer.write_table(table.replace_schema_metadata(writer.schema.metadata))
    writer.close()
    path.with_suffix(".tmp").replace(path)


def bench_catalog(work: Path, items: int, dim: int) -> tuple[str, Path]:
    """(the model spec, the manifest) of a synthetic catalog of ``items`` under ``work``, made once and kept."""
    work.mkdir(parents=True, exist_ok=True)
    model = bench_model(dim, work / "model")
    catalog = work / f"catalog-{items}.parquet"
    if not catalog.exists():
        from PIL import Image

        from mmsearch.encode.encoders import load_encoder

        Image.new("RGB", (32, 32), (200, 40, 40)).save(work / "picture.png")
        write_catalog(catalog, items, dim, load_encoder(model, "cpu").model_id, work / "picture.png")
    return model, catalog


def bench_model(dim: int, out: Path) -> str:
    """A random-init two-tower model of this dimension: only its id and dimension matter here."""
    import torch

    from mmsearch.encode import twotower
    from mmsearch.train import loop as train

    if not (out / twotower.CONFIG_FILE).exists():
        torch.manual_seed(0)
        cfg = train.TrainSettings(
            image_size=32, patch_size=16, width=32, vision_layers=1, text_layers=1, heads=2, embed_dim=dim
        )
        tok = twotower.build_tokenizer(train.demo_vocabulary_texts())
        twotower.save(twotower.from_configs(*train.tiny_configs(cfg, len(tok)), cfg.embed_dim), tok, out)
    return f"two-tower:{out}"


def run_timed(cmd: list[str], env: dict | None = None) -> tuple[float, float, list[tuple[float, str]]]:
    """(seconds, peak RSS in GiB, timestamped progress lines) of a child process."""
    started = time.time()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env, cwd=ROOT)
    lines = []
    for line in proc.stdout:
        if line.startswith("[") or line.startswith("{") or "error" in line.lower():
            lines.append((time.time() - started, line.rstrip()))
    _, status, usage = os.wait4(proc.pid, 0)
    if status != 0:
        raise SystemExit(f"{' '.join(cmd)} failed:\n" + "\n".join(line for _, line in lines[-20:]))
    return time.time() - started, usage.ru_maxrss / 2**20, lines


def stages(lines: list[tuple[float, str]]) -> dict[str, float]:
    out, marks = {}, [(t, line.split("] ", 1)[-1]) for t, line in lines if line.startswith("[")]
    for (t0, what), (t1, _) in zip(marks, marks[1:]):
        out[what[:60]] = round(t1 - t0, 1)
    return out


def query_phase(args) -> None:
    """Runs inside a child process: opens the index as the app does and times searches."""
    from mmsearch import settings as cfgmod
    from mmsearch.search.ranking import Ranking
    from mmsearch.search.searcher import Searcher
    from mmsearch.store import readahead

    t = time.time()
    cfg = cfgmod.from_env(
        index=Path(args.index_dir), model=args.model, data_dir=Path(args.data_dir), reload_interval=0.0
    )
    searcher = Searcher.open(cfg)
    opened = time.time() - t
    snap, index = searcher.snapshot, searcher.index
    centres = np.random.default_rng(0).normal(size=(max(64, args.items // 2000), args.dim)).astype(np.float32)
    queries = vectors(1000, args.dim, centres, seed=999_999)[0]

    def timed(fn, n=200, offset=0) -> tuple[float, float]:
        for i in range(5):
            fn(offset + i)
        took = []
        for i in range(n):
            s = time.perf_counter()
            fn(offset + i)
            took.append(1000 * (time.perf_counter() - s))
        return round(float(np.percentile(took, 50)), 2), round(float(np.percentile(took, 95)), 2)

    words = [" ".join(WORDS[(i * 7) % len(WORDS)] for i in (q, q + 3)) for q in range(1000)]

    ranking = Ranking(snap, searcher.store, searcher.config.rrf_k)  # the lists a search answers from, by vector

    def whole_searches(prefix: str, offset: int) -> dict:
        return {
            f"{prefix}vector_search_ms": timed(lambda i: ranking.by_vector(queries[i], 12), offset=offset),
            f"{prefix}hybrid_search_ms": timed(
                lambda i: ranking.by_words(queries[i], words[i], [], 12, "hybrid", 0.6), offset=offset
            ),
            f"{prefix}filtered_1pct_ms": timed(
                lambda i: ranking.by_vector(queries[i], 12, filters=f"category=c{i % 100}"), offset=offset
            ),
        }

    # Cold: straight after opening, as the page cache was left (empty with --drop-caches), before the read-ahead
    # that the server runs at start and waits for before /readyz says ready.
    figures = {"open_s": round(opened, 1), "index_ms": timed(lambda i: index.search(queries[i], 12))}
    figures |= whole_searches("", 0)
    t = time.time()
    readahead.listing_pages(searcher.store)
    figures["listing_read_ahead_s"] = round(time.time() - t, 1)
    if searcher.store._listings is not None:  # other queries, and no listing from the cold ones kept in memory
        searcher.store._listings.clear()
    figures |= whole_searches("ready_", 250)
    # The same kinds of query in a server that has been answering for a while: after 2,000 queries over random items
    # their listings are in the searcher's listing cache too.
    timed(lambda i: ranking.by_vector(queries[i % 1000], 12), n=2000)
    figures |= whole_searches("warm_", 500)
    assert len(ranking.by_vector(queries[0], 12, filters="category=c3")) == 12
    import resource

    figures["serving_peak_rss_gb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, 2)
    got = index.search(queries, 10)
    live_vectors = index.vectors  # exact answers from the same vectors, in chunks of the memory-mapped file
    best = np.full((len(queries), 10), -np.inf, np.float32)
    best_rows = np.zeros((len(queries), 10), np.int64)
    for start in range(0, len(index.slots), 20_000):
        slots = index.slots[start : start + 20_000]
        scores = queries @ np.asarray(live_vectors[slots], np.float32).T
        both = np.concatenate([best, scores], axis=1)
        rows = np.concatenate([best_rows, np.arange(start, start + len(slots))[None].repeat(len(queries), 0)], 1)
        top = np.argpartition(-both, 9, axis=1)[:, :10]
        best, best_rows = np.take_along_axis(both, top, 1), np.take_along_axis(rows, top, 1)
    hits = sum(len({index.ids[r] for r in want} & {h[0] for h in have}) for want, have in zip(best_rows, got))
    figures["recall_at_10"] = round(hits / (10 * len(queries)), 4)
    print(json.dumps(figures), flush=True)


def app_start(model: str, index_dir: Path, data_dir: Path) -> tuple[float, float]:
    """Seconds until ``app.py`` answers HTTP, and until ``/readyz`` says ready (its listings read ahead)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    started = time.time()
    proc = subprocess.Popen(
        [
            sys.executable,
            "app.py",
            "--model",
            model,
            "--index",
            str(index_dir),
            "--data-dir",
            str(data_dir),
            "--port",
            str(port),
        ],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        answered = None
        while time.time() - started < 600:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/{'readyz' if answered else ''}", timeout=2)
                if answered:
                    return answered, round(time.time() - started, 1)
                answered = round(time.time() - started, 1)
            except OSError as exc:  # readyz answers 503 (an HTTPError) until it is ready
                if proc.poll() is not None:
                    raise SystemExit("app.py exited before it answered") from exc
                time.sleep(0.5)
        raise SystemExit("app.py was not ready within 600 s")
    finally:
        proc.terminate()
        proc.wait(30)


def drop_caches() -> None:
    os.sync()
    Path("/proc/sys/vm/drop_caches").write_text("3\n")


def du(path: Path) -> float:
    return round(sum(f.stat().st_size for f in Path(path).rglob("*") if f.is_file()) / 2**30, 2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--items", type=int, default=100_000, help="synthetic catalog size")
    parser.add_argument("--dim", type=int, default=512, help="embedding dimension")
    parser.add_argument("--index-kind", default="auto", help="index kind for index_build.py --index-kind")
    parser.add_argument("--work", type=Path, default=Path("/tmp/mmsearch-scale"), help="scratch directory")
    parser.add_argument("--report", type=Path, help="also write the figures as JSON here")
    parser.add_argument("--skip-app", action="store_true", help="do not time app.py's start")
    parser.add_argument("--build-only", action="store_true", help="the build and the update, no query timings")
    parser.add_argument(
        "--reuse",
        action="store_true",
        help="keep the index of an earlier run in --work: only the 1%% update and what follows",
    )
    parser.add_argument(
        "--drop-caches",
        action="store_true",
        help="empty the OS page cache before the query timings, as after a reboot (needs root)",
    )
    parser.add_argument("--phase", choices=["query"], help=argparse.SUPPRESS)
    parser.add_argument("--model", help=argparse.SUPPRESS)
    parser.add_argument("--index-dir", help=argparse.SUPPRESS)
    parser.add_argument("--data-dir", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.phase == "query":
        return query_phase(args)

    work = args.work / f"{args.items}x{args.dim}-{args.index_kind}"
    reuse = args.reuse and (work / "index" / "manifest.json").exists()
    if not reuse:
        shutil.rmtree(work, ignore_errors=True)
        work.mkdir(parents=True)
    from PIL import Image

    picture = work / "placeholder.png"
    Image.new("RGB", (32, 32), (200, 200, 200)).save(picture)
    model = bench_model(args.dim, args.work / f"model-{args.dim}")
    from mmsearch.encode.encoders import load_encoder

    model_id = load_encoder(model, "cpu").model_id
    build_cmd = [
        sys.executable,
        "index_build.py",
        "--catalog",
        str(work / "catalog.parquet"),
        "--model",
        model,
        "--index",
        str(work / "index"),
        "--data-dir",
        str(work / "data"),
        "--index-kind",
        args.index_kind,
        "--duplicate-threshold",
        "0.98",
    ]
    report = {"items": args.items, "dim": args.dim}
    seed_file = work / "catalog-seed"  # which 1% the catalog now has changed: each update flips it
    if not reuse:
        t = time.time()
        write_catalog(work / "catalog.parquet", args.items, args.dim, model_id, picture)
        print(f"synthetic catalog: {args.items:,} x {args.dim} in {time.time() - t:.0f} s", flush=True)
        seed_file.write_text("none")
        seconds, rss, lines = run_timed(build_cmd)
        manifest = json.loads((work / "index" / "manifest.json").read_text())
        report |= {
            "index_kind": manifest["index_kind"],
            "index_rule": manifest.get("index_rule"),
            "build_s": round(seconds, 1),
            "build_peak_rss_gb": round(rss, 2),
            "build_stages_s": stages(lines),
            "near_duplicate_pairs": manifest["near_duplicate_pairs"],
        }
        print(json.dumps(report, indent=1), flush=True)

    changed = None if seed_file.exists() and seed_file.read_text() == "123" else 123
    write_catalog(work / "catalog.parquet", args.items, args.dim, model_id, picture, changed_seed=changed)
    seed_file.write_text(str(changed).lower())
    seconds, rss, lines = run_timed(build_cmd)
    manifest = json.loads((work / "index" / "manifest.json").read_text())
    report |= {
        "update_1pct_s": round(seconds, 1),
        "update_peak_rss_gb": round(rss, 2),
        "update_counts": {k: manifest[k] for k in ("added", "changed", "removed", "unchanged", "encoded")},
        "update_stages_s": stages(lines),
    }

    if args.build_only:
        print(json.dumps(report, indent=1))
        return args.report and args.report.write_text(json.dumps(report, indent=1))
    if args.drop_caches:
        drop_caches()
    seconds, rss, lines = run_timed(
        [
            sys.executable,
            __file__,
            "--phase",
            "query",
            "--items",
            str(args.items),
            "--dim",
            str(args.dim),
            "--model",
            model,
            "--index-dir",
            str(work / "index"),
            "--data-dir",
            str(work / "data"),
        ]
    )
    report |= json.loads(lines[-1][1])  # its serving_peak_rss_gb is taken before the exact-search recall check
    if not args.skip_app:
        if args.drop_caches:
            drop_caches()
        report["app_start_s"], report["app_ready_s"] = app_start(model, work / "index", work / "data")
    report |= {"index_on_disk_gb": du(work / "index"), "feast_on_disk_gb": du(work / "data" / "feast")}
    print(json.dumps(report, indent=1))
    if args.report:
        args.report.write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
