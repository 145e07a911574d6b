"""Checking a written pack against open_clip itself: the app's whole path vs the torch model."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image

from desktop_app.encoder import Encoder
from desktop_app.errors import PixfindError

from .pack_builder import min_cosine

# Worst per-sample cosine between the pack's embeddings and open_clip's, by precision.
# fp16 keeps ~3 significant digits per activation; over a ViT's depth that lands near 1e-4
# off, so 0.999 leaves a margin. Dynamic int8 (the image tower's) quantises every weight MatMul and its
# activations: random-weight ViTs stay above 0.999, but a trained transformer has outlier
# activations that cost more (all-MiniLM-L6-v2 with per-channel weights: worst 0.96, mean 0.99,
# benchmarks/int8_quality.py), so the export bound is 0.98 on the verification set.
MIN_COSINE = {"fp32": 0.9999, "fp16": 0.999, "int8": 0.98}
# The text tower's int8 is block-wise weight-only (onnx_export._quantise_text_int8), far closer to
# fp32: all-MiniLM-L6-v2's worst sentence of a few hundred stays at 0.9978 (mean 0.9996), and
# random-weight CLIP text towers (the tests' tiny one, ViT-B-32) at 0.9996 on the captions below.
# 0.995 allows twice MiniLM's worst error, and still fails a conversion gone wrong (dynamic int8: 0.96).
TEXT_MIN_COSINE = {**MIN_COSINE, "int8": 0.995}

CAPTIONS = [
    "a dog on a beach at sunset",
    "A photo of a CAT sleeping on a red sofa.",
    "two people hiking in the mountains, snow, blue sky",
    "",
    "   ",
    "the Eiffel tower at night 🌃✨",
    "東京の夜景",
    "un café au lait sur une table en bois",
    "birthday cake with 30 candles!!!",
    "a close-up of a bee on a sunflower",
    "it's a bird... it's a plane...",
    "&amp; html entities &lt;b&gt;",
    "x" * 20,
    " ".join(["a very long caption that goes on"] * 20),
    "street market in Marrakech, spices, lanterns",
    "Шахматная доска",
]


@dataclass
class Verification:
    visual_min_cosine: float
    textual_min_cosine: float
    bound: float  # the image tower's, from the pack's precision
    textual_bound: float  # from the text tower's precision
    images: int
    captions: int

    @property
    def passed(self) -> bool:
        return self.visual_min_cosine >= self.bound and self.textual_min_cosine >= self.textual_bound

    def bounds_text(self) -> str:
        if self.textual_bound == self.bound:
            return f"bound {self.bound}"
        return f"bounds {self.bound} image, {self.textual_bound} text"

    def as_dict(self) -> dict:
        return {
            "visual_min_cosine": round(self.visual_min_cosine, 7),
            "textual_min_cosine": round(self.textual_min_cosine, 7),
            "bound": self.bound,
            "textual_bound": self.textual_bound,
            "images": self.images,
            "captions": self.captions,
        }


def random_images(count: int = 8, seed: int = 0) -> list[Image.Image]:
    """Textured images of varied sizes and aspect ratios, so resizing and cropping are exercised."""
    rng = np.random.default_rng(seed)
    images = []
    for i in range(count):
        h, w = int(rng.integers(40, 700)), int(rng.integers(40, 700))
        yy, xx = np.mgrid[0:h, 0:w]
        base = np.stack([(xx * (i + 1)) % 256, (yy * 3) % 256, ((xx + yy) * 2) % 256], axis=-1)
        noise = rng.integers(-40, 40, size=(h, w, 3))
        images.append(Image.fromarray(np.clip(base + noise, 0, 255).astype(np.uint8), "RGB"))
    return images


def verify_pack(
    encoder: Encoder, model: torch.nn.Module, preprocess, tokenizer, precision: str, text_precision: str | None = None
) -> Verification:
    """Embed the same images and captions with open_clip and with the app's encoder of the pack;
    each tower is held to the bound of its precision (``text_precision`` None: the pack's)."""
    images = random_images()
    with torch.no_grad():
        ref_img = model.encode_image(torch.stack([preprocess(im) for im in images]), normalize=True).numpy()
        ref_txt = model.encode_text(tokenizer(CAPTIONS), normalize=True).numpy()
    got_img = encoder.encode_images(images)
    # In one batch (captions of every length padded together) and one by one (each cut to its own
    # length when the pack trims), as the app encodes an index's captions and a typed query.
    got_txt = encoder.encode_texts(CAPTIONS)
    got_single = np.concatenate([encoder.encode_texts([caption]) for caption in CAPTIONS])
    for kind, got in (("visual", got_img), ("textual", got_txt), ("textual", got_single)):
        if not np.isfinite(got).all():
            raise PixfindError(f"{encoder.pack_dir}: the {kind} tower produces NaN or infinite values")
    return Verification(
        visual_min_cosine=min_cosine(ref_img, got_img),
        textual_min_cosine=min(min_cosine(ref_txt, got_txt), min_cosine(ref_txt, got_single)),
        bound=MIN_COSINE[precision],
        textual_bound=TEXT_MIN_COSINE[text_precision or precision],
        images=len(images),
        captions=len(CAPTIONS),
    )
