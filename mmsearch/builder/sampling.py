"""The build's sample of the catalog's pictures as a pretrained tower sees them (index/picture_sample.py): what
lets the server tell an upload unlike the whole catalog, whatever model serves it."""

from __future__ import annotations

import logging

import numpy as np

from mmsearch.encode.general_features import GeneralFeatures
from mmsearch.index import vectors as vindex
from mmsearch.index.picture_sample import PictureSample, sampled_rows
from mmsearch.ingest.images import ImageError, load_image

log = logging.getLogger("mmsearch.builder")


def sample_pictures(encoder, built: vindex.VectorIndex) -> PictureSample | None:
    """The tower's features of up to 512 of the index's pictures; None when the tower is not installed."""
    general = GeneralFeatures(encoder)
    rows = sampled_rows(len(built))
    if general.shared:  # the zero-shot model: its rows hold the features already
        vectors = np.asarray(built.vectors[built.slots[rows]], dtype=np.float32)
        return PictureSample.of(vectors[:, encoder.text_dim :], general.name)
    if not general.available:
        return None
    pictures = []
    for path in built.items["image"].iloc[rows]:
        try:
            pictures.append(load_image(path))
        except ImageError as exc:  # a picture gone since it was encoded: the sample does without it
            log.warning("left out of the picture sample: %s (%s)", path, exc)
    return PictureSample.of(general.of(pictures), general.name)
