"""The two-tower model: a transformers ViT image tower and a BERT text tower, each projected into one shared space.

Saved as a plain directory (``model.safetensors``, ``twotower.json``, tokenizer files) so that ``two-tower:<dir>``
loads it anywhere without pickles. Towers come either from Hugging Face checkpoints or from small configs for training
from scratch (the offline demo model and the tests).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import torch
import torch.nn.functional as F
from safetensors.torch import load_model, save_model
from torch import nn
from transformers import AutoTokenizer, BertConfig, BertModel, BertTokenizer, ViTConfig, ViTModel

from mmsearch.atomic import atomic_dir

CONFIG_FILE = "twotower.json"
WEIGHTS_FILE = "model.safetensors"
SPECIAL_TOKENS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]


class TwoTower(nn.Module):
    def __init__(
        self,
        vision: ViTModel,
        text: BertModel,
        embed_dim: int,
        image_size: int,
        image_mean: list[float],
        image_std: list[float],
        max_length: int = 32,
        init_temperature: float = 0.07,
        vision_pooling: str = "cls",
    ):
        super().__init__()
        self.vision, self.text = vision, text
        self.image_proj = nn.Linear(vision.config.hidden_size, embed_dim, bias=False)
        self.text_proj = nn.Linear(text.config.hidden_size, embed_dim, bias=False)
        # CLIP's parametrisation: a learnable log inverse temperature, clamped so logits stay below 100.
        self.logit_scale = nn.Parameter(torch.tensor(float(torch.log(torch.tensor(1.0 / init_temperature)))))
        self.embed_dim, self.image_size, self.max_length = embed_dim, image_size, max_length
        self.image_mean, self.image_std = list(image_mean), list(image_std)
        if vision_pooling not in ("cls", "mean"):
            raise ValueError(f"vision_pooling must be 'cls' or 'mean', not {vision_pooling!r}")
        self.vision_pooling = vision_pooling

    def encode_image(self, pixel_values: torch.Tensor) -> torch.Tensor:
        hidden = self.vision(pixel_values=pixel_values).last_hidden_state
        # [CLS] by default: a mean over patches is dominated by texture and colour and loses the object's shape.
        pooled = hidden[:, 0] if self.vision_pooling == "cls" else hidden.mean(dim=1)
        return F.normalize(self.image_proj(pooled), dim=-1)

    # Masked mean over tokens for text: short product queries have no sentence-level [CLS] training to rely on.
    def encode_text(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        hidden = self.text(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
        pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1.0)
        return F.normalize(self.text_proj(pooled), dim=-1)

    def temperature(self) -> float:
        return float(1.0 / self.logit_scale.detach().clamp(max=4.6052).exp())

    def contrastive_loss(
        self, image_emb: torch.Tensor, text_emb: torch.Tensor, groups: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Symmetric InfoNCE. With ``groups``, pairs sharing a group id are all positives (soft targets), so that two
        captions saying the same thing in one batch are not pushed apart."""
        scale = self.logit_scale.clamp(max=4.6052).exp()
        logits = scale * image_emb @ text_emb.t()
        if groups is None:
            target = torch.arange(len(logits), device=logits.device)
            return (F.cross_entropy(logits, target) + F.cross_entropy(logits.t(), target)) / 2
        same = (groups[:, None] == groups[None, :]).to(logits.dtype)
        target = same / same.sum(1, keepdim=True)
        return (F.cross_entropy(logits, target) + F.cross_entropy(logits.t(), target)) / 2

    def config_dict(self) -> dict:
        return {
            "embed_dim": self.embed_dim,
            "image_size": self.image_size,
            "image_mean": self.image_mean,
            "image_std": self.image_std,
            "max_length": self.max_length,
            "vision_pooling": self.vision_pooling,
            "vision": self.vision.config.to_dict(),
            "text": self.text.config.to_dict(),
        }


def from_configs(vision_cfg: dict, text_cfg: dict, embed_dim: int, max_length: int = 32) -> TwoTower:
    vision = ViTModel(ViTConfig(**vision_cfg), add_pooling_layer=False)
    text = BertModel(BertConfig(**text_cfg), add_pooling_layer=False)
    size = vision.config.image_size
    return TwoTower(vision, text, embed_dim, size, [0.5] * 3, [0.5] * 3, max_length)


