"""Trains a two-tower model contrastively. ``python -m mmsearch.train`` makes the offline demo model in assets/;
``--preset fashion-mnist`` the Fashion-MNIST model (a ViT learning to meet the locked, pretrained all-MiniLM-L6-v2);
``--dataset`` trains on image-caption pairs instead (Flickr30k, any Hugging Face dataset, or a captions file).

The demo recipe trains a small ViT + BERT from scratch on fresh demo renders (disjoint from the catalog and from the
held-out renders used to judge it), with captions drawn from several phrasings of each item's attributes.
"""

from __future__ import annotations

import argparse
import math
import random
import sys
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from mmsearch import flags
from mmsearch.encode import twotower
from mmsearch.encode.encoders import EncoderError, TwoTowerEncoder, image_transform, pick_device
from mmsearch.encode.pretrained import PretrainedError
from mmsearch.ingest import demo, fashion_mnist
from mmsearch.ingest.captions import CategoryCaptions, TemplatesError, load_templates
from mmsearch.ingest.catalog import CatalogError
from mmsearch.ingest.pairs import load_pairs, parse_where
from mmsearch.ingest.phrasing import Synonyms, SynonymsError, normalize
from mmsearch.resources import SYNONYMS_FILE
from mmsearch.store.database import DatabaseError
from mmsearch.train import classification
from mmsearch.train.config import TrainConfig, TuneSettings, preset_settings, tiny_configs
from mmsearch.train.data import ClassData, DemoData, PairsData
from mmsearch.train.tracking import open_tracker
from mmsearch.train.validation import attribute_precision, validation_set


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
    cfg: TrainConfig, texts: list[str] | None = None, tokenizer_json: str | None = None
) -> tuple[twotower.TwoTower, object]:
    """Each tower pretrained where its checkpoint is named (--vision-model, --text-model), else small and from
    scratch; a locked tower stays as it is. ``tokenizer_json``: a resumed run's tokenizer, from its checkpoint."""
    if cfg.lock_text and not cfg.text_model:
        raise ValueError("--lock-text keeps a pretrained text tower as it is: name one with --text-model")
    if cfg.lock_vision and not cfg.vision_model:
        raise ValueError("--lock-vision keeps a pretrained image tower as it is: name one with --vision-model")
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
                cfg.embed_dim,
                grayscale=cfg.grayscale,
                stem=cfg.stem,
            )
        except OSError as exc:  # from_pretrained: no network and no local copy
            raise PretrainedError(
                f"cannot load {cfg.vision_model or cfg.text_model}: {exc}{pretrained.install_hint(cfg.text_model)}"
            ) from exc
        if cfg.lock_text:
            model.lock_text()
        else:
            model.text_source = None  # a tuned text tower is saved with the model, not referenced
        if cfg.lock_vision:
            model.vision.requires_grad_(False)
        return model, tokenizer
    tokenizer = _learnt_tokenizer(cfg, texts, tokenizer_json)
    vision_cfg, text_cfg = tiny_configs(cfg, len(tokenizer))
    model = twotower.from_configs(vision_cfg, text_cfg, cfg.embed_dim, stem=cfg.stem)
    model.grayscale = cfg.grayscale
    return model, tokenizer


def _learnt_tokenizer(cfg: TrainConfig, texts: list[str] | None, tokenizer_json: str | None):
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


def category_captions(cfg: TrainConfig) -> CategoryCaptions:
    if not cfg.templates:
        raise ValueError(
            "a classification dataset is captioned through --templates (e.g. assets/fashion-mnist/templates.txt)"
        )
    return CategoryCaptions(load_templates(cfg.templates), Synonyms.load(cfg.synonyms))


def checkpoint_path(cfg: TrainConfig) -> Path:
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


