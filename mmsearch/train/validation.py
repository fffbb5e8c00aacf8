"""What training watches on held-out data, and evaluation reports: attribute precision on held-out demo renders,
and text->image / image->text Recall@K with median rank on image-caption pairs.

Recall@K follows the CLIP and Flickr30k papers: every caption is a text query whose one right answer is its image;
every image is a query whose right answers are all of its captions (the best-ranked one counts). Ranks are 1-based and
count only strictly better candidates, so a tie never costs a query its hit.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from mmsearch.encode.encoders import Encoder, encode_images, encode_pixel_tensor, input_size
from mmsearch.encode.files import encode_image_files
from mmsearch.ingest import demo
from mmsearch.ingest.catalog import CatalogError
from mmsearch.ingest.images import load_image
from mmsearch.ingest.pairs import Pairs, load_pairs, parse_where
from mmsearch.train.data import render_pixels

KS = (1, 5, 10)


def ranks_text_to_image(sim: np.ndarray, caption_image: np.ndarray) -> np.ndarray:
    """sim is captions x images; returns each caption's rank of its own image."""
    truth = sim[np.arange(len(sim)), caption_image]
    return 1 + (sim > truth[:, None]).sum(axis=1)


def ranks_image_to_text(sim: np.ndarray, caption_image: np.ndarray) -> np.ndarray:
    """For each image, the rank of its best-placed caption among all captions."""
    ranks = np.empty(sim.shape[1], dtype=np.int64)
    for j in range(sim.shape[1]):
        column = sim[:, j]
        own = column[caption_image == j]
        if own.size == 0:
            raise ValueError(f"image {j} has no caption")
        ranks[j] = 1 + (column > own.max()).sum()
    return ranks


def summarize(ranks: np.ndarray, ks=KS) -> dict:
    out = {f"R@{k}": float(np.mean(ranks <= k)) for k in ks}
    out["median_rank"] = float(np.median(ranks))
    out["queries"] = int(len(ranks))
    return out


def retrieval_metrics(sim: np.ndarray, caption_image: np.ndarray, ks=KS) -> dict:
    caption_image = np.asarray(caption_image)
    return {
        "text_to_image": summarize(ranks_text_to_image(sim, caption_image), ks),
        "image_to_text": summarize(ranks_image_to_text(sim, caption_image), ks),
    }


def evaluate_pairs(encoder: Encoder, pairs: Pairs, batch_size: int = 64, workers: int = 2) -> dict:
    """Encodes both sides and scores them; images that cannot be decoded fail loudly (the figures would be wrong)."""
    if len(pairs.images) and isinstance(pairs.images[0], (str, Path)):
        image_emb, failed = encode_image_files(encoder, [str(p) for p in pairs.images], batch_size, workers)
        if failed:
            raise CatalogError(f"{len(failed)} evaluation images cannot be decoded, e.g. {next(iter(failed.values()))}")
    else:
        image_emb = np.concatenate(
            [encode_images(encoder, pairs.images[i : i + batch_size]) for i in range(0, len(pairs.images), batch_size)]
        )
    text_emb = np.concatenate(
        [
            encoder.encode_text(pairs.captions[i : i + batch_size])
            for i in tqdm(range(0, len(pairs.captions), batch_size), desc="encoding captions")
        ]
    )
    return retrieval_metrics(text_emb @ image_emb.T, pairs.caption_image) | {
        "images": len(pairs.images),
        "captions": len(pairs.captions),
    }


def attribute_precision(
    encoder: Encoder,
    per_combo: int = 12,
    k: int = 10,
    seed: int = demo.HELDOUT_SEED,
    workers: int = 2,
    pixels: torch.Tensor | None = None,
) -> dict:
    """Mean fraction of the top-k results matching every attribute of the query, over one query per combination."""
    all_combos = demo.combos()
    items = demo.make_items(per_combo * len(all_combos), seed, prefix="heldout")
    if pixels is None:
        pixels = render_pixels(items, encoder.preprocess, input_size(encoder), workers)
    image_emb = encode_pixel_tensor(encoder, pixels)
    queries = [demo.query_for(*c) for c in all_combos]
    text_emb = np.concatenate([encoder.encode_text(queries[i : i + 256]) for i in range(0, len(queries), 256)])
    top = np.argsort(-(text_emb @ image_emb.T), axis=1)[:, :k]
    labels = [(it.kind, it.colour, it.pattern) for it in items]
    per_query = np.array([[labels[j] == combo for j in row] for row, combo in zip(top, all_combos)], dtype=float)
    by_attr = {
        name: float(np.mean([[labels[j][a] == combo[a] for j in row] for row, combo in zip(top, all_combos)]))
        for a, name in enumerate(["kind", "colour", "pattern"])
    }
    return {
        "precision_at_k": float(per_query.mean()),
        "k": k,
        "queries": len(queries),
        "heldout_images": len(items),
        "per_attribute": by_attr,
        "worst_queries": sorted(zip(per_query.mean(1).round(2).tolist(), queries))[:5],
    }


@dataclass
class HeldOut:
    """Queries whose right answers are known, over pictures ready for the model: what training validates on."""

    pixels: torch.Tensor
    queries: list[str]
    owner: np.ndarray  # the picture each query is about

    def recall(self, encoder: Encoder) -> dict:
        """Text->image Recall@K and median rank of the queries."""
        sim = encoder.encode_text(self.queries) @ encode_pixel_tensor(encoder, self.pixels).T
        return summarize(ranks_text_to_image(sim, self.owner))


def validation_set(cfg, preprocess, image_size: int, held_out: Pairs | None = None) -> HeldOut | None:
    """For the demo, one render per kind/colour/pattern, apart from training and test renders, asked for by its
    query; for pairs, ``--valid-dataset``'s captions, or else the pairs ``held_out`` of the training data; without
    any, None."""
    if cfg.dataset == "demo":
        items = demo.make_items(len(demo.combos()), demo.VALID_SEED, prefix="valid")
        return HeldOut(
            render_pixels(items, preprocess, image_size, cfg.workers),
            [demo.query_for(it.kind, it.colour, it.pattern) for it in items],
            np.arange(len(items)),
        )
    if cfg.valid_dataset:
        held_out = load_pairs(cfg.valid_dataset, cfg.image_column, cfg.caption_column, parse_where(cfg.valid_where))
    if held_out is None:
        return None
    pixels = torch.stack([preprocess(load_image(im)) for im in held_out.images])
    return HeldOut(pixels, held_out.captions, held_out.caption_image)
