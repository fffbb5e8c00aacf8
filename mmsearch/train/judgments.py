"""Tuning a two-tower model on raters' judgments: the loop from the Judge tab back into the model.

The judged queries of the train half (store/judgments.py ``half_of``) give the pairs: each item graded 2 or 3 (the
raters' lower median) is a positive for its query, each graded 0 a hard negative shown beside it. A batch holds
query-positive rows; the text-to-image loss sees every positive of the batch and the hard negatives of its queries as
candidates (rows of one query are not each other's negatives), the image-to-text loss the batch's queries. The
model starts from the served one and moves little (a small learning rate, a few epochs), so what it learnt from its
own training stays. The test half is never seen: python -m mmsearch.evaluate --judgments --judged-half test measures
the model before and after.
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from tqdm.auto import tqdm

from mmsearch.encode import twotower
from mmsearch.encode.encoders import TwoTowerEncoder
from mmsearch.ingest.phrasing import normalize
from mmsearch.store.judgments import half_of

POSITIVE, NEGATIVE = 2, 0


@dataclass(frozen=True)
class JudgedPairs:
    queries: list[str]
    rows: list[tuple[int, str]]  # (query index, positive item id)
    negatives: dict[int, list[str]]  # query index -> items graded 0

    @classmethod
    def of(cls, qrels: dict[str, dict[str, int]], known: set[str], half: str = "train") -> JudgedPairs:
        """The pairs of the queries in ``half`` whose items are in ``known`` (the index tuned for)."""
        queries, rows, negatives = [], [], {}
        for query in sorted(q for q in qrels if half_of(q) == half):
            grades = {item: g for item, g in qrels[query].items() if item in known}
            positives = sorted(i for i, g in grades.items() if g >= POSITIVE)
            if not positives:
                continue
            qi = len(queries)
            queries.append(query)
            rows += [(qi, item) for item in positives]
            negatives[qi] = sorted(i for i, g in grades.items() if g == NEGATIVE)
        return cls(queries, rows, negatives)


def loss(model, text: torch.Tensor, positives: torch.Tensor, negatives: torch.Tensor, groups: torch.Tensor):
    """``text`` and ``positives``: one row per pair; ``negatives``: the batch's hard negatives (any number)."""
    scale = model.logit_scale.clamp(max=4.6052).exp()
    candidates = torch.cat([positives, negatives]) if len(negatives) else positives
    same = (groups[:, None] == groups[None, :]).float()
    t2i_target = torch.cat([same, same.new_zeros(len(groups), len(candidates) - len(groups))], dim=1)
    t2i = F.cross_entropy(scale * text @ candidates.t(), t2i_target / t2i_target.sum(1, keepdim=True))
    i2t = F.cross_entropy(scale * positives @ text.t(), same / same.sum(1, keepdim=True))
    return (t2i + i2t) / 2


