"""Trains a two-tower model contrastively. ``python -m mmsearch.train`` makes the offline demo model in assets/;
``--preset fashion-mnist`` the Fashion-MNIST model (a ViT learning to meet the locked, pretrained all-MiniLM-L6-v2:
a labelled dataset's photos, captioned from their categories); ``--dataset`` trains on image-caption pairs instead
(Flickr30k, any Hugging Face dataset, or a captions file).

A run reads top to bottom: ``set_up`` (data, model, optimizer), ``run_epoch`` and its ``step``s, ``validate_epoch``
(held-out recall, early stop), ``save`` (the model and its figures on held-out data).

The demo recipe trains a small ViT + BERT from scratch on fresh demo renders (disjoint from the catalog and from the
held-out renders used to judge it), with captions drawn from several phrasings of each item's attributes.
"""

from __future__ import annotations

import argparse
import math
import random
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from mmsearch import flags
from mmsearch.encode import twotower
from mmsearch.encode.encoders import EncoderError, pick_device
from mmsearch.encode.models.two_tower import TwoTowerEncoder
from mmsearch.encode.pretrained import PretrainedError
from mmsearch.encode.tower_vision import is_tower
from mmsearch.feedback.database import DatabaseError
from mmsearch.ingest import datasets, demo
from mmsearch.ingest.captions import CategoryCaptions, TemplatesError, load_templates
from mmsearch.ingest.catalog import CatalogError
from mmsearch.ingest.datasets import Dataset, Labelled
from mmsearch.ingest.pairs import load_pairs, parse_where
from mmsearch.ingest.phrasing import Synonyms, SynonymsError, normalize
from mmsearch.resources import SYNONYMS_FILE
from mmsearch.train import classification
from mmsearch.train.data import ClassData, DemoData, PairsData
from mmsearch.train.settings import TrainSettings, TuneSettings, preset_settings, tiny_configs
from mmsearch.train.tracking import open_tracker
from mmsearch.train.validation import attribute_precision, validation_set

SCRATCH_EMBED_DIM = 128  # the shared space of towers trained from scratch (the demo model's)
# The held-out pictures are measured after every epoch and kept in memory as pixels (0.6 MB each at 224 px); a
# thousand, as in Flickr30k's Karpathy test split, put Recall@10 within about 1.5 points (its standard error at 40%).
HELD_OUT_MOST = 1000


def demo_vocabulary_texts(synonyms: str | Path = SYNONYMS_FILE) -> list[str]:
    """Phrasings the demo's captions produce, for learning the tokenizer's word pieces."""
    rng = random.Random(0)
    groups = Synonyms.load(synonyms)
    texts = []
    for kind, colour, pattern in demo.combos():
        item = demo.DemoItem("x", kind, colour, pattern, *demo.describe(kind, colour, pattern, rng), 1.0, 0)
        texts += [demo.captions(item, random.Random(s), groups) for s in range(24)] + [item.title, item.description]
        texts += [demo.listing(item)[0]]
    texts += [w for canonical in groups.groups for w in groups.words(canonical)]
    return [normalize(t) for t in texts]


