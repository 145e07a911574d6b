"""One interface for scoring: a torch open_clip model, or an exported pack run by the app's Encoder."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from ..data.datasets import load_rgb


class TorchEmbedder:
    """encode_images / encode_texts -> L2-normalised float32 numpy, with open_clip's own preprocessing."""

    def __init__(self, model: torch.nn.Module, tokenizer, preprocess=None, device: str | torch.device = "cpu", batch_size: int = 256):
        from ..open_clip_models import eval_transform

        self.model, self.tokenizer, self.device, self.batch_size = model, tokenizer, torch.device(device), batch_size
        self.preprocess = preprocess or eval_transform(model)

    @torch.no_grad()
    def encode_images(self, images: Sequence) -> np.ndarray:
        was_training = self.model.training
        self.model.eval()
        out = []
        for s in range(0, len(images), self.batch_size):
            chunk = [im if isinstance(im, Image.Image) else Image.fromarray(im) if isinstance(im, np.ndarray) else load_rgb(im)
                     for im in images[s:s + self.batch_size]]
            pixels = torch.stack([self.preprocess(im) for im in chunk]).to(self.device)
            out.append(F.normalize(self.model.encode_image(pixels).float(), dim=-1).cpu())
        self.model.train(was_training)
        return torch.cat(out).numpy() if out else np.zeros((0, 0), np.float32)

    @torch.no_grad()
    def encode_texts(self, texts: Sequence[str]) -> np.ndarray:
        was_training = self.model.training
        self.model.eval()
        out = []
        for s in range(0, len(texts), self.batch_size):
            tokens = self.tokenizer(list(texts[s:s + self.batch_size])).to(self.device)
            out.append(F.normalize(self.model.encode_text(tokens).float(), dim=-1).cpu())
        self.model.train(was_training)
        return torch.cat(out).numpy()


class PackEmbedder:
    """An exported model pack through desktop_app.encoder.Encoder: scores exactly what the app runs."""

    def __init__(self, pack_dir, batch_size: int = 64):
        from desktop_app.encoder import Encoder

        self.encoder, self.batch_size = Encoder(pack_dir), batch_size

    def encode_images(self, images: Sequence) -> np.ndarray:
        items = [Image.fromarray(im) if isinstance(im, np.ndarray) else im for im in images]
        return np.asarray(self.encoder.encode_images(items, batch_size=self.batch_size), np.float32)

    def encode_texts(self, texts: Sequence[str]) -> np.ndarray:
        return np.asarray(self.encoder.encode_texts(list(texts)), np.float32)


def zero_shot_classifier(embedder, class_names: Sequence[str], templates: Sequence) -> np.ndarray:
    """Per class: mean of the normalised embeddings of every template, renormalised (Radford et al.)."""
    rows = []
    for name in class_names:
        prompts = [t(name) if callable(t) else t.format(name) for t in templates]
        mean = embedder.encode_texts(prompts).mean(axis=0)
        rows.append(mean / np.linalg.norm(mean))
    return np.stack(rows).astype(np.float32)


def openai_templates():
    """The 80 prompt templates of the CLIP paper's ImageNet evaluation."""
    from open_clip import OPENAI_IMAGENET_TEMPLATES

    return list(OPENAI_IMAGENET_TEMPLATES)
