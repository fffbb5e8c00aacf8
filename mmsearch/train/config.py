"""What a training run is told: ``TrainConfig`` (every field is a ``python -m mmsearch.train`` flag, with its help
text in ``HELP``) and the small from-scratch tower configurations it describes."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from mmsearch.resources import DEMO_MODEL_DIR, SYNONYMS_FILE, default_data_dir


@dataclass
class TrainConfig:
    out: Path = DEMO_MODEL_DIR
    renders: int = 9600
    epochs: int = 24
    synonyms: str = str(SYNONYMS_FILE)
    varied_captions: float = 0.5
    batch_size: int = 128
    lr: float = 1e-3
    head_lr: float = 2e-3
    weight_decay: float = 0.05
    warmup_steps: int = 50
    image_size: int = 64
    patch_size: int = 8
    width: int = 128
    vision_layers: int = 4
    text_layers: int = 2
    heads: int = 4
    mlp_ratio: int = 2
    embed_dim: int = 128
    vocab_size: int = 1200
    tokenizer: str = ""
    seed: int = 0
    workers: int = 2
    threads: int = 0
    eval_per_combo: int = 12
    tracker: str = "mlflow"
    data_dir: Path = field(default_factory=default_data_dir)
    log_every: int = 10
    curve: str = ""
    checkpoint_every: int = 100
    resume: bool = False
    stop_after: int = 0
    vision_model: str = ""
    text_model: str = ""
    freeze_epochs: int = 0
    accumulate: int = 1
    device: str = "auto"
    precision: str = "auto"
    compile: bool = False
    patience: int = 0
    dataset: str = "demo"
    valid_dataset: str = ""
    image_column: str = "image"
    caption_column: str = "caption"
    where: str = ""
    valid_where: str = ""


HELP = {
    "out": "model directory to write (the bundled demo model's by default)",
    "renders": "training renders, 30 per kind/colour/pattern",
    "epochs": "passes over the training data",
    "varied_captions": "share of demo captions phrased as shoppers type, reached at 3/4 of training (none in 1st 1/4)",
    "synonyms": "demo captions take other words for each facet from here ('' = none)",
    "batch_size": "image-caption pairs per step",
    "lr": "peak learning rate of the towers (AdamW, warm-up then cosine decay)",
    "head_lr": "peak learning rate of the projection heads and the temperature",
    "weight_decay": "AdamW weight decay",
    "warmup_steps": "steps of linear learning-rate warm-up",
    "image_size": "input size of a from-scratch image tower, in pixels",
    "patch_size": "ViT patch size, in pixels",
    "width": "hidden width of both from-scratch towers",
    "vision_layers": "transformer layers of the from-scratch image tower",
    "text_layers": "transformer layers of the from-scratch text tower",
    "heads": "attention heads per layer",
    "mlp_ratio": "feed-forward width / width (4 in ViT-B/16 and BERT-base)",
    "embed_dim": "dimension of the shared embedding space",
    "tokenizer": "use this tokenizer (a model directory or a tokenizer.json) instead of learning one from the text",
    "vocab_size": "word pieces the tokenizer learns (from-scratch text tower)",
    "seed": "random seed (weights, data order, captions)",
    "workers": "processes that render or decode images",
    "threads": "torch intra-op threads; 0 keeps torch's default",
    "eval_per_combo": "held-out renders per combination for the final quality figure",
    "tracker": "mlflow (sqlite under data_dir), wandb, or none",
    "data_dir": "where the MLflow database and W&B files go",
    "curve": "also write the training curve (step, loss every --log-every steps) as CSV here, for dvc plots",
    "log_every": "steps between logged loss values",
    "checkpoint_every": "steps between checkpoints (0: none); see checkpoint_path()",
    "resume": "continue from the checkpoint: same step, same data order, same final weights",
    "stop_after": "stop after this many steps in total (0: train to the end); resume later with --resume",
    "vision_model": "a Hugging Face ViT checkpoint (e.g. google/vit-base-patch16-224-in21k); empty = from scratch",
    "text_model": "a Hugging Face BERT checkpoint (e.g. bert-base-uncased); empty = from scratch",
    "freeze_epochs": "train only the projection heads and temperature for this many epochs first",
    "accumulate": "micro-batches per optimizer step",
    "device": "auto, cpu or cuda[:N]",
    "precision": "auto (bf16 autocast on CUDA, fp32 on CPU), bf16 or fp32",
    "compile": "torch.compile the two towers' forward passes (pays off on long GPU runs)",
    "patience": "stop when validation R@10 has not improved for this many epochs, keeping the best (0: never)",
    "dataset": "demo, or image-caption pairs: hf:<name or folder>[:split] or a captions file",
    "valid_dataset": "pairs for per-epoch validation and the final figures (demo: held-out renders)",
    "image_column": "--dataset: the image column",
    "caption_column": "--dataset: the caption column",
    "where": "COLUMN=VALUE filter for --dataset, e.g. split=train",
    "valid_where": "COLUMN=VALUE filter for --valid-dataset, e.g. split=val",
}  # --help text of each TrainConfig field's flag


def tiny_configs(cfg: TrainConfig, vocab_size: int) -> tuple[dict, dict]:
    vision = dict(
        image_size=cfg.image_size,
        patch_size=cfg.patch_size,
        hidden_size=cfg.width,
        num_hidden_layers=cfg.vision_layers,
        num_attention_heads=cfg.heads,
        intermediate_size=cfg.width * cfg.mlp_ratio,
        hidden_dropout_prob=0.0,
        attention_probs_dropout_prob=0.0,
    )
    text = dict(
        vocab_size=vocab_size,
        hidden_size=cfg.width,
        num_hidden_layers=cfg.text_layers,
        num_attention_heads=cfg.heads,
        intermediate_size=cfg.width * cfg.mlp_ratio,
        max_position_embeddings=64,
        hidden_dropout_prob=0.0,
        attention_probs_dropout_prob=0.0,
    )
    return vision, text