def build_model(
    cfg: TrainSettings, texts: list[str] | None = None, tokenizer_json: str | None = None
) -> tuple[twotower.TwoTower, object]:
    """Each tower pretrained where its checkpoint is named (--vision-model, --text-model), else small and from
    scratch; a locked tower stays as it is. ``tokenizer_json``: a resumed run's tokenizer, from its checkpoint."""
    if cfg.lock_text and not cfg.text_model:
        raise ValueError("--lock-text keeps a pretrained text tower as it is: name one with --text-model")
    if cfg.lock_vision and not cfg.vision_model:
        raise ValueError("--lock-vision keeps a pretrained image tower as it is: name one with --vision-model")
    if cfg.vision_tuned_stages and (cfg.lock_vision or not is_tower(cfg.vision_model)):
        raise ValueError(
            "--vision-tuned-stages tunes the last stages of an EfficientNet tower: name one with --vision-model "
            "(efficientnet-lite0), without --lock-vision"
        )
    if cfg.vision_model or cfg.text_model:
        from transformers import AutoTokenizer

        from mmsearch.encode import pretrained

        vision_cfg, text_cfg = tiny_configs(cfg, cfg.vocab_size)
        if cfg.text_model:
            tokenizer = AutoTokenizer.from_pretrained(pretrained.resolve(cfg.text_model))
        else:
            tokenizer = _learnt_tokenizer(cfg, texts, tokenizer_json)
            text_cfg["vocab_size"] = len(tokenizer)
        try:
            model = twotower.assemble(
                cfg.vision_model or None,
                None if cfg.vision_model else vision_cfg,
                cfg.text_model or None,
                None if cfg.text_model else text_cfg,
                cfg.embed_dim or (0 if cfg.text_model else SCRATCH_EMBED_DIM),
                grayscale=cfg.grayscale,
                stem=cfg.stem,
            )
        except (OSError, PretrainedError) as exc:  # from_pretrained: no network and no local copy; a bad package
            raise PretrainedError(
                f"cannot load {cfg.vision_model or cfg.text_model}: {exc}{pretrained.install_hint(cfg.text_model)}"
            ) from exc
        if cfg.lock_text:
            model.lock_text()
        else:
            model.text_source = None  # a tuned text tower is saved with the model, not referenced
        if cfg.lock_vision:
            model.vision.requires_grad_(False)
            if model.vision_source:
                model.vision_source["locked"] = True  # saved by reference, like a locked text tower
        elif cfg.vision_tuned_stages:
            model.vision.tune_stages(cfg.vision_tuned_stages)
            model.vision_source["tuned_stages"] = cfg.vision_tuned_stages  # the stages below, by reference
        if model.vision_source and cfg.text_model and tokenizer_json is None:
            bridge_start(model, cfg.text_model)
        return model, tokenizer
    tokenizer = _learnt_tokenizer(cfg, texts, tokenizer_json)
    vision_cfg, text_cfg = tiny_configs(cfg, len(tokenizer))
    model = twotower.from_configs(vision_cfg, text_cfg, cfg.embed_dim or SCRATCH_EMBED_DIM, stem=cfg.stem)
    model.grayscale = cfg.grayscale
    return model, tokenizer


def bridge_start(model: twotower.TwoTower, text_model: str) -> None:
    """A pretrained ImageNet tower's projection started at the zero-shot bridge (encode/class_bridge.py), in its
    linear form: a picture's vector is the mix of ImageNet's class captions in the text tower's space, weighted by the
    classifier's logits, so training starts from an alignment that already finds things, not from nothing. Needs the
    text tower's width as the shared space (--embed-dim 0, the default; a locked text tower's projection is the
    identity)."""
    from mmsearch.encode.class_bridge import ClassBridge
    from mmsearch.encode.text_towers import load_text

    width = model.text.config.hidden_size
    if model.embed_dim != width:
        return  # another space than the text tower's: the projection starts at random
    classes = torch.from_numpy(ClassBridge(load_text(text_model)).vectors).float()  # [1000, width]
    classes = classes - classes.mean(dim=0)  # what every class caption shares says nothing of the picture
    logits = model.vision.tower.net.get_classifier().weight.detach().float()  # [1000, features]
    start = classes.T @ logits
    with torch.no_grad():
        model.image_proj.weight.copy_(start / start.norm(dim=1, keepdim=True).mean())


def _learnt_tokenizer(cfg: TrainSettings, texts: list[str] | None, tokenizer_json: str | None):
    if tokenizer_json or cfg.tokenizer:
        source = Path(cfg.tokenizer)
        source = source / "tokenizer.json" if source.is_dir() else source
        if not tokenizer_json and not source.is_file():
            raise FileNotFoundError(f"--tokenizer: no tokenizer.json at {cfg.tokenizer}")
        return twotower.tokenizer_from_json(tokenizer_json or source.read_text())
    return twotower.build_tokenizer(texts or demo_vocabulary_texts(cfg.synonyms), cfg.vocab_size)


