"""Losses of MCIP: ArcFace over class proxies, multi-caption ArcFace, CLIP InfoNCE, SigLIP sigmoid."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from .distributed import all_gather_with_grad


def arc_margin_logits(cosine: torch.Tensor, positives: torch.Tensor, scale: float, margin: float) -> torch.Tensor:
    """s * cos(theta + m) at the positives, s * cos(theta) elsewhere (ArcFace, Deng et al. 2019).

    Past theta = pi - m, cos(theta + m) would turn back up, so the authors (like insightface) fall back
    to the monotone cos(theta) - m * sin(m).
    """
    cosine = cosine.float()
    sine = torch.sqrt((1.0 - cosine.pow(2)).clamp(0, 1))
    phi = cosine * math.cos(margin) - sine * math.sin(margin)
    phi = torch.where(cosine > math.cos(math.pi - margin), phi, cosine - math.sin(math.pi - margin) * margin)
    return scale * torch.where(positives, phi, cosine)


class ArcFaceLoss(nn.Module):
    """Softmax cross-entropy over one learnable proxy per class with an additive angular margin."""

    def __init__(self, num_classes: int, dim: int, scale: float = 30.0, margin: float = 0.1):
        super().__init__()
        self.proxies = nn.Parameter(torch.empty(num_classes, dim))
        nn.init.xavier_uniform_(self.proxies)
        self.scale, self.margin = scale, margin

    def forward(self, features: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        cosine = F.normalize(features, dim=-1) @ F.normalize(self.proxies, dim=-1).t()
        positives = F.one_hot(labels, cosine.shape[1]).bool()
        return F.cross_entropy(arc_margin_logits(cosine, positives, self.scale, self.margin), labels)


class MultiCaptionArcFaceLoss(nn.Module):
    """MCIP's caption term: every caption in the batch is a class; an image's own captions are its positives.

    ``positives[i, j]`` says caption j belongs to image i (a caption may belong to several images when
    identical texts are merged, see MCIPFineTune). The target is uniform over the image's own captions,
    plus ``hard_weight`` times the largest -log p over its negatives, as in the authors'
    TextSoftTargetCrossEntropy. Two deliberate differences from their code (MCIP.md): the max runs over
    negatives only (theirs multiplies by 1 - soft target, which lets positives of multi-caption rows in),
    and an image without captions contributes exactly 0 (theirs adds the max term); both still count in
    the batch mean.
    """

    def __init__(self, scale: float = 30.0, margin: float = 0.1, hard_weight: float = 0.1):
        super().__init__()
        self.scale, self.margin, self.hard_weight = scale, margin, hard_weight

    def forward(self, image_features: torch.Tensor, caption_features: torch.Tensor, positives: torch.Tensor) -> torch.Tensor:
        if caption_features.shape[0] == 0:
            return image_features.sum() * 0.0
        positives = positives.bool()
        cosine = F.normalize(image_features, dim=-1) @ F.normalize(caption_features, dim=-1).t()
        log_p = F.log_softmax(arc_margin_logits(cosine, positives, self.scale, self.margin), dim=-1)
        counts = positives.sum(dim=1)
        soft_ce = -(log_p * positives).sum(dim=1) / counts.clamp(min=1)
        neg_nll = (-log_p).masked_fill(positives, float("-inf")).amax(dim=1)
        neg_nll = torch.where(torch.isfinite(neg_nll), neg_nll, torch.zeros_like(neg_nll))
        per_image = torch.where(counts > 0, soft_ce + self.hard_weight * neg_nll, torch.zeros_like(soft_ce))
        return per_image.mean()


def positives_from_owner(caption_owner: torch.Tensor, batch: int) -> torch.Tensor:
    """[batch, captions] mask from the batch row each caption belongs to."""
    return caption_owner.unsqueeze(0) == torch.arange(batch, device=caption_owner.device).unsqueeze(1)


class MCIPLoss(nn.Module):
    """0.75 * ArcFace(class proxies) + 0.25 * multi-caption ArcFace (frozen text tower features)."""

    def __init__(self, num_classes: int, dim: int, scale: float = 30.0, margin: float = 0.1,
                 class_weight: float = 0.75, caption_weight: float = 0.25, hard_weight: float = 0.1):
        super().__init__()
        self.arcface = ArcFaceLoss(num_classes, dim, scale, margin)
        self.captions = MultiCaptionArcFaceLoss(scale, margin, hard_weight)
        self.class_weight, self.caption_weight = class_weight, caption_weight

    def forward(self, image_features, labels, caption_features, caption_positives) -> dict[str, torch.Tensor]:
        class_loss = self.arcface(image_features, labels)
        caption_loss = self.captions(image_features, caption_features, caption_positives)
        total = self.class_weight * class_loss + self.caption_weight * caption_loss
        return {"loss": total, "class_loss": class_loss.detach(), "caption_loss": caption_loss.detach()}


class ClipLoss(nn.Module):
    """Symmetric InfoNCE over the global batch: features of every process are gathered (with gradient)."""

    def forward(self, image_features: torch.Tensor, text_features: torch.Tensor, logit_scale: torch.Tensor) -> torch.Tensor:
        image_features = all_gather_with_grad(image_features)
        text_features = all_gather_with_grad(text_features)
        logits = logit_scale * image_features @ text_features.t()
        targets = torch.arange(logits.shape[0], device=logits.device)
        return (F.cross_entropy(logits, targets) + F.cross_entropy(logits.t(), targets)) / 2


class SigLipLoss(nn.Module):
    """Pairwise sigmoid loss (Zhai et al. 2023): -mean over images of sum_j log sigmoid(z_ij (t x_i.y_j + b)).

    Computed on the gathered global batch, which equals the paper's ring exchange in value.
    """

    def forward(self, image_features, text_features, logit_scale, logit_bias) -> torch.Tensor:
        image_features = all_gather_with_grad(image_features)
        text_features = all_gather_with_grad(text_features)
        logits = logit_scale * image_features @ text_features.t() + logit_bias
        signs = 2 * torch.eye(logits.shape[0], device=logits.device, dtype=logits.dtype) - 1
        return -F.logsigmoid(signs * logits).sum() / logits.shape[0]
