"""Faults of the real parts, one scenario at a time, through the public surface: what was acknowledged, what was stored,
what was lost, and how fast each answer came.

    python benchmarks/faults.py                       # every scenario (about 4 minutes on 2 cores)
    python benchmarks/faults.py --only kill9,bodies   # some of them

Scenarios (each on the demo catalog of --size items, its own data directory and app):

- ``swap``: an update build killed (SIGKILL) the instant it swaps its index in; the index left, the app started on
  it, the rerun, and what is left beside the index.
- ``kill9``: searches, click events and judgments at --rate a second, then ``kill -9`` of the app; after a restart,
  how many of each that the server acknowledged are in its database.
- ``postgres``: the same load with PostgreSQL (Debian's) stopped for --outage-s seconds in the middle: the statuses
  answered, what was acknowledged and stored, ``/readyz`` during the outage, the log lines it left.
- ``redis``: Redis as the online store, killed: ``/healthz`` and search latencies, then restarted empty, and the build
  that repairs it.
- ``bodies``: hostile bodies (not multipart, 1,001 fields, a 1.1 MB text field, JSON nested 5,000 deep, a 40 MB
  chunked body, a 300 MB upload): status, seconds, and how much the client got to send.
- ``uploads``: two clients uploading a 40-megapixel JPEG as fast as they can while a third times a cached text search
  and ``/healthz``.
- ``disk``: an update build on a tmpfs that has room for one index, not two.

The scenarios needing a system program (PostgreSQL, redis-server, unshare) say so and are passed over without it.
"""

from __future__ import annotations

import argparse
import io
import json
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from services import (  # noqa: E402
    KILLED_AT_THE_SWAP,
    Counted,
    PostgresServer,
    RedisServer,
    RunningApp,
    postgres_program,
)

MODEL = f"two-tower:{ROOT / 'assets' / 'demo-model'}"


class Shop:
    """A demo catalog of its own, its index and data directory, and the flags that build them."""

    def __init__(self, root: Path, size: int, *flags: str):
        from mmsearch.ingest import demo

        self.root, self.catalog = root, demo.write_catalog(root / "catalog", n=size)
        self.index, self.data = root / "ix" / "shop", root / "data"
        self.flags = ["--catalog", str(self.catalog), "--model", MODEL, "--index", str(self.index)]
        self.flags += ["--data-dir", str(self.data), "--duplicate-threshold", "0", *flags]

    def build(self, killed_at_the_swap: bool = False) -> subprocess.CompletedProcess:
        command = (
            [sys.executable, "-c", KILLED_AT_THE_SWAP] if killed_at_the_swap else [sys.executable, "index_build.py"]
        )
        return subprocess.run([*command, *self.flags], cwd=ROOT, capture_output=True, text=True, timeout=1800)

    def rename_all(self, title: str) -> None:
        table = pd.read_csv(self.catalog, dtype=str)
        table["title"] = title
        table.to_csv(self.catalog, index=False)

    def app(self, **env: str) -> RunningApp:
        settings = {"MMSEARCH_INDEX": str(self.index), "MMSEARCH_MODEL": MODEL, "MMSEARCH_CATALOG": str(self.catalog)}
        return RunningApp(self.data, settings | env, timeout=600)


def ms(seconds: list[float]) -> dict:
    ordered = sorted(seconds)
    return {
        "p50_ms": round(1000 * statistics.median(ordered), 1),
        "p95_ms": round(1000 * ordered[int(0.95 * (len(ordered) - 1))], 1),
        "max_ms": round(1000 * ordered[-1], 1),
    }


def timed(call) -> tuple[httpx.Response | None, float]:
    started = time.perf_counter()
    try:
        answer = call()
    except httpx.HTTPError:
        answer = None
    return answer, time.perf_counter() - started


