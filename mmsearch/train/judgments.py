"""Tuning a two-tower model on raters' judgments: the loop from the Judge tab back into the model.

The judged queries of the train half (feedback/judgments.py ``half_of``) give the pairs: each item graded 2 or 3 (the
raters' lower median) is a positive for its query, each graded 0 a hard negative shown beside it. A batch holds
query-positive rows; the text-to-image loss sees every positive of the batch and the hard negatives of its queries as
candidates (rows of one query are not each other's negatives), the image-to-text loss the batch's queries. The
model starts from the served one and moves little (a small learning rate, a few epochs), so what it learnt from its
own training stays. The test half is never seen: python -m mmsearch.evaluate --judgments --judged-half test measures
the model before and after.
"""

from __future__ import annotations

import hashlib
import random
import time
from dataclasses import dataclass
from pathlib import Path

import ir_measures
import numpy as np
import torch
from ir_measures import nDCG
from PIL import Image
from tqdm.auto import tqdm

from mmsearch.encode import twotower
from mmsearch.encode.encoders import encode_pixel_tensor
from mmsearch.encode.models.two_tower import TwoTowerEncoder
from mmsearch.feedback.judgments import half_of
from mmsearch.ingest.phrasing import normalize

POSITIVE, NEGATIVE = 2, 0
CHECK_SHARE = 5  # one train-half query in five is kept aside to choose the epoch
K = 10


def is_check(query: str) -> bool:
    return hashlib.blake2b(f"check:{query}".encode(), digest_size=4).digest()[0] % CHECK_SHARE == 0


def check_ndcg(encoder: TwoTowerEncoder, pixels: torch.Tensor, items: list[str], check: dict[str, dict]) -> float:
    """Vector search of the whole catalog (``pixels``, one row per item of ``items``) for the check queries:
    mean nDCG@10 on their judgments (gains 0/1/3/7; an unjudged result counts as not relevant)."""
    if not check:
        return float("nan")
    with torch.inference_mode():
        images = encode_pixel_tensor(encoder, pixels)
        queries = sorted(check)
        texts = encoder.encode_text(queries)
    top = np.argsort(-(texts @ images.T), axis=1)[:, :K]
    qrels = [ir_measures.Qrel(f"q{i}", item, g) for i, q in enumerate(queries) for item, g in check[q].items()]
    run = [
        ir_measures.ScoredDoc(f"q{i}", items[j], float(K - r))
        for i in range(len(queries))
        for r, j in enumerate(top[i])
    ]
    measure = nDCG(gains={0: 0, 1: 1, 2: 3, 3: 7}) @ K
    found = {m.query_id: m.value for m in ir_measures.iter_calc([measure], qrels, run)}
    return float(np.mean([found.get(f"q{i}", 0.0) for i in range(len(queries))]))


@dataclass(frozen=True)
class JudgedPairs:
    queries: list[str]
    rows: list[tuple[int, str]]  # (query index, positive item id)
    negatives: dict[int, list[str]]  # query index -> items graded 0
    grades: dict[int, dict[str, int]]  # query index -> every judged item's grade

    @classmethod
    def of(
        cls, qrels: dict[str, dict[str, int]], known: set[str], half: str = "train", check: bool | None = None
    ) -> JudgedPairs:
        """The pairs of the queries in ``half`` whose items are in ``known`` (the index tuned for); with ``check``
        True only the train half's check queries, False only the others."""
        queries, rows, negatives, judged = [], [], {}, {}
        chosen = [q for q in qrels if half_of(q) == half and (check is None or is_check(q) == check)]
        for query in sorted(chosen):
            grades = {item: g for item, g in qrels[query].items() if item in known}
            positives = sorted(i for i, g in grades.items() if g >= POSITIVE)
            if not positives:
                continue
            qi = len(queries)
            queries.append(query)
            rows += [(qi, item) for item in positives]
            negatives[qi] = sorted(i for i, g in grades.items() if g == NEGATIVE)
            judged[qi] = grades
        return cls(queries, rows, negatives, judged)

    def relevance(self, queries: list[int], items: list[str]) -> torch.Tensor:
        """queries x items: 1 where the item was judged relevant (2-3) for the query, 0 where judged otherwise, NaN
        where the query's raters never saw it. An item relevant to two queries of a batch is a positive of both; an
        unjudged one is no one's negative (pools are shallow: most relevant items of a broad query are unjudged)."""
        return torch.tensor(
            [
                [float(self.grades[q][item] >= POSITIVE) if item in self.grades[q] else float("nan") for item in items]
                for q in queries
            ]
        )