def from_pretrained_towers(vision_name: str, text_name: str, embed_dim: int = 256, max_length: int = 64) -> TwoTower:
    """Towers from Hugging Face checkpoints (e.g. google/vit-base-patch16-224-in21k and bert-base-uncased)."""
    from transformers import AutoImageProcessor

    vision = ViTModel.from_pretrained(vision_name, add_pooling_layer=False)
    text = BertModel.from_pretrained(text_name, add_pooling_layer=False)
    proc = AutoImageProcessor.from_pretrained(vision_name)
    return TwoTower(
        vision, text, embed_dim, vision.config.image_size, list(proc.image_mean), list(proc.image_std), max_length
    )


def build_tokenizer(texts: list[str], vocab_size: int = 1200) -> BertTokenizer:
    """A WordPiece tokenizer (BERT's scheme) learnt from ``texts``, no download needed.

    Frequent words become whole tokens and the rest split into pieces down to single characters, so a plural, an
    inflection or a typo the texts never had still reaches the model as pieces it knows, never as [UNK]."""
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers

    tok = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    tok.normalizer = normalizers.BertNormalizer(lowercase=True)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    # Every letter and digit both opening a word and inside one, so no typed word can become [UNK].
    letters = " ".join(c * 2 for c in "abcdefghijklmnopqrstuvwxyz0123456789")
    tok.train_from_iterator(
        [*texts, letters],
        trainers.WordPieceTrainer(vocab_size=vocab_size, special_tokens=SPECIAL_TOKENS, show_progress=False),
    )
    tok.post_processor = processors.BertProcessing(
        ("[SEP]", tok.token_to_id("[SEP]")), ("[CLS]", tok.token_to_id("[CLS]"))
    )
    tok.decoder = decoders.WordPiece()
    return _wrap(tok)


def tokenizer_from_json(text: str) -> BertTokenizer:
    """A tokenizer saved as ``tokenizers`` JSON (a training checkpoint keeps its tokenizer this way)."""
    from tokenizers import Tokenizer

    return _wrap(Tokenizer.from_str(text))


def _wrap(tok) -> BertTokenizer:
    return BertTokenizer(
        tokenizer_object=tok,
        unk_token="[UNK]",
        pad_token="[PAD]",
        cls_token="[CLS]",
        sep_token="[SEP]",
        mask_token="[MASK]",
    )


def save(model: TwoTower, tokenizer, out_dir: Path, extra: dict | None = None) -> Path:
    """Writes the model directory atomically: a reader never sees a half-written model."""
    with atomic_dir(Path(out_dir)) as tmp:
        save_model(model, str(tmp / WEIGHTS_FILE))
        cfg = model.config_dict() | ({"training": extra} if extra else {})
        (tmp / CONFIG_FILE).write_text(json.dumps(cfg, indent=2))
        tokenizer.save_pretrained(str(tmp))
    return Path(out_dir)


def load(model_dir: Path, device: str | torch.device = "cpu") -> tuple[TwoTower, object]:
    model_dir = Path(model_dir)
    cfg_path = model_dir / CONFIG_FILE
    if not cfg_path.exists():
        raise FileNotFoundError(f"{model_dir} is not a two-tower model directory (no {CONFIG_FILE})")
    cfg = json.loads(cfg_path.read_text())
    vision = ViTModel(ViTConfig.from_dict(cfg["vision"]), add_pooling_layer=False)
    text = BertModel(BertConfig.from_dict(cfg["text"]), add_pooling_layer=False)
    model = TwoTower(
        vision,
        text,
        cfg["embed_dim"],
        cfg["image_size"],
        cfg["image_mean"],
        cfg["image_std"],
        cfg.get("max_length", 32),
        vision_pooling=cfg.get("vision_pooling", "cls"),
    )
    load_model(model, str(model_dir / WEIGHTS_FILE), device="cpu")
    tokenizer = AutoTokenizer.from_pretrained(str(model_dir))
    return model.to(device).eval(), tokenizer


def fingerprint(model_dir: Path) -> str:
    """Content hash of the weights: a retrained model gets a new id, so an old index is never silently reused."""
    digest = hashlib.sha256()
    with open(Path(model_dir) / WEIGHTS_FILE, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()[:12]