class LockedText:
    """A locked text tower's caption embeddings, each computed once: its captions come from a small set (templates x
    words), so after the first batches training runs the image tower alone."""

    def __init__(self, model: twotower.TwoTower, tokenizer, device: torch.device):
        self.model, self.tokenizer, self.device = model, tokenizer, device
        self.rows: dict[str, torch.Tensor] = {}

    @torch.no_grad()
    def __call__(self, texts: list[str]) -> torch.Tensor:
        missing = [t for t in dict.fromkeys(texts) if t not in self.rows]
        for start in range(0, len(missing), 256):
            chunk = missing[start : start + 256]
            tok = self.tokenizer(
                chunk, padding=True, truncation=True, max_length=self.model.max_length, return_tensors="pt"
            ).to(self.device)
            self.rows.update(zip(chunk, self.model.encode_text(tok["input_ids"], tok["attention_mask"]).float()))
        return torch.stack([self.rows[t] for t in texts])


def category_captions(cfg: TrainSettings, dataset: Dataset) -> CategoryCaptions:
    """A labelled dataset's categories as captions: --templates (the dataset's own by default) with --synonyms."""
    templates = cfg.templates or dataset.templates
    if not templates:
        raise ValueError(f"{dataset.title} is captioned through --templates ('a photo of a {{}}' lines)")
    return CategoryCaptions(load_templates(templates), Synonyms.load(cfg.synonyms))


def checkpoint_path(cfg: TrainSettings) -> Path:
    return Path(str(cfg.out) + ".checkpoint.pt")


def save_checkpoint(path: Path, state: dict) -> None:
    tmp = path.with_suffix(".tmp")
    torch.save(state, tmp)
    tmp.replace(path)  # a kill mid-write leaves the previous checkpoint intact


def lr_lambda(warmup: int, total: int):
    def f(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        progress = (step - warmup) / max(1, total - warmup)
        return 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))

    return f


@dataclass
class Run:
    """One training run's parts (set_up makes them): the model and what feeds and steps it, where it is in its
    epochs, and what it has recorded."""

    cfg: TrainSettings
    model: twotower.TwoTower
    tokenizer: object
    device: torch.device
    preprocess: object
    data: object
    photos: Labelled | None
    captioner: CategoryCaptions | None
    opt: torch.optim.Optimizer
    sched: torch.optim.lr_scheduler.LambdaLR
    towers: list
    locked_text: LockedText | None
    heldout: object
    tracker: object
    encode_image: object
    encode_text: object
    gen: torch.Generator
    text_rng: random.Random
    use_bf16: bool
    started: float
    history: list[float] = field(default_factory=list)
    best: tuple = (-1.0, -1, None)  # validation R@10, its epoch, its weights
    start_epoch: int = 0
    start_step: int = 0
    order: torch.Tensor | None = None
    epoch_rates: list[float] = field(default_factory=list)  # training images/s per epoch, validation not counted
    before: dict | None = None  # validation figures of the untrained model
    bar: object = None

    @property
    def steps_per_epoch(self) -> int:
        return len(self.data) // self.cfg.batch_size

    def encoder(self) -> TwoTowerEncoder:
        return TwoTowerEncoder("training", self.model, self.tokenizer, self.device, self.preprocess)


def train(cfg: TrainSettings) -> dict:
    """Trains as ``cfg`` says and saves the model; answers what the model directory's twotower.json records."""
    run = set_up(cfg)
    if run.start_epoch == 0 and not run.history:  # where training starts from, so a user sees whether it helped
        run.before = validated(run)
        if run.before is not None:
            run.bar.write(
                f"before training: validation text->image R@1 {run.before['R@1']:.1%} R@10 {run.before['R@10']:.1%}"
            )
    for epoch in range(run.start_epoch, cfg.epochs):
        stopped = run_epoch(run, epoch)
        if stopped is not None:
            return stopped
        if not validate_epoch(run, epoch):
            break
    run.bar.close()
    return save(run)


def check(cfg: TrainSettings) -> None:
    """Argument mistakes, before minutes of data preparation."""
    if cfg.resume and not checkpoint_path(cfg).exists():
        raise FileNotFoundError(f"--resume: no checkpoint at {checkpoint_path(cfg)}")
    if not 0 <= cfg.held_out < 1:
        raise ValueError(f"--held-out is a share of the pictures, from 0 up to 1 (not 1 itself), not {cfg.held_out:g}")
    pairs = datasets.find(cfg.dataset) is None
    if cfg.patience and cfg.dataset != "demo" and not cfg.valid_dataset and not (pairs and cfg.held_out):
        raise ValueError("--patience needs validation data: pass --valid-dataset (or, for pairs, a --held-out share)")