class Load:
    """Searches, an event on each, and a judgment every third, at ``rate`` a second from one client thread; what the
    server acknowledged (200 / 202 / 201) is kept for the count afterwards."""

    def __init__(self, url: str, rate: float):
        self.url, self.rate = url, rate
        self.acked = {"searches": [], "events": [], "judgments": []}
        self.statuses: dict[int | str, int] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> Load:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(30)

    def _seen(self, answer: httpx.Response | None) -> int | str:
        status = answer.status_code if answer is not None else "no answer"
        self.statuses[status] = self.statuses.get(status, 0) + 1
        return status

    def _run(self) -> None:
        with httpx.Client(base_url=self.url, timeout=10) as http:
            n = 0
            while not self._stop.is_set():
                n += 1
                query = {"q": f"striped mug {n % 40}", "k": 5}
                answer, _ = timed(lambda query=query: http.get("/api/search", params=query))
                if self._seen(answer) == 200 and (body := answer.json())["results"]:
                    self.acked["searches"].append(body["query_id"])
                    first = body["results"][0]["item_id"]
                    event = {"query_id": body["query_id"], "item_id": first, "position": 1, "action": "click"}
                    answer, _ = timed(lambda event=event: http.post("/api/events", json=event))
                    if self._seen(answer) == 202:
                        self.acked["events"].append(body["query_id"])
                    if n % 3 == 0:
                        grade = {"query": f"striped mug {n}", "item_id": first, "grade": n % 4, "rater": "load"}
                        answer, _ = timed(lambda grade=grade: http.post("/api/judgments", json=grade))
                        if self._seen(answer) == 201:
                            self.acked["judgments"].append(grade["query"])
                self._stop.wait(1 / self.rate)


def stored(url: str) -> dict[str, set]:
    """What the database holds of the load: search query_ids, event query_ids, judged queries."""
    from sqlalchemy import create_engine, text

    engine = create_engine(url.replace("postgresql://", "postgresql+psycopg://"))
    with engine.connect() as c:
        out = {
            "searches": set(c.execute(text("SELECT query_id FROM searches")).scalars()),
            "events": set(c.execute(text("SELECT query_id FROM events")).scalars()),
            "judgments": set(c.execute(text("SELECT query FROM judgments WHERE rater = 'load'")).scalars()),
        }
    engine.dispose()
    return out


def kept(load: Load, found: dict[str, set]) -> dict:
    return {
        kind: {
            "acknowledged": len(acked),
            "stored": len(set(acked) & found[kind]),
            "lost": len(set(acked) - found[kind]),
        }
        for kind, acked in load.acked.items()
    }


def swap(work: Path, args) -> dict:
    shop = Shop(work, args.size)
    shop.build()
    shop.rename_all("renamed before the kill")
    killed = shop.build(killed_at_the_swap=True)
    left = sorted(p.name for p in shop.index.parent.iterdir())
    app = shop.app()
    try:
        ready = httpx.get(app.url + "readyz", timeout=10).status_code
        titles = {
            h["title"] for h in httpx.get(app.url + "api/search", params={"q": "mug"}, timeout=30).json()["results"]
        }
        rerun = shop.build()
    finally:
        app.stop()
    return {
        "killed_build_exit": killed.returncode,
        "left_after_the_kill": left,
        "app_ready_on_it": ready == 200,
        "served_titles": sorted(titles),
        "rerun_exit": rerun.returncode,
        "left_after_the_rerun": sorted(p.name for p in shop.index.parent.iterdir()),
    }


def kill9(work: Path, args) -> dict:
    shop = Shop(work, args.size)
    shop.build()
    app = shop.app(MMSEARCH_JUDGING="open")
    with Load(app.url, args.rate) as load:
        time.sleep(args.seconds)
    app.kill()
    app.start()  # the same data directory: SQLite under it
    app.stop()
    return {"statuses": load.statuses, "kept": kept(load, stored(f"sqlite:///{shop.data / 'mmsearch.sqlite3'}"))}