def train(cfg: TrainConfig) -> dict:
    # Argument mistakes surface before minutes of data preparation.
    if cfg.resume and not checkpoint_path(cfg).exists():
        raise FileNotFoundError(f"--resume: no checkpoint at {checkpoint_path(cfg)}")
    if cfg.patience and cfg.dataset != "demo" and not cfg.valid_dataset:
        raise ValueError("--patience needs validation data: pass --valid-dataset")
    random.seed(cfg.seed)
    np.random.seed(cfg.seed)
    torch.manual_seed(cfg.seed)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    t0 = time.time()
    pairs, photos = None, None
    if cfg.dataset.split(":", 1)[0] == fashion_mnist.SOURCE:
        photos = fashion_mnist.load_split(fashion_mnist.parse_spec(cfg.dataset), cfg.fashion_mnist_dir)
        captioner = category_captions(cfg)
    elif cfg.dataset != "demo":
        pairs = load_pairs(cfg.dataset, cfg.image_column, cfg.caption_column, parse_where(cfg.where))
    # A resumed run takes its tokenizer from the checkpoint: the WordPiece trainer of tokenizers breaks ties between
    # equally frequent pieces differently in each process, so a vocabulary learnt again would not match the weights.
    resumed = torch.load(checkpoint_path(cfg), weights_only=True) if cfg.resume else None
    model, tokenizer = build_model(
        cfg, pairs.captions if pairs is not None else None, resumed.get("tokenizer") if resumed else None
    )
    device = pick_device(cfg.device)
    model.to(device)
    use_bf16 = cfg.precision == "bf16" or (cfg.precision == "auto" and device.type == "cuda")
    preprocess = image_transform(model.image_size, model.image_mean, model.image_std, model.grayscale)
    if photos is not None:
        data = ClassData(
            photos.images,
            photos.labels,
            fashion_mnist.CATEGORIES,
            captioner,
            model.image_size,
            model.image_mean,
            model.image_std,
            cfg.shift,
            cfg.seed,
        )
    elif pairs is not None:
        data = PairsData(pairs, preprocess, cfg.workers)
    else:
        data = DemoData(
            cfg.renders, preprocess, model.image_size, cfg.workers, Synonyms.load(cfg.synonyms), cfg.varied_captions
        )
    print(f"{len(data)} training images ready in {time.time() - t0:.1f}s")
    groups = data.groups

    trained = [(n, p) for n, p in model.named_parameters() if p.requires_grad]  # a locked tower is left out
    heads = [p for n, p in trained if n.startswith(("image_proj", "text_proj", "logit_scale"))]
    vision = [p for n, p in trained if n.startswith("vision.")]
    text = [p for n, p in trained if n.startswith("text.")]
    towers = vision + text
    groups_lr = [(vision, cfg.vision_lr or cfg.lr), (text, cfg.text_lr or cfg.lr), (heads, cfg.head_lr)]
    opt = torch.optim.AdamW([{"params": ps, "lr": lr} for ps, lr in groups_lr if ps], weight_decay=cfg.weight_decay)
    locked_text = LockedText(model, tokenizer, device) if cfg.lock_text else None
    steps_per_epoch = len(data) // cfg.batch_size
    if steps_per_epoch == 0:
        raise ValueError(f"{len(data)} training images make no batch of {cfg.batch_size}; lower --batch-size")
    total = steps_per_epoch * cfg.epochs
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lr_lambda(cfg.warmup_steps, max(1, total // cfg.accumulate)))
    heldout = validation_set(cfg, preprocess, model.image_size)

    def validate() -> dict | None:
        if heldout is None:
            return None
        model.eval()
        with torch.inference_mode():
            figures = heldout.recall(TwoTowerEncoder("training", model, tokenizer, device, preprocess))
        model.train()
        return figures

    gen = torch.Generator().manual_seed(cfg.seed)
    text_rng = random.Random(cfg.seed)
    # Compiled callables rather than compiled modules: the saved state dict keeps its plain parameter names.
    encode_image = torch.compile(model.encode_image) if cfg.compile else model.encode_image
    encode_text = torch.compile(model.encode_text) if cfg.compile else model.encode_text
    history: list[float] = []
    best: tuple[float, int, dict | None] = (-1.0, -1, None)  # validation R@10, its epoch, its weights
    start_epoch, start_step, order, run_id = 0, 0, None, None
    ckpt = checkpoint_path(cfg)
    if resumed is not None:
        state = resumed  # tensors and plain values only (weights_only): never arbitrary pickles
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        sched.load_state_dict(state["scheduler"])
        gen.set_state(state["generator"])
        text_rng.setstate(state["text_rng"])
        history, start_epoch, start_step = state["history"], state["epoch"], state["step_in_epoch"]
        order, run_id = state["order"], state.get("run_id")
        best = state.get("best", best)
        print(f"resuming from {ckpt} at batch {len(history)} (epoch {start_epoch}, batch {start_step} of the epoch)")

    recipe = cfg.preset or ("demo" if cfg.dataset == "demo" else "pairs")
    tracker = open_tracker(
        cfg.tracker, cfg.data_dir, "mmsearch-train", run_name=f"{recipe}-{Path(cfg.out).name}", run_id=run_id
    )
    if run_id is None:
        tracker.log_params(asdict(cfg) | {"vocab_size": len(tokenizer), "train_images": len(data)})
    model.train()
    epoch_rates: list[float] = []  # training images/s per epoch, data loading included, validation not
    bar = tqdm(total=total, initial=len(history), desc="training", unit="batch")
    for epoch in range(start_epoch, cfg.epochs):
        if hasattr(data, "set_epoch"):
            data.set_epoch(epoch, cfg.epochs)
        for p in towers:  # frozen towers first let fresh heads align pretrained features without wrecking them
            p.requires_grad_(epoch >= cfg.freeze_epochs)
        if order is None:
            order = torch.randperm(len(data), generator=gen)
        index_lists = [
            order[s * cfg.batch_size : (s + 1) * cfg.batch_size].tolist() for s in range(start_step, steps_per_epoch)
        ]
        epoch_start = time.perf_counter()
        for s, x in zip(range(start_step, steps_per_epoch), data.batches(index_lists)):
            idx = index_lists[s - start_step]
            # Half-precision renders cross to the device as they are: half the bytes, converted and flipped there.
            x = x.to(device, non_blocking=True).float()
            flip = (torch.rand(len(idx), generator=gen) < 0.5).to(device)
            x[flip] = x[flip].flip(-1)
            texts = [normalize(t) for t in data.captions(idx, text_rng)]
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=use_bf16):
                if locked_text is not None:
                    text_emb = locked_text(texts)
                else:
                    tok = tokenizer(
                        texts, padding=True, truncation=True, max_length=model.max_length, return_tensors="pt"
                    ).to(device)
                    text_emb = encode_text(tok["input_ids"], tok["attention_mask"])
                loss = model.contrastive_loss(encode_image(x), text_emb, groups[idx].to(device))
            (loss / cfg.accumulate).backward()
            history.append(loss.item())
            if len(history) % cfg.accumulate == 0:
                torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
                opt.step()
                sched.step()
                opt.zero_grad(set_to_none=True)
            batches = len(history)  # a batch is one forward and backward pass; a step, one optimizer update
            if batches % cfg.log_every == 0:
                tracker.log_metrics(
                    {
                        "loss": float(np.mean(history[-cfg.log_every :])),
                        "lr": sched.get_last_lr()[0],
                        "temperature": model.temperature(),
                    },
                    step=batches,
                )
            bar.set_postfix(epoch=epoch, loss=f"{loss.item():.3f}", temp=f"{model.temperature():.3f}")
            bar.update()
            if cfg.checkpoint_every and batches % cfg.checkpoint_every == 0 and batches % cfg.accumulate == 0:
                save_checkpoint(
                    ckpt,
                    {
                        "model": model.state_dict(),
                        "optimizer": opt.state_dict(),
                        "scheduler": sched.state_dict(),
                        "generator": gen.get_state(),
                        "text_rng": text_rng.getstate(),
                        "tokenizer": tokenizer.backend_tokenizer.to_str(),
                        "history": history,
                        "epoch": epoch,
                        "step_in_epoch": s + 1,
                        "order": order,
                        "run_id": tracker.run_id or None,
                        "best": best,
                    },
                )
            if cfg.stop_after and batches >= cfg.stop_after:
                bar.close()
                print(f"stopped after batch {batches} as asked; continue with --resume (checkpoint {ckpt})")
                return {"stopped_at": batches, "run_id": tracker.run_id}
        epoch_rates.append(len(index_lists) * cfg.batch_size / (time.perf_counter() - epoch_start))
        start_step, order = 0, None
        val = validate()
        if val is None:
            continue
        # At the global step, like the loss: W&B drops metrics logged at a step lower than one already seen.
        tracker.log_metrics(
            {f"val_{k}": v for k, v in val.items() if k.startswith("R@")} | {"epoch": epoch}, step=len(history)
        )
        bar.write(f"epoch {epoch}: validation text->image R@1 {val['R@1']:.1%} R@10 {val['R@10']:.1%}")
        if cfg.patience:
            if val["R@10"] > best[0]:
                best = (val["R@10"], epoch, {k: v.detach().clone() for k, v in model.state_dict().items()})
            elif epoch - best[1] >= cfg.patience:
                bar.write(f"early stop: validation R@10 last improved at epoch {best[1]}; keeping those weights")
                model.load_state_dict(best[2])
                break
    bar.close()
    model.eval()
    meta = {
        "recipe": cfg.dataset,
        "config": {k: str(v) for k, v in asdict(cfg).items()},
        "first_loss": history[0],
        "final_loss": float(np.mean(history[-20:])),
        "seconds": round(time.time() - t0, 1),
        # The median epoch: the first pays for torch.compile and warm-up.
        "train_images_per_second": round(float(np.median(epoch_rates)), 1) if epoch_rates else None,
    }
    if device.type == "cuda":
        meta["peak_gpu_memory_gib"] = round(torch.cuda.max_memory_allocated(device) / 2**30, 2)
    meta["parameters_millions"] = round(sum(p.numel() for p in model.parameters()) / 1e6, 1)
    twotower.save(model, tokenizer, cfg.out, extra=meta)  # saved before judging, so a failed evaluation loses nothing
    encoder = TwoTowerEncoder("training", model, tokenizer, device, preprocess)
    if photos is not None:
        test = fashion_mnist.load_split("test", cfg.fashion_mnist_dir)
        figures = classification.evaluate(encoder, test.images, test.labels, fashion_mnist.CATEGORIES, captioner)
        meta["zero_shot_test"] = {
            k: figures[k] for k in ("accuracy", "image_to_image_P@10", "photos", "per_category", "most_confused")
        }
        summary = (
            f"zero-shot accuracy on the {figures['photos']} test photos {figures['accuracy']:.1%}, "
            f"image->image P@10 {figures['image_to_image_P@10']:.1%}"
        )
        tracker.log_metrics({"zero_shot_accuracy": figures["accuracy"]})
    elif cfg.dataset == "demo":
        quality = attribute_precision(encoder, per_combo=cfg.eval_per_combo, workers=cfg.workers)
        meta["heldout_attribute_precision_at_10"] = quality["precision_at_k"]
        meta["heldout_per_attribute"] = quality["per_attribute"]
        summary = f"held-out precision@10 {quality['precision_at_k']:.1%} {quality['per_attribute']}"
        tracker.log_metrics(
            {"heldout_attribute_precision_at_10": quality["precision_at_k"]}
            | {f"heldout_{k}": v for k, v in quality["per_attribute"].items()}
        )
    else:
        val = validate()
        meta["valid_text_to_image"] = val
        summary = f"validation text->image {val}" if val else "no validation set given"
        if val:
            tracker.log_metrics({f"final_val_{k}": v for k, v in val.items() if k.startswith("R@")})
    twotower.save(model, tokenizer, cfg.out, extra=meta)
    if cfg.curve:
        write_curve(Path(cfg.curve), history, cfg.log_every)
    tracker.log_dict(meta, "training.json")
    tracker.log_dir(Path(cfg.out), "model")
    tracker.finish()
    meta["run_id"] = tracker.run_id
    ckpt.unlink(missing_ok=True)  # the finished model supersedes it
    speed = f"{meta['train_images_per_second']} images/s" + (
        f", peak GPU memory {meta['peak_gpu_memory_gib']} GiB" if "peak_gpu_memory_gib" in meta else ""
    )
    print(
        f"saved {cfg.out} ({meta['parameters_millions']}M parameters): loss {meta['first_loss']:.3f} -> "
        f"{meta['final_loss']:.3f} in {meta['seconds']}s, {speed}; {summary}"
    )
    return meta


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
    flags.add_settings(parser, TrainConfig, TuneSettings)
    args = parser.parse_args(argv)
    given = flags.overrides(args, TrainConfig)
    try:
        base = preset_settings(given.get("preset") or flags.environment(TrainConfig).get("preset", ""))
        cfg = flags.settings_from(TrainConfig, None, base, **given)
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