def set_up(cfg: TrainSettings) -> Run:
    """The data, the model (from a checkpoint with --resume), its optimizer and the tracker's run."""
    check(cfg)
    random.seed(cfg.seed)
    np.random.seed(cfg.seed)
    torch.manual_seed(cfg.seed)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    started = time.time()
    photos, captioner, pairs = None, None, None
    named = datasets.find(cfg.dataset)
    if named is not None and named.name != "demo":
        photos = named.labelled(named.split(cfg.dataset), cfg)
        if photos is None:
            raise ValueError(f"{named.title} has no labelled photos to train on")
        captioner = category_captions(cfg, named)
    elif cfg.dataset != "demo":
        pairs = load_pairs(cfg.dataset, cfg.image_column, cfg.caption_column, parse_where(cfg.where))
    held_out = None
    if pairs is not None and not cfg.valid_dataset and cfg.held_out:
        pairs, held_out = pairs.hold_out(cfg.held_out, HELD_OUT_MOST)
        if held_out is not None:
            print(
                f"{len(held_out.images)} of {len(pairs.images) + len(held_out.images)} pictures held out of training "
                f"to measure the model before and after it (--held-out {cfg.held_out:g}; 0 trains on all)"
            )
    # A resumed run takes its tokenizer from the checkpoint: the WordPiece trainer of tokenizers breaks ties between
    # equally frequent pieces differently in each process, so a vocabulary learnt again would not match the weights.
    resumed = torch.load(checkpoint_path(cfg), weights_only=True) if cfg.resume else None
    model, tokenizer = build_model(
        cfg, pairs.captions if pairs is not None else None, resumed.get("tokenizer") if resumed else None
    )
    device = pick_device(cfg.device)
    model.to(device)
    preprocess = model.image_transform()
    data = training_data(cfg, model, preprocess, photos, captioner, pairs)
    print(f"{len(data)} training images ready in {time.time() - started:.1f}s")
    if len(data) // cfg.batch_size == 0:
        raise ValueError(f"{len(data)} training images make no batch of {cfg.batch_size}; lower --batch-size")

    trained = [(n, p) for n, p in model.named_parameters() if p.requires_grad]  # a locked tower is left out
    heads = [p for n, p in trained if n.startswith(("image_proj", "text_proj", "logit_scale"))]
    vision = [p for n, p in trained if n.startswith("vision.")]
    text = [p for n, p in trained if n.startswith("text.")]
    groups_lr = [(vision, cfg.vision_lr or cfg.lr), (text, cfg.text_lr or cfg.lr), (heads, cfg.head_lr)]
    opt = torch.optim.AdamW([{"params": ps, "lr": lr} for ps, lr in groups_lr if ps], weight_decay=cfg.weight_decay)
    total = len(data) // cfg.batch_size * cfg.epochs
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lr_lambda(cfg.warmup_steps, max(1, total // cfg.accumulate)))
    # Compiled callables rather than compiled modules: the saved state dict keeps its plain parameter names.
    run = Run(
        cfg,
        model,
        tokenizer,
        device,
        preprocess,
        data,
        photos,
        captioner,
        opt,
        sched,
        vision + text,
        LockedText(model, tokenizer, device) if cfg.lock_text else None,
        validation_set(cfg, preprocess, model.image_size, held_out),
        None,
        torch.compile(model.encode_image) if cfg.compile else model.encode_image,
        torch.compile(model.encode_text) if cfg.compile else model.encode_text,
        torch.Generator().manual_seed(cfg.seed),
        random.Random(cfg.seed),
        cfg.precision == "bf16" or (cfg.precision == "auto" and device.type == "cuda"),
        started,
    )
    run_id = resume(run, resumed) if resumed is not None else None
    recipe = cfg.preset or ("demo" if cfg.dataset == "demo" else "pairs")
    run.tracker = open_tracker(
        cfg.tracker, cfg.data_dir, "mmsearch-train", run_name=f"{recipe}-{Path(cfg.out).name}", run_id=run_id
    )
    if run_id is None:
        run.tracker.log_params(asdict(cfg) | {"vocab_size": len(tokenizer), "train_images": len(data)})
    model.train()
    run.bar = tqdm(total=total, initial=len(run.history), desc="training", unit="batch")
    return run


def training_data(cfg: TrainSettings, model, preprocess, photos, captioner, pairs):
    """Labelled photos captioned from their categories, image-caption pairs, or fresh demo renders."""
    if photos is not None:
        return ClassData(
            photos.images,
            photos.labels,
            photos.categories,
            captioner,
            model.image_size,
            model.image_mean,
            model.image_std,
            cfg.shift,
            cfg.seed,
        )
    if pairs is not None:
        return PairsData(pairs, preprocess, cfg.workers)
    return DemoData(
        cfg.renders, preprocess, model.image_size, cfg.workers, Synonyms.load(cfg.synonyms), cfg.varied_captions
    )


def resume(run: Run, state: dict) -> str | None:
    """The run as its checkpoint left it (tensors and plain values only: never arbitrary pickles); its tracker run."""
    run.model.load_state_dict(state["model"])
    run.opt.load_state_dict(state["optimizer"])
    run.sched.load_state_dict(state["scheduler"])
    run.gen.set_state(state["generator"])
    run.text_rng.setstate(state["text_rng"])
    run.history, run.start_epoch, run.start_step = state["history"], state["epoch"], state["step_in_epoch"]
    run.order = state["order"]
    run.best = state.get("best", run.best)
    print(
        f"resuming from {checkpoint_path(run.cfg)} at batch {len(run.history)} (epoch {run.start_epoch}, batch "
        f"{run.start_step} of the epoch)"
    )
    return state.get("run_id")


def run_epoch(run: Run, epoch: int) -> dict | None:
    """One pass over the data (the rest of it, when resumed inside it); with --stop-after, the stop's record."""
    cfg, model, data = run.cfg, run.model, run.data
    if hasattr(data, "set_epoch"):
        data.set_epoch(epoch, cfg.epochs)
    for p in run.towers:  # frozen towers first let fresh heads align pretrained features without wrecking them
        p.requires_grad_(epoch >= cfg.freeze_epochs)
    if run.order is None:
        run.order = torch.randperm(len(data), generator=run.gen)
    steps = range(run.start_step, run.steps_per_epoch)
    index_lists = [run.order[s * cfg.batch_size : (s + 1) * cfg.batch_size].tolist() for s in steps]
    epoch_start = time.perf_counter()
    for s, x in zip(steps, data.batches(index_lists)):
        loss = step(run, x, index_lists[s - run.start_step])
        batches = len(run.history)  # a batch is one forward and backward pass; a step, one optimizer update
        if batches % cfg.log_every == 0:
            run.tracker.log_metrics(
                {
                    "loss": float(np.mean(run.history[-cfg.log_every :])),
                    "lr": run.sched.get_last_lr()[0],
                    "temperature": model.temperature(),
                },
                step=batches,
            )
        run.bar.set_postfix(epoch=epoch, loss=f"{loss:.3f}", temp=f"{model.temperature():.3f}")
        run.bar.update()
        if cfg.checkpoint_every and batches % cfg.checkpoint_every == 0 and batches % cfg.accumulate == 0:
            save_checkpoint(checkpoint_path(cfg), checkpoint_state(run, epoch, s + 1))
        if cfg.stop_after and batches >= cfg.stop_after:
            run.bar.close()
            print(f"stopped after batch {batches} as asked; continue with --resume (checkpoint {checkpoint_path(cfg)})")
            return {"stopped_at": batches, "run_id": run.tracker.run_id}
    run.epoch_rates.append(len(index_lists) * cfg.batch_size / (time.perf_counter() - epoch_start))
    run.start_step, run.order = 0, None
    return None


def step(run: Run, x: torch.Tensor, idx: list[int]) -> float:
    """One batch forward and backward, and an optimizer step every --accumulate batches; the batch's loss."""
    cfg, model, device = run.cfg, run.model, run.device
    # Half-precision renders cross to the device as they are: half the bytes, converted and flipped there.
    x = x.to(device, non_blocking=True).float()
    flip = (torch.rand(len(idx), generator=run.gen) < 0.5).to(device)
    x[flip] = x[flip].flip(-1)
    texts = [normalize(t) for t in run.data.captions(idx, run.text_rng)]
    with torch.autocast(device.type, dtype=torch.bfloat16, enabled=run.use_bf16):
        if run.locked_text is not None:
            text_emb = run.locked_text(texts)
        else:
            tok = run.tokenizer(
                texts, padding=True, truncation=True, max_length=model.max_length, return_tensors="pt"
            ).to(device)
            text_emb = run.encode_text(tok["input_ids"], tok["attention_mask"])
        loss = model.contrastive_loss(run.encode_image(x), text_emb, run.data.groups[idx].to(device))
    (loss / cfg.accumulate).backward()
    run.history.append(loss.item())
    if len(run.history) % cfg.accumulate == 0:
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        run.opt.step()
        run.sched.step()
        run.opt.zero_grad(set_to_none=True)
    return run.history[-1]


def checkpoint_state(run: Run, epoch: int, step_in_epoch: int) -> dict:
    return {
        "model": run.model.state_dict(),
        "optimizer": run.opt.state_dict(),
        "scheduler": run.sched.state_dict(),
        "generator": run.gen.get_state(),
        "text_rng": run.text_rng.getstate(),
        "tokenizer": run.tokenizer.backend_tokenizer.to_str(),
        "history": run.history,
        "epoch": epoch,
        "step_in_epoch": step_in_epoch,
        "order": run.order,
        "run_id": run.tracker.run_id or None,
        "best": run.best,
    }


def validated(run: Run) -> dict | None:
    """Text-to-image recall on the held-out data, if there is any."""
    if run.heldout is None:
        return None
    run.model.eval()
    with torch.inference_mode():
        figures = run.heldout.recall(run.encoder())
    run.model.train()
    return figures


def validate_epoch(run: Run, epoch: int) -> bool:
    """The epoch's validation, logged; with --patience, whether training goes on (the best weights kept)."""
    val = validated(run)
    if val is None:
        return True
    # At the global step, like the loss: W&B drops metrics logged at a step lower than one already seen.
    metrics = {f"val_{k}": v for k, v in val.items() if k.startswith("R@")} | {"epoch": epoch}
    run.tracker.log_metrics(metrics, step=len(run.history))
    run.bar.write(f"epoch {epoch}: validation text->image R@1 {val['R@1']:.1%} R@10 {val['R@10']:.1%}")
    if not run.cfg.patience:
        return True
    if val["R@10"] > run.best[0]:
        run.best = (val["R@10"], epoch, {k: v.detach().clone() for k, v in run.model.state_dict().items()})
    elif epoch - run.best[1] >= run.cfg.patience:
        run.bar.write(f"early stop: validation R@10 last improved at epoch {run.best[1]}; keeping those weights")
        run.model.load_state_dict(run.best[2])
        return False
    return True


def save(run: Run) -> dict:
    """The model saved (before it is judged, so a failed evaluation loses nothing), its figures on held-out data,
    and the run's record."""
    cfg, model = run.cfg, run.model
    model.eval()
    meta = {
        "recipe": cfg.dataset,
        "config": {k: str(v) for k, v in asdict(cfg).items()},
        "first_loss": run.history[0],
        "final_loss": float(np.mean(run.history[-20:])),
        "seconds": round(time.time() - run.started, 1),
        # The median epoch: the first pays for torch.compile and warm-up.
        "train_images_per_second": round(float(np.median(run.epoch_rates)), 1) if run.epoch_rates else None,
    }
    if run.device.type == "cuda":
        meta["peak_gpu_memory_gib"] = round(torch.cuda.max_memory_allocated(run.device) / 2**30, 2)
    meta["parameters_millions"] = round(sum(p.numel() for p in model.parameters()) / 1e6, 1)
    if run.before is not None:
        meta["validation_before"] = run.before
    twotower.save(model, run.tokenizer, cfg.out, extra=meta)
    summary = held_out_figures(run, meta)
    twotower.save(model, run.tokenizer, cfg.out, extra=meta)
    if cfg.curve:
        write_curve(Path(cfg.curve), run.history, cfg.log_every)
    run.tracker.log_dict(meta, "training.json")
    run.tracker.log_dir(Path(cfg.out), "model")
    run.tracker.finish()
    meta["run_id"] = run.tracker.run_id
    checkpoint_path(cfg).unlink(missing_ok=True)  # the finished model supersedes it
    speed = f"{meta['train_images_per_second']} images/s" + (
        f", peak GPU memory {meta['peak_gpu_memory_gib']} GiB" if "peak_gpu_memory_gib" in meta else ""
    )
    print(
        f"saved {cfg.out} ({meta['parameters_millions']}M parameters): loss {meta['first_loss']:.3f} -> "
        f"{meta['final_loss']:.3f} in {meta['seconds']}s, {speed}; {summary}"
    )
    return meta


def held_out_figures(run: Run, meta: dict) -> str:
    """The trained model on data it did not learn from, recorded in ``meta`` and the tracker: zero-shot accuracy
    on a labelled dataset's test photos, the demo's attribute precision, or validation recall; a line for people."""
    cfg, encoder, tracker = run.cfg, run.encoder(), run.tracker
    if run.photos is not None:
        test = datasets.find(cfg.dataset).labelled("test", cfg)
        figures = classification.evaluate(encoder, test.images, test.labels, test.categories, run.captioner)
        meta["zero_shot_test"] = {
            k: figures[k] for k in ("accuracy", "image_to_image_P@10", "photos", "per_category", "most_confused")
        }
        tracker.log_metrics({"zero_shot_accuracy": figures["accuracy"]})
        return (
            f"zero-shot accuracy on the {figures['photos']} test photos {figures['accuracy']:.1%}, "
            f"image->image P@10 {figures['image_to_image_P@10']:.1%}"
        )
    if cfg.dataset == "demo":
        quality = attribute_precision(encoder, per_combo=cfg.eval_per_combo, workers=cfg.workers)
        meta["heldout_attribute_precision_at_10"] = quality["precision_at_k"]
        meta["heldout_per_attribute"] = quality["per_attribute"]
        tracker.log_metrics(
            {"heldout_attribute_precision_at_10": quality["precision_at_k"]}
            | {f"heldout_{k}": v for k, v in quality["per_attribute"].items()}
        )
        return f"held-out precision@10 {quality['precision_at_k']:.1%} {quality['per_attribute']}"
    val = validated(run)
    meta["valid_text_to_image"] = val
    if val:
        tracker.log_metrics({f"final_val_{k}": v for k, v in val.items() if k.startswith("R@")})
    if not val:
        return "no validation set given"
    line = f"validation text->image R@1 {val['R@1']:.1%} R@10 {val['R@10']:.1%} median rank {val['median_rank']:g}"
    if run.before is not None:
        line += f" (before training: R@1 {run.before['R@1']:.1%} R@10 {run.before['R@10']:.1%})"
    return line


def write_curve(path: Path, history: list[float], every: int) -> Path:
    """The loss every ``every`` steps (mean of those steps) as CSV, for ``dvc plots`` and spreadsheets."""
    every = max(1, every)
    rows = [(end, float(np.mean(history[end - every : end]))) for end in range(every, len(history) + 1, every)]
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text("step,loss\n" + "".join(f"{step},{loss:.5f}\n" for step, loss in rows))
    tmp.replace(path)
    return path


def main(argv: list[str] | None = None, prog: str | None = None) -> int:
    parser = argparse.ArgumentParser(prog=prog or "python -m mmsearch.train", description=__doc__)
    flags.add_settings(parser, TrainSettings, TuneSettings)
    args = parser.parse_args(argv)
    given = flags.overrides(args, TrainSettings)
    try:
        base = preset_settings(given.get("preset") or flags.environment(TrainSettings).get("preset", ""))
        cfg = flags.settings_from(TrainSettings, None, base, **given)
        tuning = flags.settings_from(TuneSettings, None, None, **flags.overrides(args, TuneSettings))
        if tuning.judgments:
            from mmsearch.train.judgments import tune_on_judgments

            tune_on_judgments(cfg, tuning)
        else:
            train(cfg)
    except (
        ValueError,
        FileNotFoundError,
        CatalogError,
        PretrainedError,
        TemplatesError,
        SynonymsError,
        EncoderError,
        DatabaseError,
    ) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
