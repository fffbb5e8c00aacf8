"""The two-tower model: a transformers ViT image tower and a BERT text tower, each projected into one shared space.

Saved as a plain directory (``model.safetensors``, ``twotower.json``, tokenizer files) so that ``two-tower:<dir>``
loads it anywhere without pickles. Each tower comes either from a Hugging Face checkpoint or from a small config for
training from scratch (the offline demo model and the tests). A pretrained text tower that training left as it was
(locked, as LiT locks one tower) is not copied into the directory: ``twotower.json`` names it by id and the sha256
of its weights, and loading finds it again (mmsearch/encode/pretrained.py) and refuses a copy whose hash differs.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn.functional as F
from PIL import Image
from safetensors.torch import load_file, load_model, save_file, save_model
from torch import nn
from transformers import AutoTokenizer, BertConfig, BertModel, BertTokenizer, ViTConfig, ViTModel

from mmsearch.atomic import atomic_dir
from mmsearch.encode import pretrained
from mmsearch.encode.encoders import image_transform as transform_for
from mmsearch.encode.image_towers import READING, TOWERS
from mmsearch.encode.pretrained import PretrainedError
from mmsearch.encode.text_towers import quiet_loading
from mmsearch.encode.tower_vision import TowerVision, is_tower

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
        text_pooling: str = "mean",
        text_source: dict | None = None,
        grayscale: bool = False,
        vision_source: dict | None = None,
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
        if text_pooling not in ("cls", "mean"):
            raise ValueError(f"text_pooling must be 'cls' or 'mean', not {text_pooling!r}")
        self.text_pooling = text_pooling
        # {"id": ..., "sha256": ...} while the text tower is a pretrained checkpoint left as it was: saved by reference
        self.text_source = text_source
        self.grayscale = grayscale  # trained on greyscale photos: colour inputs are turned grey first
        # {"id": ..., "size": ..., "sha256": ..., "locked": ..., "tuned_stages": ...} for a pretrained ImageNet tower
        # (tower_vision.py); what is locked of it is saved by reference
        self.vision_source = vision_source

    @property
    def reads_cut_outs_whole(self) -> bool:
        """An ImageNet tower tuned since cut-outs are read whole (image_towers.SquareCutOut); one trained before
        keeps the crop it was trained with."""
        return bool(self.vision_source and self.vision_source.get("reading") == READING)

    def image_transform(self) -> Callable[[Image.Image], torch.Tensor]:
        """How this model's pictures become pixels, in training and in serving alike."""
        return transform_for(
            self.image_size, self.image_mean, self.image_std, self.grayscale, whole_cut_outs=self.reads_cut_outs_whole
        )

    def encode_image(self, pixel_values: torch.Tensor) -> torch.Tensor:
        hidden = self.vision(pixel_values=pixel_values).last_hidden_state
        # [CLS] by default: a mean over patches is dominated by texture and colour and loses the object's shape.
        pooled = hidden[:, 0] if self.vision_pooling == "cls" else hidden.mean(dim=1)
        return F.normalize(self.image_proj(pooled), dim=-1)

    # Masked mean over tokens for text by default: short product queries have no sentence-level [CLS] training to rely
    # on, and sentence-transformers checkpoints such as all-MiniLM-L6-v2 were trained with it.
    def encode_text(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        hidden = self.text(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        if self.text_pooling == "cls":
            pooled = hidden[:, 0]
        else:
            mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1.0)
        return F.normalize(self.text_proj(pooled), dim=-1)

    def lock_text(self) -> None:
        """Keeps the text tower and its projection as they are (LiT's locked tower): with the projection the identity,
        queries meet the images in the pretrained model's own space, so words the training captions never used still
        land near their meaning."""
        if self.embed_dim != self.text.config.hidden_size:
            raise ValueError(
                f"a locked text tower needs --embed-dim {self.text.config.hidden_size} (its width), "
                f"not {self.embed_dim}"
            )
        with torch.no_grad():
            self.text_proj.weight.copy_(torch.eye(self.embed_dim))
        for p in [*self.text.parameters(), *self.text_proj.parameters()]:
            p.requires_grad_(False)

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
        return (
            {
                "embed_dim": self.embed_dim,
                "image_size": self.image_size,
                "image_mean": self.image_mean,
                "image_std": self.image_std,
                "max_length": self.max_length,
                "vision_pooling": self.vision_pooling,
                "text_pooling": self.text_pooling,
                "grayscale": self.grayscale,
                "vision_stem": stem_name(self.vision),
                "vision": self.vision.config.to_dict(),
                "text": self.text.config.to_dict(),
            }
            | ({"text_source": self.text_source} if self.text_source else {})
            | ({"vision_source": self.vision_source} if self.vision_source else {})
        )


CONV_STEMS = ("conv", "deep-conv")  # the other stem is ViT's own patch projection


class ConvStem(nn.Sequential):
    @property
    def weight(self) -> torch.Tensor:  # ViTModel reads its input dtype from the patch projection's weight
        return self[-1].weight


def stem_name(vision: ViTModel) -> str:
    if isinstance(vision, TowerVision):
        return "tower"
    stem = vision.embeddings.patch_embeddings.projection
    if not isinstance(stem, ConvStem):
        return "patch"
    return "deep-conv" if sum(isinstance(m, nn.Conv2d) for m in stem) > 3 else "conv"


def conv_stem(vision: ViTModel, deep: bool = False) -> None:
    """Replaces ViT's patch projection (one convolution, kernel = stride = patch) with small 3x3 convolutions that
    reach the same grid: a ViT with a convolutional stem (Xiao et al., 2021, "Early convolutions help transformers see
    better"), which learns shapes from few, small pictures faster. ``deep``: two convolutions at each scale instead of
    one. Measured figures: docs/fashion-mnist.md."""
    cfg = vision.config
    patch, width, channels = cfg.patch_size, cfg.hidden_size, cfg.num_channels
    strides = max(0, int(patch).bit_length() - 1)  # stride-2 steps to reach the patch grid: patch 4 -> 2
    if 2**strides != patch:
        raise ValueError(f"a convolutional stem needs a power-of-two patch size, not {patch}")
    layers: list[nn.Module] = []
    inner = max(8, width // 2 ** max(1, strides))
    previous = channels
    for step in range(strides + 1):
        out = width if step == strides else inner * 2**step
        stride = 1 if step == 0 else 2
        if deep and step < strides:  # a second convolution at this scale, before the one that moves on
            layers += [nn.Conv2d(previous, out, 3, stride, 1, bias=False), nn.BatchNorm2d(out), nn.GELU()]
            previous, stride = out, 1
        layers.append(nn.Conv2d(previous, out, 3, stride, 1, bias=step == strides))
        if step < strides:
            layers += [nn.BatchNorm2d(out), nn.GELU()]
        previous = out
    vision.embeddings.patch_embeddings.projection = ConvStem(*layers)


def from_configs(
    vision_cfg: dict, text_cfg: dict, embed_dim: int, max_length: int = 32, stem: str = "patch"
) -> TwoTower:
    vision = ViTModel(ViTConfig(**vision_cfg), add_pooling_layer=False)
    if stem in CONV_STEMS:
        conv_stem(vision, deep=stem == "deep-conv")
    text = BertModel(BertConfig(**text_cfg), add_pooling_layer=False)
    size = vision.config.image_size
    return TwoTower(vision, text, embed_dim, size, [0.5] * 3, [0.5] * 3, max_length)


def assemble(
    vision_name: str | None,
    vision_cfg: dict | None,
    text_name: str | None,
    text_cfg: dict | None,
    embed_dim: int,
    max_length: int = 64,
    grayscale: bool = False,
    stem: str = "patch",
) -> TwoTower:
    """Each tower from a checkpoint (a Hugging Face id or folder; known ids resolve offline to a packaged copy) or,
    without one, from its small config. The pooling of a pretrained text tower is the one its checkpoint says;
    ``embed_dim`` 0 is the text tower's own width."""
    mean, std = [0.5] * 3, [0.5] * 3
    vision_source = None
    if vision_name and vision_name.startswith("efficientnet") and not is_tower(vision_name):
        raise PretrainedError(
            f"unknown image tower {vision_name!r}: use {' or '.join(TOWERS)}, optionally @SIDE (efficientnet-lite0@160)"
        )
    if is_tower(vision_name):
        vision = TowerVision.named(vision_name)
        entry = TOWERS[vision.config.name]
        vision_source = {"id": vision.config.name, "size": vision.config.image_size, "sha256": entry.sha256}
        vision_source["reading"] = READING  # cut-outs read whole, as the zero-shot model reads them
    elif vision_name:
        from transformers import AutoImageProcessor

        folder = pretrained.resolve(vision_name)
        vision = ViTModel.from_pretrained(folder, add_pooling_layer=False)
        proc = AutoImageProcessor.from_pretrained(folder)
        mean, std = list(proc.image_mean), list(proc.image_std)
    else:
        vision = ViTModel(ViTConfig(**vision_cfg), add_pooling_layer=False)
        if stem in CONV_STEMS:
            conv_stem(vision, deep=stem == "deep-conv")
    source, text_pooling = None, "mean"
    if text_name:
        folder = pretrained.resolve(text_name)
        with quiet_loading():
            text = BertModel.from_pretrained(folder, add_pooling_layer=False)
        text_pooling = pretrained.pooling(folder)
        if Path(folder).is_dir():
            source = {"id": text_name, "sha256": pretrained.weights_hash(folder)}
    else:
        text = BertModel(BertConfig(**text_cfg), add_pooling_layer=False)
    return TwoTower(
        vision,
        text,
        embed_dim or text.config.hidden_size,
        vision.config.image_size,
        mean,
        std,
        max_length,
        text_pooling=text_pooling,
        text_source=source,
        grayscale=grayscale,
        vision_source=vision_source,
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
        referenced = referenced_prefixes(model)
        if referenced:  # a pretrained tower left as it was is referenced, not copied
            own = {k: v.contiguous() for k, v in model.state_dict().items() if not k.startswith(referenced)}
            save_file(own, str(tmp / WEIGHTS_FILE))
        else:
            save_model(model, str(tmp / WEIGHTS_FILE))
        cfg = model.config_dict() | ({"training": extra} if extra else {})
        (tmp / CONFIG_FILE).write_text(json.dumps(cfg, indent=2))
        tokenizer.save_pretrained(str(tmp))
    return Path(out_dir)


def referenced_prefixes(model: TwoTower) -> tuple[str, ...]:
    """The state-dict prefixes of what a model names rather than copies: a locked pretrained text tower, a locked
    image tower, or the locked stages below a tower tuned in its last ones (their weights are the package's)."""
    text = ("text.",) if model.text_source else ()
    tower = model.vision_source or {}
    if tower.get("locked"):
        return (*text, "vision.")
    if tower.get("tuned_stages"):
        return (*text, *model.vision.lower_prefixes("vision."))
    return text


def load(model_dir: Path, device: str | torch.device = "cpu") -> tuple[TwoTower, object]:
    model_dir = Path(model_dir)
    cfg_path = model_dir / CONFIG_FILE
    if not cfg_path.exists():
        raise FileNotFoundError(f"{model_dir} is not a two-tower model directory (no {CONFIG_FILE})")
    cfg = json.loads(cfg_path.read_text())
    tower = cfg.get("vision_source")
    if tower:
        vision = _referenced_tower(tower)
    else:
        vision = ViTModel(ViTConfig.from_dict(cfg["vision"]), add_pooling_layer=False)
    if cfg.get("vision_stem", "patch") in CONV_STEMS:
        conv_stem(vision, deep=cfg["vision_stem"] == "deep-conv")
    source = cfg.get("text_source")
    text = _referenced_text(source) if source else BertModel(BertConfig.from_dict(cfg["text"]), add_pooling_layer=False)
    model = TwoTower(
        vision,
        text,
        cfg["embed_dim"],
        cfg["image_size"],
        cfg["image_mean"],
        cfg["image_std"],
        cfg.get("max_length", 32),
        vision_pooling=cfg.get("vision_pooling", "cls"),
        text_pooling=cfg.get("text_pooling", "mean"),
        text_source=source,
        grayscale=cfg.get("grayscale", False),
        vision_source=tower,
    )
    if (tower or {}).get("tuned_stages"):
        vision.tune_stages(int(tower["tuned_stages"]))
    referenced = referenced_prefixes(model)
    if referenced:
        missing, unexpected = model.load_state_dict(load_file(str(model_dir / WEIGHTS_FILE)), strict=False)
        if unexpected or any(not k.startswith(referenced) for k in missing):
            raise ValueError(f"{model_dir}: weights do not fit the model ({unexpected[:3]} {missing[:3]})")
    else:
        load_model(model, str(model_dir / WEIGHTS_FILE), device="cpu")
    tokenizer = AutoTokenizer.from_pretrained(str(model_dir))
    return model.to(device).eval(), tokenizer


def _referenced_text(source: dict) -> BertModel:
    """The pretrained text tower a model names, found again and checked against the hash it was trained with."""
    try:
        folder = pretrained.resolve(source["id"])
        if not Path(folder).is_dir():
            raise FileNotFoundError(
                f"the model's text tower {source['id']} is not on this machine{pretrained.install_hint(source['id'])}"
            )
        found = pretrained.weights_hash(folder)
    except pretrained.PretrainedError as exc:
        raise FileNotFoundError(str(exc)) from exc
    if found != source["sha256"]:
        raise FileNotFoundError(
            f"the text tower at {folder} has sha256 {found}, but the model was trained on {source['sha256']}"
        )
    with quiet_loading():
        return BertModel.from_pretrained(folder, add_pooling_layer=False)


def _referenced_tower(source: dict) -> TowerVision:
    """The pretrained image tower a model names, found again in its package and checked against the hash it was
    trained with."""
    entry = TOWERS.get(source["id"])
    if entry is None or entry.sha256 != source["sha256"]:
        raise FileNotFoundError(
            f"the model's image tower {source['id']} ({source['sha256'][:12]}) is not one mmsearch knows"
        )
    try:
        return TowerVision.named(f"{source['id']}@{source['size']}")
    except PretrainedError as exc:
        raise FileNotFoundError(str(exc)) from exc


def fingerprint(model_dir: Path) -> str:
    """Content hash of the weights: a retrained model gets a new id, so an old index is never silently reused."""
    digest = hashlib.sha256()
    with open(Path(model_dir) / WEIGHTS_FILE, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()[:12]
