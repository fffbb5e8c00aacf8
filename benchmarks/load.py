"""Load on the REST API as scripts meet it: concurrent httpx clients against ``python app.py`` over loopback.

    python benchmarks/load.py                                  # starts the demo app, 1/4/16/64 clients x 30 s
    python benchmarks/load.py --levels 1,16 --seconds 10       # shorter
    python benchmarks/load.py --url http://host:7860/          # a server that is already running (no RSS figures)
    python benchmarks/load.py --events                         # each text search followed by a click event
    python benchmarks/load.py --app-args=--no-record           # nothing recorded: the baseline for --events

The mix: hybrid text searches (labelled demo queries, so the text encoder's cache sees repeats as a live site
would), uploads of catalog pictures, filtered vector searches and similar items. Per level: queries a second, p50 /
p95 / p99 milliseconds as the client sees them, errors (any answer but 200, 429 or 503), 429s and 503s (the uploads'
queue full: back-pressure, with Retry-After). Before the levels, the
same requests run in this process through the Searcher (the in-process time the REST path is compared with), one
client through REST, and the Gradio API with ``gradio_client`` with and without picture downloads. The server's
resident memory is read before and after the levels.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import io
import json
import multiprocessing
import os
import subprocess
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import httpx
import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def start_app(port: int, extra: list[str]) -> subprocess.Popen:
    proc = subprocess.Popen(
        [sys.executable, "app.py", "--port", str(port), *extra],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.time() + 900  # a first start builds the demo index
    while time.time() < deadline:
        if proc.poll() is not None:
            raise SystemExit("app.py exited before it was ready")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=2).status_code == 200:
                return proc
        except httpx.HTTPError:
            pass
        time.sleep(1)
    proc.kill()
    raise SystemExit("app.py was not ready within 15 minutes")


def rss_mb(pid: int | None) -> float | None:
    if pid is None:
        return None
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return round(int(line.split()[1]) / 1024, 1)
    return None


def request_mix(http: httpx.Client, n: int = 200) -> list[dict]:
    """n requests, as data: what to send and how the in-process searcher would answer the same."""
    with open(ROOT / "assets" / "demo-queries.csv", newline="") as fh:
        texts = [row["query"] for row in csv.DictReader(fh)]
    seed = http.get("/api/search", params={"q": "striped", "k": 40, "mode": "vector"}).json()["results"]
    ids = [r["item_id"] for r in seed]
    pictures = [http.get(r["image_url"]).content for r in seed[:8]]
    categories = sorted({r["category"] for r in seed if r["category"]}) or ["mug"]
    mix = []
    for i in range(n):
        kind = ("text", "text", "text", "text", "text", "text", "image", "filtered", "filtered", "similar")[i % 10]
        if kind == "text":
            mix.append({"kind": kind, "params": {"q": texts[i % len(texts)], "k": 12}})
        elif kind == "filtered":
            mix.append(
                {
                    "kind": kind,
                    "params": {
                        "q": texts[(7 * i) % len(texts)],
                        "k": 12,
                        "mode": "vector",
                        "filters": f"category={categories[i % len(categories)]}",
                    },
                }
            )
        elif kind == "image":
            mix.append({"kind": kind, "image": pictures[i % len(pictures)], "params": {"k": 12}})
        else:
            mix.append({"kind": kind, "item": ids[i % len(ids)], "params": {"k": 12}})
    return mix


def send_args(req: dict) -> tuple[str, str, dict]:
    if req["kind"] == "image":
        return (
            "POST",
            "/api/search/image",
            {"files": {"image": ("q.jpg", req["image"], "image/jpeg")}, "data": req["params"]},
        )
    if req["kind"] == "similar":
        return "GET", f"/api/items/{req['item']}/similar", {"params": req["params"]}
    return "GET", "/api/search", {"params": req["params"]}


def in_process(args, mix: list[dict]) -> list[float]:
    """The same requests through the Searcher of this process: the floor the HTTP path is compared with."""
    from PIL import Image

    from mmsearch import settings as cfgmod
    from mmsearch.builder.pipeline import ensure_index
    from mmsearch.encode.encoders import load_encoder
    from mmsearch.search.searcher import Searcher

    cfg = cfgmod.from_env(reload_interval=0.0)
    encoder = load_encoder(cfg.model, cfg.device)
    searcher = Searcher.open(ensure_index(cfg, encoder), encoder)

    def run(req: dict) -> None:
        p = req["params"]
        if req["kind"] == "image":
            wanted = searcher.request(image=Image.open(io.BytesIO(req["image"])), k=p["k"])
        elif req["kind"] == "similar":
            wanted = searcher.request(item_id=req["item"], k=p["k"])
        else:
            wanted = searcher.request(q=p["q"], k=p["k"], filters=p.get("filters"), mode=p.get("mode"))
        searcher.search(wanted)

    for req in mix[:20]:
        run(req)
    took = []
    for req in mix * 2:
        start = time.perf_counter()
        run(req)
        took.append(1000 * (time.perf_counter() - start))
    return took


def one_client(http: httpx.Client, mix: list[dict]) -> list[float]:
    for req in mix[:20]:
        method, path, kw = send_args(req)
        http.request(method, path, **kw)
    took = []
    for req in mix * 2:
        method, path, kw = send_args(req)
        start = time.perf_counter()
        r = http.request(method, path, **kw)
        took.append(1000 * (time.perf_counter() - start))
        r.raise_for_status()
    return took


def gradio_paths(url: str, mix: list[dict], runs: int = 60) -> dict:
    """The Gradio API for the same text searches, as a script meets it through gradio_client."""
    from gradio_client import Client

    texts = [req["params"]["q"] for req in mix if req["kind"] == "text"][:runs]
    out = {}
    for name, download in (("gradio_client_ms", False), ("gradio_client_downloading_ms", True)):
        client = Client(url, verbose=False, download_files=download)
        client.predict(texts[0], 12, api_name="/search_text")
        took = []
        for q in texts[: runs if not download else runs // 3]:
            start = time.perf_counter()
            client.predict(q, 12, api_name="/search_text")
            took.append(1000 * (time.perf_counter() - start))
        out[name] = summary(took)
    return out


async def _callers(
    url: str, mix: list[dict], clients: int, seconds: float, offset: int, events: bool = False
) -> tuple[list, dict]:
    """With ``events``, each answered text search is followed by a click on its first result, as a shop's page
    would send it (POST /api/events); only the searches are timed."""
    took, codes = [], {}
    deadline = time.perf_counter() + seconds
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(base_url=url, timeout=60, limits=limits) as http:

        async def caller(i: int) -> None:
            while time.perf_counter() < deadline:
                req = mix[i % len(mix)]
                method, path, kw = send_args(req)
                start = time.perf_counter()
                try:
                    answer = await http.request(method, path, **kw)
                    status = answer.status_code
                except httpx.HTTPError as exc:
                    status = type(exc).__name__
                took.append(1000 * (time.perf_counter() - start))
                codes[status] = codes.get(status, 0) + 1
                i += 1
                if events and status == 200 and req["kind"] == "text":
                    body = answer.json()
                    if body["results"]:
                        click = {"query_id": body["query_id"], "item_id": body["results"][0]["item_id"]}
                        sent = await http.post("/api/events", json=click | {"position": 1, "action": "click"})
                        codes[f"event {sent.status_code}"] = codes.get(f"event {sent.status_code}", 0) + 1

        await asyncio.gather(*(caller(offset + c * 7) for c in range(clients)))
    return took, codes


def _process_share(args: tuple) -> tuple[list, dict]:
    return asyncio.run(_callers(*args))


def level(url: str, mix: list[dict], clients: int, seconds: float, events: bool = False) -> dict:
    """``clients`` concurrent callers: asyncio httpx clients, at most 16 connections to a client process. One
    asyncio client holding 64 connections was itself the bottleneck (the server sat 94% idle), and a thread per
    caller spent the client's CPU on the GIL."""
    processes = max(1, clients // 16)
    shares = [
        (url, mix, clients // processes + (p < clients % processes), seconds, 1000 * p, events)
        for p in range(processes)
    ]
    started = time.perf_counter()
    with ProcessPoolExecutor(processes, mp_context=multiprocessing.get_context("fork")) as pool:
        parts = list(pool.map(_process_share, shares))
    elapsed = time.perf_counter() - started
    took = [t for part, _ in parts for t in part]
    codes: dict = {}
    for _, part in parts:
        for k, v in part.items():
            codes[k] = codes.get(k, 0) + v
    answered = codes.get(200, 0)
    return {
        "clients": clients,
        "client_processes": processes,
        "queries_per_s": round(answered / elapsed, 1),
        **summary(took),
        "requests": sum(codes.values()),
        "busy_429": codes.get(429, 0),
        # 503 with Retry-After: the uploads' bounded queue was full (docs/faults.md), the server's back-pressure
        "busy_503": codes.get(503, 0),
        "errors": sum(v for k, v in codes.items() if k not in (200, 429, 503) and not str(k).startswith("event")),
        "events_accepted": codes.get("event 202", 0),
        "events_refused": sum(v for k, v in codes.items() if str(k).startswith("event") and k != "event 202"),
        "answers": {str(k): v for k, v in sorted(codes.items(), key=str)},  # every status, so an error says what
    }


def summary(took: list[float]) -> dict:
    a = np.asarray(took)
    return {
        "p50": round(float(np.percentile(a, 50)), 2),
        "p95": round(float(np.percentile(a, 95)), 2),
        "p99": round(float(np.percentile(a, 99)), 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", help="a running server (default: start python app.py with the demo)")
    parser.add_argument("--levels", default="1,4,16,64", help="concurrent clients per level")
    parser.add_argument("--seconds", type=float, default=30.0, help="length of each level")
    parser.add_argument("--app-args", default="", help="extra flags for app.py when this script starts it")
    parser.add_argument("--report", type=Path, help="also write the figures here as JSON")
    parser.add_argument(
        "--events",
        action="store_true",
        help="follow each text search with a click event (POST /api/events); compare with --app-args=--no-record",
    )
    args = parser.parse_args()

    proc = None
    url = args.url
    if url is None:
        import socket

        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        proc = start_app(port, args.app_args.split())
        url = f"http://127.0.0.1:{port}/"
    report: dict = {"url": url, "cpus": os.cpu_count()}
    try:
        with httpx.Client(base_url=url, timeout=60) as http:
            mix = request_mix(http)
            if proc is not None:
                report["in_process_ms"] = summary(in_process(args, mix))
            report["rest_one_client_ms"] = summary(one_client(http, mix))
        if "in_process_ms" in report:
            report["rest_over_in_process_p50"] = round(
                report["rest_one_client_ms"]["p50"] / report["in_process_ms"]["p50"], 2
            )
        report |= gradio_paths(url, mix)
        print(json.dumps(report, indent=1), flush=True)
        pid = proc.pid if proc else None
        report["server_rss_mb_before"] = rss_mb(pid)
        report["levels"] = []
        for clients in (int(c) for c in args.levels.split(",")):
            figures = level(url, mix, clients, args.seconds, args.events)
            report["levels"].append(figures)
            print(json.dumps(figures), flush=True)
        report["server_rss_mb_after"] = rss_mb(pid)
        if pid is not None:
            report["rss_after_over_before"] = round(report["server_rss_mb_after"] / report["server_rss_mb_before"], 3)
    finally:
        if proc is not None:
            proc.terminate()
            proc.wait(30)
    print(json.dumps(report, indent=1))
    if args.report:
        args.report.write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