def _soft_cross_entropy(logits: torch.Tensor, relevant: torch.Tensor) -> torch.Tensor:
    """Cross-entropy toward the relevant columns (soft targets); NaN columns (unjudged) are left out."""
    judged = ~torch.isnan(relevant)
    target = torch.nan_to_num(relevant)
    logits = logits.masked_fill(~judged, float("-inf"))
    target = target / target.sum(1, keepdim=True).clamp(min=1e-9)
    return -(target * torch.log_softmax(logits, dim=1).masked_fill(~judged, 0.0)).sum(1).mean()


def loss(model, text: torch.Tensor, images: torch.Tensor, relevant: torch.Tensor, pairs: int) -> torch.Tensor:
    """``text``: one row per pair; ``images``: the pairs' positives first, then the batch's hard negatives;
    ``relevant``: text x image, 1 where the image is relevant to that row's query, 0 where judged not, NaN where
    unjudged. Text to image over the batch's judged images, image to text over the pairs' positives."""
    scale = model.logit_scale.clamp(max=4.6052).exp()
    t2i = _soft_cross_entropy(scale * text @ images.t(), relevant)
    i2t = _soft_cross_entropy(scale * images[:pairs] @ text.t(), relevant[:, :pairs].t())
    return (t2i + i2t) / 2


def picture(encoder: TwoTowerEncoder, path: str) -> torch.Tensor:
    with Image.open(path) as im:
        return encoder.preprocess(im.convert("RGB"))