def tune(
    encoder: TwoTowerEncoder,
    pairs: JudgedPairs,
    image_of: dict[str, str],
    out: Path,
    epochs: int,
    lr: float,
    batch_size: int,
    per_query_negatives: int,
    seed: int = 0,
) -> dict:
    if not pairs.rows:
        raise ValueError(
            "no judged pairs to learn from in the train half: grade results 2 or 3 for more queries (the Judge tab, "
            "POST /api/judgments or mmsearch judgments import)"
        )
    model, tokenizer, device = encoder.model, encoder.tokenizer, encoder.device
    if model.text_source:  # a referenced pretrained text tower is not saved with the model: it stays as published
        for p in model.text.parameters():
            p.requires_grad_(False)
    rng = random.Random(seed)
    torch.manual_seed(seed)
    pictures: dict[str, torch.Tensor] = {}

    def pixels(items: list[str]) -> torch.Tensor:
        for item in items:
            if item not in pictures:
                with Image.open(image_of[item]) as im:
                    pictures[item] = encoder.preprocess(im.convert("RGB"))
        return torch.stack([pictures[i] for i in items]).to(device)

    trained = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(trained, lr=lr, weight_decay=0.0)
    model.train()
    history: list[float] = []
    t0 = time.time()
    steps = max(1, -(-len(pairs.rows) // batch_size))
    bar = tqdm(total=epochs * steps, desc="tuning on judgments", unit="batch")
    for _ in range(epochs):
        order = list(range(len(pairs.rows)))
        rng.shuffle(order)
        for s in range(steps):
            batch = [pairs.rows[i] for i in order[s * batch_size : (s + 1) * batch_size]]
            if len(batch) < 2:
                continue
            queries = [q for q, _ in batch]
            shown = {item for _, item in batch}
            hard = []
            for q in dict.fromkeys(queries):
                pool = [i for i in pairs.negatives.get(q, []) if i not in shown]
                hard += rng.sample(pool, min(per_query_negatives, len(pool)))
            texts = [normalize(pairs.queries[q]) for q in queries]
            tok = tokenizer(texts, padding=True, truncation=True, max_length=model.max_length, return_tensors="pt")
            tok = tok.to(device)
            text_emb = model.encode_text(tok["input_ids"], tok["attention_mask"])
            images = model.encode_image(pixels([item for _, item in batch] + hard))
            value = loss(model, text_emb, images[: len(batch)], images[len(batch) :], torch.tensor(queries))
            opt.zero_grad(set_to_none=True)
            value.backward()
            torch.nn.utils.clip_grad_norm_(trained, 1.0)
            opt.step()
            history.append(float(value.item()))
            bar.set_postfix(loss=f"{history[-1]:.3f}")
            bar.update()
    bar.close()
    model.eval()
    meta = {
        "recipe": "judgments",
        "tuned_from": encoder.model_id,
        "judged_queries": len(pairs.queries),
        "judged_positive_pairs": len(pairs.rows),
        "hard_negatives": sum(len(v) for v in pairs.negatives.values()),
        "epochs": epochs,
        "lr": lr,
        "first_loss": history[0] if history else None,
        "final_loss": float(np.mean(history[-5:])) if history else None,
        "seconds": round(time.time() - t0, 1),
    }
    twotower.save(model, tokenizer, out, extra=meta)
    return meta


def tune_on_judgments(cfg, settings) -> dict:
    """``python -m mmsearch.train --judgments``: the judged model's index gives the items' pictures, the server's
    database the judgments (``cfg``: TrainConfig, ``settings``: TuneSettings)."""
    from mmsearch.builder.pipeline import ensure_index
    from mmsearch.config import from_env
    from mmsearch.encode.encoders import load_encoder
    from mmsearch.resources import DEMO_MODEL_DIR
    from mmsearch.search.searcher import Searcher
    from mmsearch.store.database import database_url, open_database
    from mmsearch.store.judgments import Judgments

    config = from_env(
        catalog=settings.judged_catalog,
        model=settings.judged_model,
        data_dir=Path(cfg.data_dir),
        database_url=settings.database_url,
    )
    encoder = load_encoder(settings.judged_model, cfg.device)
    if not isinstance(encoder, TwoTowerEncoder):
        raise ValueError(f"--judgments tunes a two-tower model; {settings.judged_model} is not one")
    index = Searcher.open(ensure_index(config, encoder), encoder).index
    image_of = {item: str(index.items["image"].iat[index.row(item)]) for item in index.ids}
    qrels = Judgments(open_database(database_url(config.database_url, config.data_dir))).qrels()
    pairs = JudgedPairs.of(qrels, set(image_of))
    out = Path(cfg.out)
    if out.resolve() == Path(DEMO_MODEL_DIR).resolve():  # never over the bundled model unless named outright
        out = Path(cfg.data_dir) / "models" / "judged"
    meta = tune(
        encoder,
        pairs,
        image_of,
        out,
        settings.tune_epochs,
        settings.tune_lr,
        min(cfg.batch_size, 64),
        settings.tune_negatives,
        cfg.seed,
    )
    print(
        f"saved {out}: tuned {encoder.model_id} on {meta['judged_positive_pairs']} judged pairs of "
        f"{meta['judged_queries']} train-half queries ({meta['hard_negatives']} hard negatives), loss "
        f"{meta['first_loss']:.3f} -> {meta['final_loss']:.3f} in {meta['seconds']}s.\n"
        f"measure it on the test half: python -m mmsearch.evaluate --judgments --judged-half test "
        f"--catalog {settings.judged_catalog} --model {settings.judged_model} --compare-model two-tower:{out}"
    )
    return meta | {"out": str(out)}
