"""Map-style data sets over listings or in-memory arrays; every item is a dict."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import torch
from PIL import Image

from desktop_app.errors import PixfindError


def load_rgb(path) -> Image.Image:
    try:
        with Image.open(path.open() if hasattr(path, "member") else path) as im:
            return im.convert("RGB")
    except (OSError, ValueError) as e:
        raise PixfindError(f"{path}: cannot read image ({e})") from None


class ImageDataset(torch.utils.data.Dataset):
    """Images from paths or from a uint8 [N, H, W, 3] array, with optional labels and caption lists."""

    def __init__(self, images: Sequence | np.ndarray, transform: Callable, labels: Sequence[int] | None = None,
                 captions: Sequence[Sequence[str]] | None = None):
        self.images, self.transform = images, transform
        self.labels, self.captions = labels, captions

    def __len__(self) -> int:
        return len(self.images)

    def image(self, i: int) -> Image.Image:
        item = self.images[i]
        return Image.fromarray(item) if isinstance(item, np.ndarray) else load_rgb(item)

    def __getitem__(self, key: int | tuple[int, int]) -> dict:
        i, seed = key if isinstance(key, tuple) else (key, None)
        if seed is None:
            image = self.transform(self.image(i))
        else:
            # torchvision draws from the default CPU generator; seed it for this sample only.
            # (torch.manual_seed would also touch every accelerator, which is slow per sample.)
            saved = torch.default_generator.get_state()
            torch.default_generator.manual_seed(seed)
            try:
                image = self.transform(self.image(i))
            finally:
                torch.default_generator.set_state(saved)
        out = {"index": i, "image": image}
        if self.labels is not None:
            out["label"] = int(self.labels[i])
        if self.captions is not None:
            out["captions"] = list(self.captions[i])
        return out


def collate(items: list[dict]) -> dict:
    """Stack tensors and numbers; caption lists stay lists (each image has 0..k)."""
    out = {"index": torch.tensor([it["index"] for it in items])}
    if "image" in items[0]:
        out["image"] = torch.stack([it["image"] for it in items])
    if "label" in items[0]:
        out["label"] = torch.tensor([it["label"] for it in items])
    if "captions" in items[0]:
        out["captions"] = [it["captions"] for it in items]
    return out