def tune(
    encoder: TwoTowerEncoder,
    pairs: JudgedPairs,
    check: dict[str, dict[str, int]],
    image_of: dict[str, str],
    out: Path,
    epochs: int,
    lr: float,
    batch_size: int,
    per_query_negatives: int,
    seed: int = 0,
) -> dict:
    """Tunes on ``pairs``, keeps the epoch (0: the starting model) with the best nDCG@10 on ``check`` (query ->
    item -> grade), and saves it to ``out``."""
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
    items = list(image_of)
    catalog = torch.stack([picture(encoder, image_of[i]) for i in tqdm(items, desc="reading the catalog")])
    row = {item: n for n, item in enumerate(items)}

    def pixels(chosen: list[str]) -> torch.Tensor:
        return catalog[[row[i] for i in chosen]].to(device)

    trained = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(trained, lr=lr, weight_decay=0.0)
    history: list[float] = []
    t0 = time.time()
    scores = [check_ndcg(encoder, catalog, items, check)]
    best = (scores[0], 0, {k: v.detach().clone() for k, v in model.state_dict().items()})
    steps = max(1, -(-len(pairs.rows) // batch_size))
    bar = tqdm(total=epochs * steps, desc="tuning on judgments", unit="batch")
    # Evaluation mode throughout: a few hundred pairs from a handful of queries would drag batch-norm statistics
    # (the convolutional stems have them) toward those queries' pictures, and dropout only adds noise to so little
    # data. Gradients flow the same.
    model.eval()
    for epoch in range(1, epochs + 1):
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
            shown_items = [item for _, item in batch] + hard
            images = model.encode_image(pixels(shown_items))
            relevant = pairs.relevance(queries, shown_items).to(device)
            value = loss(model, text_emb, images, relevant, len(batch))
            opt.zero_grad(set_to_none=True)
            value.backward()
            torch.nn.utils.clip_grad_norm_(trained, 1.0)
            opt.step()
            history.append(float(value.item()))
            bar.set_postfix(loss=f"{history[-1]:.3f}")
            bar.update()
        scores.append(check_ndcg(encoder, catalog, items, check))
        bar.write(f"epoch {epoch}: check queries' nDCG@10 {scores[-1]:.4f} (start {scores[0]:.4f})")
        if scores[-1] > best[0] or (not check and epoch == epochs):  # no check queries: the last epoch
            best = (scores[-1], epoch, {k: v.detach().clone() for k, v in model.state_dict().items()})
    bar.close()
    model.load_state_dict(best[2])
    model.eval()
    meta = {
        "recipe": "judgments",
        "tuned_from": encoder.model_id,
        "judged_queries": len(pairs.queries),
        "judged_positive_pairs": len(pairs.rows),
        "hard_negatives": sum(len(v) for v in pairs.negatives.values()),
        "check_queries": len(check),
        "check_ndcg_at_10_by_epoch": [None if np.isnan(x) else round(x, 4) for x in scores],
        "kept_epoch": best[1],
        "epochs": epochs,
        "lr": lr,
        "first_loss": history[0] if history else None,
        "final_loss": float(np.mean(history[-5:])) if history else None,
        "seconds": round(time.time() - t0, 1),
    }
    twotower.save(model, tokenizer, out, extra=meta)
    return meta


def tune_on_judgments(cfg, settings) -> dict:
    """``python -m mmsearch.train --judgments``: the judged catalog gives the items' pictures, the server's database
    the judgments (``cfg``: TrainSettings, ``settings``: TuneSettings)."""
    from mmsearch.encode.encoders import load_encoder
    from mmsearch.feedback.database import open_configured
    from mmsearch.feedback.judgments import Judgments
    from mmsearch.ingest.catalog import load_configured
    from mmsearch.resources import DEMO_MODEL_DIR
    from mmsearch.settings import from_env

    # The catalog as the server reads it (its settings from the same MMSEARCH_* variables), without its index: the
    # pictures are all tuning needs, and training stays clear of the search stages.
    config = from_env(
        catalog=settings.judged_catalog,
        model=settings.judged_model,
        data_dir=Path(cfg.data_dir),
        database_url=settings.database_url,
    )
    encoder = load_encoder(settings.judged_model, cfg.device)
    if not isinstance(encoder, TwoTowerEncoder):
        raise ValueError(f"--judgments tunes a two-tower model; {settings.judged_model} is not one")
    qrels = Judgments(open_configured(config)).qrels()
    catalog = load_configured(config)
    image_of = dict(zip(catalog.items["item_id"].astype(str), catalog.items["image"].astype(str)))
    known = set(image_of)
    pairs = JudgedPairs.of(qrels, known, check=False)
    check = {q: g for q, g in qrels.items() if half_of(q) == "train" and is_check(q)}  # kept out of the pairs
    out = Path(cfg.out)
    if out.resolve() == Path(DEMO_MODEL_DIR).resolve():  # never over the bundled model unless named outright
        out = Path(cfg.data_dir) / "models" / "judged"
    meta = tune(
        encoder,
        pairs,
        check,
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
        f"{meta['first_loss']:.3f} -> {meta['final_loss']:.3f} in {meta['seconds']}s; kept epoch {meta['kept_epoch']} "
        f"(nDCG@10 of the {meta['check_queries']} check queries by epoch: {meta['check_ndcg_at_10_by_epoch']}"
        + (", no epoch beat the starting model: saved as it was" if meta["kept_epoch"] == 0 else "")
        + ").\n"
        f"measure it on the test half: python -m mmsearch.evaluate --judgments --judged-half test "
        f"--catalog {settings.judged_catalog} --model {settings.judged_model} --compare-model two-tower:{out}"
    )
    return meta | {"out": str(out)}
