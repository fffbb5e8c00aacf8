"""Pretrained towers run by ONNX Runtime on the CPU: the image tower, where builds and uploads spend their time, and
a pretrained text tower's queries.

Each is exported once per weights, side and library versions with torch's ONNX exporter and kept in the user's cache
(about 10 s the first time; 19 MB for Lite0, 25 MB for Lite2, 90 MB for MiniLM); each process then opens the file.
Image towers on 2 cores, batch 32, the same pooled features to 1.2e-5: Lite0 at 160 px 121 -> 354 images/s, Lite2 at
260 px 28 -> 81 (docs/zero-shot.md, benchmarks/zero_shot.py). On a GPU, or where the runtime or the export fails,
torch runs it; the log says why.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import tempfile
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from mmsearch.atomic import atomic_write_bytes
from mmsearch.encode.frozen import EncodeText
from mmsearch.encode.image_towers import TOWERS, ImageTower
from mmsearch.resources import cache_dir

log = logging.getLogger("mmsearch.encode")
INPUT, OUTPUTS = "pixels", ("pooled", "probabilities")
IDS, MASK, VECTORS = "ids", "mask", "vectors"


@dataclass(frozen=True)
class Export:
    """What torch's exporter is given: a module, example inputs, their names, and which of their dimensions are free."""

    module: torch.nn.Module
    example: tuple[torch.Tensor, ...]
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    free: tuple[dict, ...]


def exported(what: Export) -> bytes:
    """The module as an ONNX model."""
    import warnings

    # The exporter narrates its passes as warnings and its optimiser's as INFO logs (a hundred lines for MiniLM)
    quiet = [logging.getLogger(name) for name in ("onnxscript", "onnx_ir", "torch.onnx", "torch.export")]
    levels = [logger.level for logger in quiet]
    with warnings.catch_warnings(), tempfile.TemporaryDirectory() as tmp, contextlib.ExitStack() as undo:
        warnings.simplefilter("ignore")
        for logger, level in zip(quiet, levels):
            logger.setLevel(logging.WARNING)
            undo.callback(logger.setLevel, level)
        program = torch.onnx.export(
            what.module.eval(),
            what.example,
            input_names=list(what.inputs),
            output_names=list(what.outputs),
            dynamic_shapes=what.free,
            dynamo=True,
            verbose=False,
        )
        path = Path(tmp) / "model.onnx"
        program.save(str(path))
        return path.read_bytes()


# A process forked from one that holds sessions (DataLoader's workers, the demo's renderers) must never destroy
# them: a session's destructor waits on its thread pool and its locks, which the child inherits without their threads
# (a child hung for good in the collector, freeing a session that was garbage in its parent). The child keeps every
# session its parent had alive to its end; the parent frees them as usual.
_SESSIONS: weakref.WeakSet = weakref.WeakSet()
_KEPT_IN_CHILD: list = []


def _keep_sessions_in_child() -> None:
    _KEPT_IN_CHILD.extend(_SESSIONS)


os.register_at_fork(after_in_child=_keep_sessions_in_child)


def _open(model: bytes | Path):
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads, options.inter_op_num_threads = torch.get_num_threads(), 1
    made = ort.InferenceSession(model if isinstance(model, bytes) else str(model), options, ["CPUExecutionProvider"])
    _SESSIONS.add(made)
    return made


def session(label: str, said: list, export: Callable[[], Export]):
    """An ONNX Runtime session of the module ``export`` describes, from the user's cache when a process before made
    it (``said``: what the weights and the libraries are; another of either is another file). Raises where the
    runtime or the exporter cannot: the caller runs torch."""
    import onnxruntime

    key = hashlib.sha256(repr([*said, torch.__version__, onnxruntime.__version__]).encode()).hexdigest()[:16]
    path = cache_dir("towers") / f"{label}-{key}.onnx"
    if path.is_file():
        try:
            return _open(path)
        except Exception as exc:  # a cached file cut short: exported again below
            log.warning("exporting %s again: its cached copy %s does not open (%s)", label, path, exc)
    model = exported(export())
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(path, model)
    except OSError as exc:  # a read-only home: exported again by the next process, nothing lost
        log.info("cannot keep the exported %s in %s: %s", label, path, exc)
    return _open(model)


class RuntimeTower:
    """What ImageTower answers for inference (pooled features, ImageNet probabilities), from an ONNX Runtime session."""

    def __init__(self, tower: ImageTower, runtime):
        self.name, self.size, self.preprocess, self.width = tower.name, tower.size, tower.preprocess, tower.width
        self.session = runtime

    def __call__(self, pixels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        feed = np.ascontiguousarray(pixels.detach().cpu().numpy(), dtype=np.float32)
        pooled, probabilities = self.session.run(list(OUTPUTS), {INPUT: feed})
        return torch.from_numpy(pooled), torch.from_numpy(probabilities)


def runtime_tower(tower: ImageTower, device: torch.device | str = "cpu") -> ImageTower | RuntimeTower:
    """``tower`` run by ONNX Runtime where that is faster (the CPU), else ``tower`` itself."""
    if torch.device(device).type != "cpu":
        return tower

    def export() -> Export:
        example = torch.zeros(2, 3, tower.size, tower.size)
        return Export(tower, (example,), (INPUT,), OUTPUTS, ({0: torch.export.Dim("batch")},))

    said = [tower.name, tower.size, TOWERS[tower.name].sha256]
    try:
        return RuntimeTower(tower, session(f"{tower.name}-{tower.size}", said, export))
    except Exception as exc:  # no onnxruntime / onnxscript, or an exporter that fails: torch still runs it
        log.warning(
            "%s@%d runs in torch (ONNX Runtime unavailable: %s: %s)", tower.name, tower.size, type(exc).__name__, exc
        )
        return tower


def runtime_text(name: str, sha256: str, module: torch.nn.Module, max_length: int):
    """A pretrained text tower's ``encode_text`` (token ids, mask -> vectors) run by ONNX Runtime, or None where it
    cannot be (the log says why): all-MiniLM-L6-v2 4.6 ms a query where TorchScript's frozen graph takes 6.4 (p50 of
    90, tokenising included, 2 cores; the same vectors to 1.3e-6)."""

    def export() -> Export:
        ids = torch.tensor([[101, 2000, 2001, 102], [101, 2002, 102, 0]])
        free = {0: torch.export.Dim("batch"), 1: torch.export.Dim("length", max=max_length)}
        return Export(EncodeText(module), (ids, (ids > 0).long()), (IDS, MASK), (VECTORS,), (free, free))

    try:
        runtime = session(f"text-{name.replace('/', '--')}", [name, sha256, max_length], export)
    except Exception as exc:
        log.warning("the text tower %s runs in torch (ONNX Runtime unavailable: %s: %s)", name, type(exc).__name__, exc)
        return None

    def run(ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        feed = {IDS: ids.numpy().astype(np.int64), MASK: mask.numpy().astype(np.int64)}
        return torch.from_numpy(runtime.run([VECTORS], feed)[0])

    return run
