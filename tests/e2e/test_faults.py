"""Faults of the real parts, one scenario a test, through the public surface: a build killed in its index swap, then
the app started and the build rerun. (tests/test_atomic.py kills a swap at each of its system calls with strace.)"""

from __future__ import annotations

import signal
import subprocess
import sys

import httpx
import pandas as pd
import pytest
from conftest import ROOT, RunningApp

pytestmark = [pytest.mark.slow, pytest.mark.e2e]


# index_build.py killed (SIGKILL, no clean-up) the instant it would exchange its finished index with the served one.
KILLED_AT_THE_SWAP = """
import os, runpy, signal, sys
from mmsearch import atomic
atomic.exchange = lambda finished, served: os.kill(os.getpid(), signal.SIGKILL)
sys.argv = ["index_build.py", *sys.argv[1:]]
runpy.run_path("index_build.py", run_name="__main__")
"""


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


class Counted:
    """A request body sent as it is generated, counting what the server took before it answered."""

    def __init__(self, head: bytes, megabytes: int, tail: bytes = b""):
        self.head, self.megabytes, self.tail, self.sent = head, megabytes, tail, 0

    def __iter__(self):
        yield self.head
        for _ in range(self.megabytes):
            self.sent += 1
            yield b" " * 2**20
        yield self.tail


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
        chunked = Counted(b"", 40)  # no Content-Length: the bound must hold while reading
        r = http.post("/api/judgments", content=chunked, headers={"content-type": "application/json"})
        assert r.status_code == 413 and "16 KB" in r.json()["error"]
        assert chunked.sent < 4, f"{chunked.sent} MB read of a body bounded at 16 KB"
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
    import time

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
