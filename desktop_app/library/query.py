"""Combined queries: several text or image terms, each added or subtracted with a weight.

The syntax follows rclip: terms are joined by `` + `` or `` - `` (spaces around the
sign), a term may start with a weight (``2:a dog``), and a term that names an existing
image file is an example image. ``"a beach + 2:./dog.jpg - people"`` is the sum of
the normalised vectors of "a beach" and twice dog.jpg, minus "people", normalised.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass

import numpy as np

from ..errors import PixfindError
from .scanner import is_photo_name

_SPLIT = re.compile(r"\s+([+-])\s+")
_WEIGHT = re.compile(r"^\s*(\d+(?:\.\d*)?|\.\d+)\s*:(.*)$", re.S)


@dataclass(frozen=True)
class Term:
    kind: str  # "text" or "image"
    value: str
    weight: float = 1.0  # negative: subtract


def _term(raw: str, sign: float, force_image: bool = False) -> Term:
    weight, text = 1.0, raw.strip()
    m = _WEIGHT.match(text)
    if m:
        weight, text = float(m.group(1)), m.group(2).strip()
    if not text:
        raise PixfindError(f"empty query term in {raw!r}")
    path = os.path.expanduser(text)
    if force_image or (is_photo_name(path) and os.path.exists(path)):
        if not os.path.isfile(path):
            raise PixfindError(f"{text}: no such image file")
        return Term("image", path, sign * weight)
    return Term("text", text, sign * weight)


def parse(query: str | None = None, images=(), add=(), subtract=()) -> list[Term]:
    """Terms from a query string plus --image / --add / --subtract options."""
    terms: list[Term] = []
    if query and query.strip():
        parts = _SPLIT.split(" " + query.strip())
        sign = 1.0
        first = parts[0].strip()
        if first:
            terms.append(_term(first, sign))
        for op, raw in zip(parts[1::2], parts[2::2]):
            terms.append(_term(raw, 1.0 if op == "+" else -1.0))
    terms += [_term(p, 1.0, force_image=True) for p in images]
    terms += [_term(t, 1.0) for t in add]
    terms += [_term(t, -1.0) for t in subtract]
    if not terms:
        raise PixfindError("nothing to search for: give a text query or --image PATH")
    if not any(t.weight > 0 for t in terms):
        raise PixfindError("a query needs at least one positive term")
    return terms


def combine(terms: list[Term], embed_texts, embed_images) -> np.ndarray:
    """The normalised weighted sum of the terms' normalised embeddings."""
    texts = [t for t in terms if t.kind == "text"]
    images = [t for t in terms if t.kind == "image"]
    parts = []
    if texts:
        parts.append((np.asarray([t.weight for t in texts])[:, None] * embed_texts([t.value for t in texts])).sum(0))
    if images:
        parts.append((np.asarray([t.weight for t in images])[:, None] * embed_images([t.value for t in images])).sum(0))
    vector = np.sum(parts, axis=0).astype(np.float32)
    norm = float(np.linalg.norm(vector))
    if norm < 1e-6:
        raise PixfindError("the query terms cancel each other out")
    return vector / norm
