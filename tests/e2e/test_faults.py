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
