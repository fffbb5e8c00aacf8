"""A model's figures on a labelled dataset's photos: zero-shot accuracy and
image->image precision@10.

Zero-shot classification, as the CLIP paper measures it: each category becomes the mean text embedding of its
prompts (every template with every word of the category: a prompt ensemble), and a photo is given the category whose
embedding is nearest to the photo's. Accuracy, per-category accuracy and the confusion matrix come out.

Image->image precision@10 is similar items judged by category: the share of each photo's ten nearest other photos
(cosine, exact) that share its category.

The photos go through the encoder's own preprocessing, as an index build sends them.
"""

from __future__ import annotations

import numpy as np
from PIL import Image
from tqdm.auto import tqdm

from mmsearch.encode.encoders import Encoder, encode_images, picture_query
from mmsearch.ingest.captions import CategoryCaptions


def class_embeddings(encoder: Encoder, categories: tuple[str, ...], captioner: CategoryCaptions) -> np.ndarray:
    rows = []
    for category in categories:
        prompts = encoder.encode_text(captioner.prompts(category))
        mean = prompts.mean(axis=0)
        rows.append(mean / np.linalg.norm(mean))
    return np.stack(rows).astype(np.float32)


def image_embeddings(encoder: Encoder, images: np.ndarray, batch_size: int = 500, progress: bool = True) -> np.ndarray:
    """uint8 N x H x W (or N x H x W x 3) photos, encoded as the index would encode their files."""
    out = []
    steps = range(0, len(images), batch_size)
    for start in tqdm(steps, desc="encoding photos", unit="batch", disable=not progress):
        out.append(encode_images(encoder, [Image.fromarray(a) for a in images[start : start + batch_size]]))
    return np.concatenate(out)


def evaluate(
    encoder: Encoder,
    images: np.ndarray,
    labels: np.ndarray,
    categories: tuple[str, ...],
    captioner: CategoryCaptions,
    progress: bool = True,
) -> dict:
    classes = class_embeddings(encoder, categories, captioner)
    photos = image_embeddings(encoder, images, progress=progress)
    predicted = (photos @ classes.T).argmax(axis=1)
    labels = np.asarray(labels)
    confusion = np.zeros((len(categories), len(categories)), dtype=int)
    np.add.at(confusion, (labels, predicted), 1)
    per_category = {c: round(float(confusion[i, i] / max(1, confusion[i].sum())), 4) for i, c in enumerate(categories)}
    off = confusion.copy()
    np.fill_diagonal(off, 0)
    worst = sorted(
        ((int(off[i, j]), categories[i], categories[j]) for i, j in np.ndindex(off.shape)),
        reverse=True,
    )[:5]
    return {
        "accuracy": round(float((predicted == labels).mean()), 4),
        "image_to_image_P@10": round(neighbour_precision(picture_query(encoder, photos), labels), 4),
        "photos": int(len(labels)),
        "prompts_per_category": {c: len(captioner.prompts(c)) for c in categories},
        "per_category": per_category,
        "categories": list(categories),
        "confusion": confusion.tolist(),
        "most_confused": [{"count": n, "true": a, "predicted": b} for n, a, b in worst if n],
    }


def neighbour_precision(embeddings: np.ndarray, labels: np.ndarray, k: int = 10, block: int = 1000) -> float:
    """Mean share of each row's ``k`` nearest other rows (inner product) with the same label."""
    labels = np.asarray(labels)
    hits = 0
    for start in range(0, len(embeddings), block):
        sims = embeddings[start : start + block] @ embeddings.T
        rows = np.arange(len(sims))
        sims[rows, start + rows] = -np.inf  # a photo is not its own neighbour
        nearest = np.argpartition(-sims, k, axis=1)[:, :k]
        hits += int((labels[nearest] == labels[start : start + block, None]).sum())
    return hits / (len(embeddings) * k)
