"""Encoding on a Ray cluster: Ray Data decodes pictures in CPU tasks and encodes them in model actors (one GPU each
where the cluster has GPUs), so a catalog too large for one machine's encoder is embedded where the cluster is.

``index_build.py --ray`` starts a local Ray; ``--ray ADDRESS`` joins a cluster (``ray://head:10001`` or ``auto``).
The result is the same array the single-process path returns, and it goes to Feast the same way.
"""

from __future__ import annotations

import numpy as np

DECODE_BATCH = 32


def _decode(batch: dict, preprocess, max_pixels: int) -> dict:
    from mmsearch.encode.encoders import preprocessed_side
    from mmsearch.ingest.images import ImageError, load_image

    pixels, errors = [], []
    side = preprocessed_side(preprocess)  # an SVG drawn at the side the model reads, as on one machine
    for path in batch["path"]:
        try:
            pixels.append(preprocess(load_image(str(path), max_pixels, svg_side=side)).numpy())
            errors.append("")
        except ImageError as exc:
            pixels.append(None)
            errors.append(str(exc))
    shape = next((p.shape for p in pixels if p is not None), (3, 1, 1))
    stacked = np.stack([p if p is not None else np.zeros(shape, np.float32) for p in pixels]).astype(np.float32)
    return {"i": batch["i"], "pixels": stacked, "error": np.asarray(errors, dtype=object)}


class _Encode:
    """A model actor: loads the encoder once, then embeds batches of decoded pictures."""

    def __init__(self, spec: str, device: str):
        from mmsearch.encode.encoders import load_encoder

        self.encoder = load_encoder(spec, device)

    def __call__(self, batch: dict) -> dict:
        import torch

        ok = batch["error"] == ""
        vectors = np.zeros((len(ok), self.encoder.dim), dtype=np.float32)
        if ok.any():
            vectors[ok] = self.encoder.encode_pixels(torch.from_numpy(np.ascontiguousarray(batch["pixels"][ok])))
        return {"i": batch["i"], "embedding": vectors, "error": batch["error"]}


def connect(address: str):
    import ray

    if not ray.is_initialized():
        if address in ("", "local"):
            ray.init(include_dashboard=False, ignore_reinit_error=True, log_to_driver=False)
        else:
            ray.init(address=address, ignore_reinit_error=True, log_to_driver=False)
    return ray


def encode_with_ray(
    config, paths: list[str], preprocess=None, dim: int | None = None, actors: int | None = None
) -> tuple[np.ndarray, dict[int, str]]:
    """(one row per path, {position: reason} for pictures that could not be decoded), as encode_image_files."""
    from mmsearch.encode.encoders import load_encoder

    ray = connect(config.ray)
    if preprocess is None or dim is None:
        local = load_encoder(config.model, "cpu")
        preprocess, dim = local.preprocess, local.dim
    gpus = int(ray.cluster_resources().get("GPU", 0))
    count = actors or max(1, gpus or int(ray.cluster_resources().get("CPU", 2)) // 2)
    ds = ray.data.from_items([{"i": i, "path": p} for i, p in enumerate(paths)])
    ds = ds.map_batches(
        _decode,
        fn_kwargs={"preprocess": preprocess, "max_pixels": config.max_upload_pixels},
        batch_size=DECODE_BATCH,
        batch_format="numpy",
    )
    ds = ds.map_batches(
        _Encode,
        fn_constructor_kwargs={"spec": config.model, "device": "cuda" if gpus else "cpu"},
        batch_size=config.batch_size,
        batch_format="numpy",
        compute=ray.data.ActorPoolStrategy(size=count),
        num_gpus=1 if gpus else 0,
    )
    out = np.zeros((len(paths), dim), dtype=np.float32)
    failed: dict[int, str] = {}
    for batch in ds.iter_batches(batch_size=4096, batch_format="numpy"):
        idx = batch["i"].astype(np.int64)
        out[idx] = batch["embedding"]
        failed.update({int(i): str(e) for i, e in zip(idx, batch["error"]) if e})
    return out, failed