def postgres(work: Path, args) -> dict:
    initdb, pg_ctl = postgres_program("initdb"), postgres_program("pg_ctl")
    if not initdb or not pg_ctl:
        return {"skipped": "PostgreSQL is not installed: apt-get install postgresql"}
    database = PostgresServer(initdb, pg_ctl)
    shop = Shop(work, args.size)
    shop.build()
    app = shop.app(MMSEARCH_JUDGING="open", MMSEARCH_DATABASE_URL=database.url)
    try:
        with Load(app.url, args.rate) as load:
            time.sleep(args.seconds / 2)
            database.stop()
            stopped = time.time()
            time.sleep(0.5)
            ready = httpx.get(app.url + "readyz?verbose=1", timeout=10).json()["checks"]
            time.sleep(max(0.0, args.outage_s - (time.time() - stopped)))
            database.start()
            time.sleep(args.seconds / 2)
        time.sleep(2 * 1.0 + 1)  # the log's writer: each second, and the turn after the database is back
        log = app.log()
        return {
            "statuses": {str(k): v for k, v in load.statuses.items()},
            "readyz_checks_during_the_outage": ready,
            "kept": kept(load, stored(database.url)),
            "log_lines": {w: log.count(w) for w in ("the database is down", "answers again", "Traceback")},
        }
    finally:
        app.stop()
        database.remove()


def redis(work: Path, args) -> dict:
    program = shutil.which("redis-server")
    if not program:
        return {"skipped": "redis-server is not installed: apt-get install redis-server"}
    server = RedisServer(program, work)
    shop = Shop(work, args.size, "--online-store", server.url)
    shop.build()
    app = shop.app()
    try:
        with httpx.Client(base_url=app.url, timeout=30) as http:
            http.get("/api/search", params={"q": "mug"})
            server.kill()
            searches = [timed(lambda n=n: http.get("/api/search", params={"q": f"green tee {n}"})) for n in range(5)]
            health = [timed(lambda: http.get("/healthz"))[1] for _ in range(20)]
            down = http.get("/readyz?verbose=1").json()["checks"]["feature_store"]
            server.start()  # empty
            time.sleep(2)
            empty = http.get("/readyz?verbose=1").json()["checks"]["feature_store"]
            rerun = shop.build()
            return {
                "search_statuses_with_redis_dead": [a.status_code for a, _ in searches],
                "search_latency_with_redis_dead": ms([t for _, t in searches]),
                "healthz_latency_with_redis_dead": ms(health),
                "readyz_feature_store_when_dead": down,
                "readyz_feature_store_when_back_empty": empty,
                "rerun_says": [line for line in rerun.stdout.splitlines() if "online store" in line],
                "readyz_after_the_rerun": http.get("/readyz").status_code,
                "log_lines_down": app.log().count("is down"),
            }
    finally:
        app.stop()
        server.stop()


def bodies(work: Path, args) -> dict:
    shop = Shop(work, args.size)
    shop.build()
    app = shop.app(MMSEARCH_JUDGING="open")
    image, form = "/api/search/image", {"image": ("a.png", b"not a picture", "image/png")}
    multipart = {"content-type": "multipart/form-data; boundary=b"}
    disposition = b'--b\r\nContent-Disposition: form-data; name="image"; filename="a.jpg"\r\nContent-Type: image/jpeg'
    out = {}
    try:
        with httpx.Client(base_url=app.url, timeout=60) as http:
            cases = {
                "not multipart": lambda: http.post(image, content=b"garbage", headers=multipart),
                "1,001 form fields": lambda: http.post(image, data={f"f{i}": "x" for i in range(1001)}, files=form),
                "a 1.1 MB text field": lambda: http.post(image, data={"q": "x" * 1_100_000}, files=form),
                "JSON nested 5,000 deep": lambda: http.post("/api/events", content="[" * 5000 + "]" * 5000),
            }
            for name, call in cases.items():
                answer, took = timed(call)
                out[name] = {"status": answer.status_code if answer else None, "seconds": round(took, 3)}
            for name, path, body, headers in (
                ("a 40 MB chunked JSON body", "/api/judgments", Counted(b"", 40), {"content-type": "application/json"}),
                ("a 300 MB upload", image, Counted(disposition + b"\r\n\r\n", 300, b"\r\n--b--\r\n"), multipart),
            ):
                answer, took = timed(lambda p=path, b=body, h=headers: http.post(p, content=b, headers=h))
                status = answer.status_code if answer else "closed while sending (after its 413)"
                out[name] = {"status": status, "seconds": round(took, 3), "client_sent_mb": body.sent}
    finally:
        app.stop()
    return out


