"""The guard in front of Gradio's event routes (ASGI middleware): what Gradio would otherwise copy or misreport.

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

Input = tuple[str, bool, object]  # an event input's name, whether it has a default, and the default


def event_inputs(demo: gr.Blocks) -> dict[str | int, list[Input]]:
    """Each named event's inputs in order (its function's parameters), by api_name and by fn_index: what a call must
    send, and what it may leave out."""
    out: dict[str | int, list[Input]] = {}
    for index, fn in demo.fns.items():
        if fn.api_name and fn.fn is not None and fn.inputs:
            found = [
                (
                    name,
                    p.default is not inspect.Parameter.empty,
                    None if p.default is inspect.Parameter.empty else p.default,
                )
                for name, p in inspect.signature(fn.fn).parameters.items()
                if name not in ("request", "evt", "progress")
            ]
            out[str(fn.api_name)] = out[index] = found[: len(fn.inputs)]
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


class GradioGuard:
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
        body = self._completed(scope["path"], payload) or body
        replayed = False

        async def replay():
            nonlocal replayed
            if replayed:
                return await receive()
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}

        return await self.app(scope, replay, send)

    def _wanted(self, path: str, payload: object) -> list[Input] | None:
        """The inputs of the event a call names: by its path (``/call/<name>``) or its ``fn_index``."""
        if not isinstance(payload, dict):
            return None
        if path.startswith(("/gradio_api/call/", "/gradio_api/run/")):
            return self.inputs.get(path.rstrip("/").rsplit("/", 1)[-1])
        return self.inputs.get(payload.get("fn_index"))

    def _missing(self, path: str, payload: object) -> str:
        wanted = self._wanted(path, payload)
        if wanted is None or not path.startswith(("/gradio_api/call/", "/gradio_api/run/")):
            return ""
        name, names = path.rstrip("/").rsplit("/", 1)[-1], [n for n, _, _ in wanted]
        data = payload.get("data")
        if not isinstance(data, list):
            return f'/{name} takes its inputs as a JSON list under "data", in this order: {", ".join(names)}.'
        if len(data) < len(names):  # Gradio would take the call and fail its event: say so now, and what is missing
            return (
                f"/{name} needs {len(names)} inputs in this order: {', '.join(names)}; got {len(data)}, so "
                f"{', '.join(names[len(data) :])} {'is' if len(names) - len(data) == 1 else 'are'} missing "
                f"(send null for a default)."
            )
        return ""

    def _completed(self, path: str, payload: object) -> bytes | None:
        """A client's call (``queue/join``) that leaves out trailing inputs with defaults, with the defaults filled
        in: gradio_client fills them itself from the API's description, except for an event it is not told about (an
        old name, no longer listed), for which it sends only what it was given. None when nothing is added; a raw
        ``/call/`` is told what is missing instead (``_missing``)."""
        if path.startswith(("/gradio_api/call/", "/gradio_api/run/")):
            return None
        wanted = self._wanted(path, payload)
        data = payload.get("data") if isinstance(payload, dict) else None
        if wanted is None or not isinstance(data, list) or len(data) >= len(wanted):
            return None
        if not all(has_default for _, has_default, _ in wanted[len(data) :]):
            return None
        return json.dumps(payload | {"data": data + [default for _, _, default in wanted[len(data) :]]}).encode()

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
