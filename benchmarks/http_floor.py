"""What any request costs before mmsearch does anything: the floor under the REST and Gradio API figures.

    python benchmarks/http_floor.py

Starts two servers that do nothing, each in its own process on loopback, and times one client against them:

- a bare ASGI app under uvicorn (the server ``python app.py`` runs), answering a fixed JSON body, with httpx (the
  client the README shows) and with the standard library's http.client;
- a Gradio app with one API function that returns its input (``gr.api``, mounted on FastAPI as mmsearch mounts its UI),
  called the three ways the README shows: the raw ``/gradio_api/run/`` POST, the queued ``/gradio_api/call/`` POST and
  its event stream, and ``gradio_client``.

``benchmarks/load.py`` compares mmsearch's REST and Gradio figures with the in-process search time; this script says
how much of those figures no handler can remove on the same machine.
"""

from __future__ import annotations

import argparse
import json
import socket
import statistics
import subprocess
import sys
import time

import httpx

BARE = """
import uvicorn
async def app(scope, receive, send):
    if scope["type"] == "http":
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"application/json")]})
        await send({"type": "http.response.body", "body": b'{"status": "ok"}'})
uvicorn.run(app, host="127.0.0.1", port=PORT, log_level="warning")
"""
GRADIO = """
import gradio as gr, uvicorn
from fastapi import FastAPI
def echo(q: str) -> str:
    return q
with gr.Blocks() as demo:
    gr.api(echo, api_name="echo")
demo.queue()
uvicorn.run(gr.mount_gradio_app(FastAPI(), demo, path="/"), host="127.0.0.1", port=PORT, log_level="warning")
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def serve(source: str) -> tuple[subprocess.Popen, str]:
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-c", source.replace("PORT", str(port))])
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 120
    while time.time() < deadline:
        try:
            httpx.get(url + "/", timeout=1)
            return proc, url
        except httpx.HTTPError:
            time.sleep(0.3)
    proc.kill()
    raise SystemExit("a floor server did not start within 120 s")


def median_ms(fn, n: int) -> float:
    for _ in range(max(10, n // 10)):
        fn()
    took = []
    for _ in range(n):
        start = time.perf_counter()
        fn()
        took.append(1000 * (time.perf_counter() - start))
    return round(statistics.median(took), 3)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=2000, help="requests per figure (gradio_client: a tenth)")
    args = parser.parse_args()
    import http.client

    from gradio_client import Client

    report = {}
    proc, url = serve(BARE)
    try:
        with httpx.Client(base_url=url) as client:
            report["bare_uvicorn_httpx_ms"] = median_ms(lambda: client.get("/"), args.requests)
        conn = http.client.HTTPConnection("127.0.0.1", int(url.rsplit(":", 1)[1]))

        def plain() -> None:
            conn.request("GET", "/")
            conn.getresponse().read()

        report["bare_uvicorn_http_client_ms"] = median_ms(plain, args.requests)
    finally:
        proc.terminate()
    proc, url = serve(GRADIO)
    try:
        with httpx.Client(base_url=url) as client:

            def run() -> None:
                client.post("/gradio_api/run/echo", json={"data": ["hi"]}).raise_for_status()

            def call() -> None:
                event = client.post("/gradio_api/call/echo", json={"data": ["hi"]}).json()["event_id"]
                client.get(f"/gradio_api/call/echo/{event}").raise_for_status()

            report["gradio_run_ms"] = median_ms(run, args.requests // 4)
            report["gradio_call_and_stream_ms"] = median_ms(call, args.requests // 4)
        gradio = Client(url + "/", verbose=False, download_files=False)
        report["gradio_client_ms"] = median_ms(lambda: gradio.predict("hi", api_name="/echo"), args.requests // 10)
    finally:
        proc.terminate()
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
