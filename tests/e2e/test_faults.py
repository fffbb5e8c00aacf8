"""Faults of the real parts, one scenario a test, through the public surface: a build killed in its index swap, then
the app started and the build rerun. (tests/test_atomic.py kills a swap at each of its system calls with strace.)"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pandas as pd
import pytest
from conftest import ROOT, RunningApp
from services import KILLED_AT_THE_SWAP, Counted

pytestmark = [pytest.mark.slow, pytest.mark.e2e]


def build(args: list[str], killed_at_the_swap: bool = False) -> subprocess.CompletedProcess:
    """``python index_build.py ARGS`` as a user runs it."""
    command = [sys.executable, "-c", KILLED_AT_THE_SWAP] if killed_at_the_swap else [sys.executable, "index_build.py"]
    return subprocess.run([*command, *args], cwd=ROOT, capture_output=True, text=True, timeout=600)


@pytest.fixture
def shop(tmp_path, tiny_two_tower_dir):
    """A small demo catalog of its own (its titles are edited), and the build flags for its index ``ix/shop``."""
    from mmsearch.ingest import demo

    catalog = demo.write_catalog(tmp_path / "catalog", n=48)
    args = [
        "--catalog",
        str(catalog),
        "--model",
        f"two-tower:{tiny_two_tower_dir}",
        "--index",
        str(tmp_path / "ix/shop"),
    ]
    return catalog, args + ["--data-dir", str(tmp_path / "data"), "--duplicate-threshold", "0", "--workers", "0"]


def test_a_build_killed_in_its_swap_leaves_an_index_the_app_serves_and_the_rerun_tidies(tmp_path, shop):
    catalog, args = shop
    assert build(args).returncode == 0
    table = pd.read_csv(catalog, dtype=str)
    table["title"] = "renamed before the kill"
    table.to_csv(catalog, index=False)
    killed = build(args, killed_at_the_swap=True)
    assert killed.returncode in (-signal.SIGKILL, 128 + signal.SIGKILL), killed.stderr[-2000:]
    ix = tmp_path / "ix"
    left = sorted(p.name for p in ix.iterdir())
    assert left[-1] == "shop" and any(name.startswith(".shop.new-") for name in left), left
    # What an older mmsearch left when killed between its two renames: no shop, the previous build at .shop.old and
    # the finished one at .shop.tmp-<random>. The app starts on the finished one.
    (ix / "shop").rename(ix / ".shop.old")
    next(ix.glob(".shop.new-*")).rename(ix / ".shop.tmp-k2j4x9")
    flags = dict(zip(args[::2], args[1::2]))
    env = {"MMSEARCH_INDEX": flags["--index"], "MMSEARCH_MODEL": flags["--model"], "MMSEARCH_CATALOG": str(catalog)}
    app = RunningApp(tmp_path / "data", env)
    try:
        assert httpx.get(app.url + "readyz", timeout=10).status_code == 200
        answer = httpx.get(app.url + "api/search", params={"q": "mug", "k": 3}, timeout=30).json()
        assert {hit["title"] for hit in answer["results"]} == {"renamed before the kill"}
        assert "put back the complete build .shop.tmp-k2j4x9" in app.log()
        rerun = build(args)  # lands beside the running app and removes every leftover
        assert rerun.returncode == 0, rerun.stderr[-2000:]
        assert sorted(p.name for p in ix.iterdir()) == ["shop"]
        assert httpx.get(app.url + "readyz", timeout=10).status_code == 200
    finally:
        app.stop()


@pytest.fixture(scope="module")
def app(tmp_path_factory, demo_manifest, tiny_two_tower_dir):
    """The small demo, judging open, with one-second deadlines on what a client sends (10 and 30 s by default)."""
    from conftest import tiny_demo_app

    deadlines = {"MMSEARCH_HEADER_TIMEOUT_S": "1", "MMSEARCH_BODY_TIMEOUT_S": "1", "MMSEARCH_JUDGING": "open"}
    running = tiny_demo_app(tmp_path_factory, demo_manifest, tiny_two_tower_dir, **deadlines)
    yield running
    running.stop()


def kernel_buffered_mb() -> int:
    """What loopback TCP can hold between a client and a server that does not read: the largest send buffer and the
    largest receive buffer the kernel grows a socket to (tcp_wmem's and tcp_rmem's last fields), in MB."""
    try:
        sizes = [int(Path(f"/proc/sys/net/ipv4/tcp_{kind}").read_text().split()[-1]) for kind in ("wmem", "rmem")]
    except (OSError, ValueError, IndexError):
        return 40  # no /proc to ask: still far under the 200 MB a draining server would take
    return -(-sum(sizes) // 2**20)


def test_hostile_bodies_are_refused_with_4xx_and_never_read_past_their_bound(app):
    with httpx.Client(base_url=app.url, timeout=30) as http:
        image, form = "/api/search/image", {"image": ("a.png", b"not a picture", "image/png")}
        multipart = {"content-type": "multipart/form-data; boundary=b"}
        for send, status, words in [
            (lambda: http.post(image, content=b"garbage", headers=multipart), 400, "multipart"),
            (lambda: http.post(image, data={f"f{i}": "x" for i in range(1001)}, files=form), 400, "fields"),
            (lambda: http.post(image, data={"q": "x" * 1_100_000}, files=form), 400, "maximum size"),
            (lambda: http.post("/api/events", content="[" * 5000 + "]" * 5000), 400, "not JSON"),
            (lambda: http.post("/api/judgments", content=b"{not json"), 400, "not JSON"),
        ]:
            r = send()
            assert r.status_code == status and words in r.json()["error"], r.text
        chunked = Counted(b"", 200)  # no Content-Length: the bound must hold while reading
        r = http.post("/api/judgments", content=chunked, headers={"content-type": "application/json"})
        assert r.status_code == 413 and "16 KB" in r.json()["error"]
        # What the server never reads still leaves the client, as far as the kernel buffers it: the client's send
        # buffer and the server's receive buffer grow to their maxima under load (4 MB and 32 MB here: 4 to 11 MB were
        # counted under a full suite's load), with a chunk in flight. A server that drained the body takes all 200.
        assert chunked.sent <= kernel_buffered_mb() + 2, f"{chunked.sent} MB read of a body bounded at 16 KB"
        disposition = b'Content-Disposition: form-data; name="image"; filename="a.jpg"\r\n'
        upload = Counted(b"--b\r\n" + disposition + b"Content-Type: image/jpeg\r\n\r\n", 300, b"\r\n--b--\r\n")
        try:
            r = http.post(image, content=upload, headers=multipart)
            assert r.status_code == 413 and "20 MB" in r.json()["error"]
        except httpx.TransportError:
            pass  # the server answered 413 and closed while the client was still sending
        assert upload.sent < 60, f"{upload.sent} MB read of an upload bounded at 20 MB"


def test_a_connection_that_sends_nothing_or_too_slowly_is_closed(app):
    import socket

    def closed_within(first: bytes, seconds: float) -> bool:
        with socket.create_connection(("127.0.0.1", app.port), timeout=seconds) as s:
            s.sendall(first)
            try:
                return s.recv(100) == b""  # closed by the server, nothing answered
            except TimeoutError:
                return False

    started = time.monotonic()
    assert closed_within(b"", 5)  # silent
    assert closed_within(b"GET /healthz HTTP/1.1\r\nX-Slow: ", 5)  # headers never finished
    body = b"POST /api/judgments HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 99\r\n\r\n{"
    assert closed_within(body, 5)  # a body that stops
    assert time.monotonic() - started < 10
    assert httpx.get(app.url + "healthz", timeout=5).status_code == 200


def timed(call) -> tuple[httpx.Response, float]:
    started = time.perf_counter()
    answer = call()
    return answer, time.perf_counter() - started


@pytest.mark.services
def test_a_dead_redis_gives_fast_503s_and_a_restarted_empty_one_is_repaired_by_the_build(tmp_path, shop):
    from conftest import RedisServer

    catalog, args = shop
    redis = RedisServer(tmp_path)
    args = [*args, "--online-store", redis.url]
    flags = dict(zip(args[::2], args[1::2]))
    try:
        assert build(args).returncode == 0
        env = {"MMSEARCH_INDEX": flags["--index"], "MMSEARCH_MODEL": flags["--model"], "MMSEARCH_CATALOG": str(catalog)}
        app = RunningApp(tmp_path / "data", env)
        http = httpx.Client(base_url=app.url, timeout=30)
        try:
            seen = [h["item_id"] for h in http.get("/api/search", params={"q": "mug", "k": 3}).json()["results"]]
            redis.kill()
            for _ in range(3):
                answer, took = timed(lambda: http.get("/api/search", params={"q": "red cotton tee", "k": 12}))
                assert answer.status_code == 503 and "Feast online store" in answer.json()["error"], answer.text
                assert answer.headers["Retry-After"] and took < 1.5
                health, took = timed(lambda: http.get("/healthz"))
                assert health.status_code == 200 and took < 0.5
            ready = http.get("/readyz?verbose=1")
            assert ready.status_code == 503 and ready.json()["checks"]["feature_store"] is False
            assert 'mmsearch_dependency_up{part="feature_store"} 0.0' in http.get("/metrics").text
            stopped = build(args)  # a build against the dead store: one line, exit 2
            said = [line for line in stopped.stderr.splitlines() if line.startswith("error:")]
            assert stopped.returncode == 2 and "Traceback" not in stopped.stderr, stopped.stderr[-2000:]
            assert len(said) == 1 and "Feast" in said[0]
            redis.start()  # back, and empty: it kept nothing
            unseen = next(i for i in (f"demo-{n:05d}" for n in range(48)) if i not in seen)
            for _ in range(50):  # the store is checked every second while it is down: wait for a check to find it
                lost = http.get("/api/items/" + unseen)
                if "cannot be read" not in lost.json()["error"]:
                    break
                time.sleep(0.2)
            assert http.get("/api/items/" + seen[0]).json()["title"]  # read before the outage: kept in memory
            assert lost.status_code == 503 and "lacks the listings" in lost.json()["error"]  # never a blank listing
            assert (
                http.get("/readyz?verbose=1").json()["checks"]["feature_store"] is False
            )  # answers, but lost its rows
            rerun = build(args)  # nothing changed in the catalog: the rows are written back, nothing encoded
            assert rerun.returncode == 0 and "back to the online store, nothing encoded" in rerun.stdout, rerun.stdout
            assert "encoded 0" in rerun.stdout
            assert http.get("/readyz?verbose=1").status_code == 200
            assert http.get("/api/items/" + unseen).json()["title"] != unseen
            assert app.log().count("is down") == 1  # one line an outage, not one a request
        finally:
            http.close()
            app.stop()
    finally:
        redis.stop()


@pytest.mark.services
def test_a_database_outage_is_answered_503_and_what_was_acknowledged_is_kept(
    tmp_path, demo_manifest, tiny_two_tower_dir
):
    from conftest import PostgresServer
    from sqlalchemy import create_engine, text

    database = PostgresServer()
    env = {"MMSEARCH_DATABASE_URL": database.url, "MMSEARCH_JUDGING": "open"}
    app = RunningApp(
        tmp_path,
        {
            "MMSEARCH_CATALOG": str(demo_manifest),
            "MMSEARCH_MODEL": f"two-tower:{tiny_two_tower_dir}",
            "MMSEARCH_DUPLICATE_THRESHOLD": "0",
            **env,
        },
    )
    http = httpx.Client(base_url=app.url, timeout=30)
    try:
        item = http.get("/api/search", params={"q": "mug", "k": 1}).json()["results"][0]["item_id"]
        grade = {"query": "mug", "item_id": item, "grade": 3, "rater": "ann"}
        assert http.post("/api/judgments", json=grade).status_code == 201
        database.stop()
        answered = [http.get("/api/search", params={"q": f"mug {n}", "k": 3}) for n in range(5)]
        assert all(a.status_code == 200 for a in answered)  # searches go on; their log waits for the database
        for call in (
            lambda: http.post("/api/judgments", json=grade | {"rater": "bob"}),
            lambda: http.get("/api/analytics", params={"days": 7}),
            lambda: http.get("/api/judgments/qrels"),
        ):
            r = call()
            assert r.status_code == 503 and r.headers["Retry-After"] and "database" in r.json()["error"], r.text
        ready = http.get("/readyz?verbose=1")
        assert ready.status_code == 503 and ready.json()["checks"]["database"] is False
        time.sleep(2.5)  # the log's writer tries each second
        metrics = http.get("/metrics").text
        assert 'mmsearch_dependency_up{part="database"} 0.0' in metrics and "mmsearch_searchlog_waiting " in metrics
        database.start()
        for _ in range(50):
            if http.get("/readyz?verbose=1").status_code == 200 and "answers again" in app.log():
                break
            time.sleep(0.2)
        assert http.get("/readyz?verbose=1").status_code == 200
        assert app.log().count("the database is down") == 1  # one line an outage, not one a retry
        engine = create_engine(database.url.replace("postgresql://", "postgresql+psycopg://"))
        with engine.connect() as c:
            ids = {r[0] for r in c.execute(text("SELECT query_id FROM searches"))}
            kept = c.execute(text("SELECT rater FROM judgments")).scalars().all()
        engine.dispose()
        assert {a.json()["query_id"] for a in answered} <= ids and kept == ["ann"]
    finally:
        http.close()
        app.stop()
        database.remove()


def test_a_build_that_fills_the_disk_says_so_in_one_line_and_leaves_the_served_index(tmp_path, shop):
    """The index's folder on a tmpfs that holds one build but not the next (a swap needs room for both): the update
    build stops with one line and exit 2, and the served index is the one before, with nothing beside it. The tmpfs
    is mounted in a user namespace of its own (``unshare``), so the test needs no privilege."""
    import shlex
    import shutil

    catalog, args = shop
    unshare = shutil.which("unshare")
    ix = tmp_path / "ix"
    ix.mkdir()
    probe = subprocess.run([unshare or "unshare", "-rm", "true"], capture_output=True) if unshare else None
    if probe is None or probe.returncode != 0:
        pytest.skip("mounting a small tmpfs needs unshare and user namespaces (util-linux; a kernel that allows them)")
    rename = f"sed -i 's/,[^,]*cotton/,renamed cotton/' {shlex.quote(str(catalog))}"
    command = " ".join(shlex.quote(a) for a in [sys.executable, "index_build.py", *args])
    script = (
        f"mount -t tmpfs -o size=8m tmpfs {shlex.quote(str(ix))} && {command} >/dev/null && "
        # room for the first build and half of it again: the next build's swap needs room for both
        f"used=$(du -sk {shlex.quote(str(ix))} | cut -f1) && "
        f"mount -o remount,size=$((used * 3 / 2))k {shlex.quote(str(ix))} && {rename} && "
        f"{{ {command} >/dev/null 2>{tmp_path}/err; echo $? > {tmp_path}/rc; }}; "
        f"ls -A {shlex.quote(str(ix))} > {tmp_path}/left; cat {ix}/shop/manifest.json > {tmp_path}/manifest"
    )
    done = subprocess.run([unshare, "-rm", "sh", "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    said = (tmp_path / "err").read_text().strip().splitlines()
    assert (tmp_path / "rc").read_text().strip() == "2"
    assert said[-1].startswith("error: no space left on the device") and "Traceback" not in "".join(said)
    assert (tmp_path / "left").read_text().split() == ["shop"]  # nothing half-written beside it
    assert '"added": 48' in (tmp_path / "manifest").read_text()  # the first build's, served as before