def uploads(work: Path, args) -> dict:
    import numpy as np
    from PIL import Image

    shop = Shop(work, args.size)
    shop.build()
    app = shop.app()
    w, h = 7700, 5180  # 39.9 megapixels, under the 40 MP limit
    rows = np.random.default_rng(0).normal(128, 30, (h, 1, 3)).clip(0, 255).astype(np.uint8)
    picture = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(np.broadcast_to(rows, (h, w, 3)))).save(picture, "JPEG", quality=90)
    stop, statuses = time.time() + args.seconds, {}

    def uploader() -> None:
        with httpx.Client(base_url=app.url, timeout=60) as http:
            while time.time() < stop:
                sent = {"image": ("big.jpg", picture.getvalue(), "image/jpeg")}
                answer, _ = timed(lambda sent=sent: http.post("/api/search/image", files=sent))
                key = answer.status_code if answer is not None else "no answer"
                statuses[key] = statuses.get(key, 0) + 1

    try:
        threads = [threading.Thread(target=uploader) for _ in range(2)]
        for t in threads:
            t.start()
        text, health = [], []
        with httpx.Client(base_url=app.url, timeout=60) as http:
            http.get("/api/search", params={"q": "red mug", "k": 12})  # cached from here on
            while time.time() < stop:
                text.append(timed(lambda: http.get("/api/search", params={"q": "red mug", "k": 12}))[1])
                health.append(timed(lambda: http.get("/healthz"))[1])
                time.sleep(0.05)
        for t in threads:
            t.join()
    finally:
        app.stop()
    return {"upload_statuses": statuses, "cached_text_search": ms(text), "healthz": ms(health)}


def disk(work: Path, args) -> dict:
    unshare = shutil.which("unshare")
    if not unshare or subprocess.run([unshare, "-rm", "true"], capture_output=True).returncode != 0:
        return {"skipped": "needs unshare and user namespaces to mount a small tmpfs"}
    shop = Shop(work, args.size)
    shop.build()
    size_kb = sum(f.stat().st_size for f in shop.index.rglob("*")) // 1024 + 64
    shutil.rmtree(shop.index)
    shop.rename_all("renamed")
    ix = shlex.quote(str(shop.index.parent))
    command = " ".join(shlex.quote(a) for a in [sys.executable, "index_build.py", *shop.flags])
    script = (
        f"mount -t tmpfs -o size={int(size_kb * 1.4)}k tmpfs {ix} && {command} >/dev/null 2>&1 && "
        f"sed -i 's/,renamed,/,renamed again,/' {shlex.quote(str(shop.catalog))} && "
        f"{{ {command} >/dev/null 2>{work}/err; echo $? > {work}/rc; }}; ls -A {ix} > {work}/left"
    )
    subprocess.run([unshare, "-rm", "sh", "-c", script], cwd=ROOT, timeout=1800)
    said = (work / "err").read_text().strip().splitlines()
    return {
        "exit": int((work / "rc").read_text()),
        "last_line": said[-1] if said else "",
        "traceback": "Traceback" in (work / "err").read_text(),
        "left_beside_the_index": (work / "left").read_text().split(),
    }


SCENARIOS = {
    "swap": swap,
    "kill9": kill9,
    "postgres": postgres,
    "redis": redis,
    "bodies": bodies,
    "uploads": uploads,
    "disk": disk,
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", default=",".join(SCENARIOS), help="scenarios to run, comma-separated")
    parser.add_argument("--size", type=int, default=256, help="items in each scenario's demo catalog")
    parser.add_argument("--rate", type=float, default=8.0, help="kill9 and postgres: searches a second")
    parser.add_argument(
        "--seconds", type=float, default=8.0, help="kill9, postgres and uploads: how long the load runs"
    )
    parser.add_argument("--outage-s", type=float, default=5.0, help="postgres: how long the database is down")
    args = parser.parse_args()
    report = {}
    for name in args.only.split(","):
        with tempfile.TemporaryDirectory(prefix=f"mmsearch-fault-{name}-") as work:
            started = time.time()
            report[name] = SCENARIOS[name](Path(work), args) | {"scenario_seconds": round(time.time() - started, 1)}
        print(json.dumps({name: report[name]}), flush=True)
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
