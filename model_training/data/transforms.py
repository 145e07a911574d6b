"""Image transforms: the authors' training augmentation and open_clip's own eval preprocessing."""

from __future__ import annotations

import open_clip
from torchvision import transforms as T


def train_transform(model, resize_ratio: float = 1.125, hflip: bool = True, color_jitter: float = 0.4):
    """Resize to ``resize_ratio`` x input size (bicubic), random crop, flip, colour jitter (no hue)."""
    cfg = open_clip.get_model_preprocess_cfg(model)
    size = cfg["size"] if isinstance(cfg["size"], int) else cfg["size"][0]
    steps = [T.Resize(round(size * resize_ratio), interpolation=T.InterpolationMode.BICUBIC), T.RandomCrop(size)]
    if hflip:
        steps.append(T.RandomHorizontalFlip())
    if color_jitter:
        steps.append(T.ColorJitter(color_jitter, color_jitter, color_jitter))
    steps += [T.ToTensor(), T.Normalize(cfg["mean"], cfg["std"])]
    return T.Compose(steps)


def eval_transform(model):
    from ..open_clip_models import eval_transform as open_clip_eval

    return open_clip_eval(model)
