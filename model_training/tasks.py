"""What each training method optimises: a module ``forward(batch) -> {"loss": ...}`` around an open_clip model."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .losses import ArcFaceLoss, ClipLoss, MCIPLoss, SigLipLoss

LOGIT_SCALE_MAX = 4.6052  # ln(100), CLIP's clamp


def image_tower(model: nn.Module) -> nn.Module:
    return model.visual


def text_parameters(model: nn.Module) -> list[tuple[str, nn.Parameter]]:
    """Text-tower parameter tensors from input to output (the order 'last N tensors' counts in)."""
    if hasattr(model, "text"):  # CustomTextCLIP (SigLIP, HF text towers)
        return [(f"text.{n}", p) for n, p in model.text.named_parameters()]
    order = ["token_embedding", "positional_embedding", "transformer", "ln_final", "text_projection"]
    named = dict(model.named_parameters())
    out = []
    for prefix in order:
        out += [(n, p) for n, p in named.items() if n == prefix or n.startswith(prefix + ".")]
    return out


def lock_text_tower(model: nn.Module, unlocked_tensors: int = 0) -> list[str]:
    """Freeze the text tower except its last ``unlocked_tensors`` parameter tensors; returns their names."""
    params = text_parameters(model)
    for _, p in params:
        p.requires_grad_(False)
    unlocked = params[len(params) - unlocked_tensors:] if unlocked_tensors else []
    for _, p in unlocked:
        p.requires_grad_(True)
    return [n for n, _ in unlocked]


def lock_image_tower(model: nn.Module) -> None:
    for p in model.visual.parameters():
        p.requires_grad_(False)


def freeze_logit_params(model: nn.Module, frozen: bool = True) -> None:
    for name in ("logit_scale", "logit_bias"):
        p = getattr(model, name, None)
        if isinstance(p, nn.Parameter):
            p.requires_grad_(not frozen)


def set_patch_dropout(model: nn.Module, prob: float) -> None:
    from open_clip.transformer import PatchDropout

    if prob and hasattr(model.visual, "patch_dropout"):
        model.visual.patch_dropout = PatchDropout(prob)


class GPRFineTune(nn.Module):
    """Stage 1: the image tower (with its projection) against ArcFace class proxies; text tower frozen."""

    def __init__(self, clip: nn.Module, num_classes: int, dim: int, scale: float = 30.0, margin: float = 0.1):
        super().__init__()
        self.clip = clip
        lock_text_tower(clip, 0)
        freeze_logit_params(clip)
        self.loss = ArcFaceLoss(num_classes, dim, scale, margin)

    def forward(self, batch: dict) -> dict:
        return {"loss": self.loss(self.clip.encode_image(batch["image"]), batch["label"])}


class CaptionBank(nn.Module):
    """Embeddings of the pseudo-captions by the model's own frozen text tower, computed once.

    The text tower is frozen and deterministic in MCIP, so this equals encoding in every step.
    """

    def __init__(self, embeddings: torch.Tensor):
        super().__init__()
        self.register_buffer("embeddings", F.normalize(embeddings.float(), dim=-1), persistent=False)

    @classmethod
    @torch.no_grad()
    def encode(cls, clip: nn.Module, tokenizer, captions: list[str], batch_size: int = 1024, device="cpu") -> CaptionBank:
        was_training = clip.training
        clip.eval()
        chunks = [clip.encode_text(tokenizer(captions[s:s + batch_size]).to(device)).float().cpu()
                  for s in range(0, len(captions), batch_size)]
        clip.train(was_training)
        return cls(torch.cat(chunks) if chunks else torch.zeros(0, 1))


class MCIPFineTune(nn.Module):
    """MCIP: 0.75 ArcFace over class proxies + 0.25 multi-caption ArcFace against the frozen text tower.

    ``batch["captions"]`` holds, per image, indices into the caption bank. Identical captions in a batch
    are one class, positive for every image that has it. (The authors keep duplicates as separate
    columns, so an image's own caption text also appears as its negative whenever another image in the
    batch shares it: rare among CC12M captions, but constant when few objects share many images.)
    """

    def __init__(self, clip: nn.Module, num_classes: int, dim: int, bank: CaptionBank, scale: float = 30.0,
                 margin: float = 0.1, class_weight: float = 0.75, caption_weight: float = 0.25, hard_weight: float = 0.1):
        super().__init__()
        self.clip, self.bank = clip, bank
        lock_text_tower(clip, 0)
        freeze_logit_params(clip)
        self.loss = MCIPLoss(num_classes, dim, scale, margin, class_weight, caption_weight, hard_weight)

    def forward(self, batch: dict) -> dict:
        features = self.clip.encode_image(batch["image"])
        columns = sorted({c for caps in batch["captions"] for c in caps})
        where = {c: j for j, c in enumerate(columns)}
        positives = torch.zeros(len(batch["captions"]), len(columns), dtype=torch.bool)
        for i, caps in enumerate(batch["captions"]):
            positives[i, [where[c] for c in caps]] = True
        caption_features = self.bank.embeddings[torch.as_tensor(columns, dtype=torch.long, device=features.device)]
        return self.loss(features, batch["label"], caption_features, positives.to(features.device))


class Realign(nn.Module):
    """Stage 2: cached image embeddings (image tower locked) against the text tower's last tensors."""

    def __init__(self, clip: nn.Module, unlocked_text_tensors: int = 16, loss: str = "auto"):
        super().__init__()
        self.clip = clip
        lock_image_tower(clip)
        self.unlocked = lock_text_tower(clip, unlocked_text_tensors)
        freeze_logit_params(clip, frozen=False)
        sigmoid = loss == "siglip" or (loss == "auto" and getattr(clip, "logit_bias", None) is not None)
        self.loss = SigLipLoss() if sigmoid else ClipLoss()

    def forward(self, batch: dict) -> dict:
        text = F.normalize(self.clip.encode_text(batch["tokens"]), dim=-1)
        image = F.normalize(batch["feature"].to(text.dtype), dim=-1)
        return {"loss": contrastive(self.loss, self.clip, image, text), "logit_scale": self.clip.logit_scale.exp().detach()}


class ClipPretrain(nn.Module):
    """Both towers from image-caption pairs (the synthetic benchmark's base model)."""

    def __init__(self, clip: nn.Module):
        super().__init__()
        self.clip = clip
        self.loss = SigLipLoss() if getattr(clip, "logit_bias", None) is not None else ClipLoss()

    def forward(self, batch: dict) -> dict:
        image = F.normalize(self.clip.encode_image(batch["image"]), dim=-1)
        text = F.normalize(self.clip.encode_text(batch["tokens"]), dim=-1)
        return {"loss": contrastive(self.loss, self.clip, image, text)}


def contrastive(loss: nn.Module, clip: nn.Module, image: torch.Tensor, text: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        clip.logit_scale.clamp_(0, LOGIT_SCALE_MAX)
    if isinstance(loss, SigLipLoss):
        return loss(image, text, clip.logit_scale.exp(), clip.logit_bias)
    return loss(image, text, clip.logit_scale.exp())
