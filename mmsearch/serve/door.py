"""The door in front of Gradio's event routes (ASGI middleware): what Gradio would otherwise copy or misreport.

- An event whose inputs name a server file that was not uploaded (anything outside the upload folder, or a path that
  does not resolve) is refused before Gradio copies it anywhere, with NOT_UPLOADED whatever the path. http(s) URLs
  pass: Gradio fetches those itself, through its public-address-only client.
- A raw HTTP call (``/gradio_api/call/<name>`` or ``/run/<name>``) with too few inputs is told which are missing, by
  name, instead of Gradio's message about component objects.
"""

from __future__ import annotations

import inspect
import json
from pathlib import Path

import gradio as gr

from mmsearch.serve.guard import NOT_UPLOADED, Forbidden, uploaded_file


def event_inputs(demo: gr.Blocks) -> dict[str, list[str]]:
    """Each public event's input names, in order (its function's parameters): what a raw HTTP call must send."""
    out = {}
    for fn in demo.fns.values():
        if fn.api_name and fn.fn is not None and fn.inputs:
            names = [p for p in inspect.signature(fn.fn).parameters if p not in ("request", "evt", "progress")]
            out[str(fn.api_name)] = names[: len(fn.inputs)]
    return out


def _named_paths(value: object):
    """Every file path a Gradio payload names: the ``path`` of each FileData object, however deeply nested."""
    if isinstance(value, dict):
        if isinstance(value.get("path"), str) and (
            "meta" in value or "orig_name" in value or "url" in value or len(value) <= 3
        ):
            yield value["path"]
        for v in value.values():
            yield from _named_paths(v)
    elif isinstance(value, list):
        for v in value:
            yield from _named_paths(v)


class GradioDoor:
    """Checks each event call's JSON before Gradio sees it (see the module's docstring)."""

    EVENT_PATHS = ("/gradio_api/queue/join", "/gradio_api/call/", "/gradio_api/run/", "/gradio_api/api/")
    MAX_BODY = 4 << 20  # an event's JSON: files travel separately, through /gradio_api/upload

    def __init__(self, app, upload_dir: str | Path, inputs: dict[str, list[str]] | None = None):
        self.app, self.upload_dir, self.inputs = app, upload_dir, inputs or {}

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope["method"] != "POST" or not scope["path"].startswith(self.EVENT_PATHS):
            return await self.app(scope, receive, send)
        body, more = b"", True
        while more:
            message = await receive()
            body += message.get("body", b"")
            more = message.get("more_body", False)
            if len(body) > self.MAX_BODY:
                return await _json(send, 413, {"error": "The request is too large."})
        payload = _parse(body)
        if not self._acceptable(payload):
            return await _json(send, 400, {"error": NOT_UPLOADED})
        missing = self._missing(scope["path"], payload)
        if missing:
            return await _json(send, 400, {"error": missing})
        replayed = False

        async def replay():
            nonlocal replayed
            if replayed:
                return await receive()
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}

        return await self.app(scope, replay, send)

    def _missing(self, path: str, payload: object) -> str:
        name = path.rstrip("/").rsplit("/", 1)[-1]
        wanted = self.inputs.get(name)
        if (
            not path.startswith(("/gradio_api/call/", "/gradio_api/run/"))
            or wanted is None
            or not isinstance(payload, dict)
        ):
            return ""
        data = payload.get("data")
        if not isinstance(data, list):
            return f'/{name} takes its inputs as a JSON list under "data", in this order: {", ".join(wanted)}.'
        if len(data) < len(wanted):
            return (
                f"/{name} needs {len(wanted)} inputs in this order: {', '.join(wanted)}; got {len(data)}, so "
                f"{', '.join(wanted[len(data) :])} {'is' if len(wanted) - len(data) == 1 else 'are'} missing "
                f"(send null for a default)."
            )
        return ""

    def _acceptable(self, payload: object) -> bool:
        for path in _named_paths(payload):
            if path.startswith(("http://", "https://")):
                continue
            try:
                uploaded_file(path, self.upload_dir)
            except Forbidden:
                return False
        return True


def _parse(body: bytes) -> object:
    try:
        return json.loads(body or b"null")
    except ValueError:
        return None  # not JSON: Gradio answers it with its own error


async def _json(send, status: int, body: dict) -> None:
    data = json.dumps(body).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(data)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": data})
