"""The query language of pixfind, parsed here for the command line and the window alike.

The syntax follows rclip: terms are joined by `` + `` or `` - `` (spaces around the
sign), a term may start with a weight (``2:a dog``), and a term that names an image
file is an example image. ``"a beach + 2:./dog.jpg - people"`` is the sum of the
normalised vectors of "a beach" and twice dog.jpg, minus "people", normalised.
Plain words work too: "beach not people", "beach without people", "beach but not
people" and "beach no people" all mean "beach - people"; a query that starts with
"not" has no positive term and is refused.
"""

from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass, replace

import numpy as np

from ..errors import PixfindError
from .scanner import is_photo_name

MAX_WEIGHT = 100.0
MAX_TERMS = 64
MAX_QUERY_CHARS = 4000

_SPLIT = re.compile(r"\s+([+-])\s+")
_WEIGHT = re.compile(r"^\s*(\d+(?:\.\d*)?|\.\d+)\s*:(.*)$", re.DOTALL)
_NOT = re.compile(r"(?:^|\s+)(?:but\s+)?(?:not|without|no)\s+", re.IGNORECASE)
_PATH_START = ("/", "./", "../", "~", ".\\", "..\\")


@dataclass(frozen=True)
class Term:
    kind: str  # "text" or "image"
    value: str
    weight: float = 1.0  # negative: subtract


def _weight(raw: str, number: str) -> float:
    weight = float(number)
    if not (math.isfinite(weight) and 0 < weight <= MAX_WEIGHT):
        shown = number if len(number) <= 12 else number[:12] + "…"
        raise PixfindError(f"weight {shown} in {raw.strip()[:60]!r}: a weight must be above 0 and at most {MAX_WEIGHT:g}")
    return weight


def _path_like(text: str) -> bool:
    return is_photo_name(text) or text.startswith(_PATH_START) or (len(text) > 2 and text[1] == ":" and text[2] in "/\\")


def _term(raw: str, sign: float, force_image: bool = False) -> Term:
    weight, text = 1.0, raw.strip()
    m = _WEIGHT.match(text)
    if m:
        weight, text = _weight(raw, m.group(1)), m.group(2).strip()
    if not text:
        raise PixfindError(f"empty query term in {raw[:60]!r}")
    path = os.path.expanduser(text)
    if force_image or _path_like(text):
        if not os.path.exists(path):
            raise PixfindError(f"{text}: no such image file")
        if not os.path.isfile(path):
            raise PixfindError(f"{text}: not an image file")
        return Term("image", path, sign * weight)
    return Term("text", text, sign * weight)


def natural(text: str) -> str:
    """"beach not people" -> "beach - people"; "not a rocket" -> "- a rocket"."""
    return _NOT.sub(" - ", text.strip()).strip()


def _split(query: str) -> list[tuple[float, str]]:
    stripped = query.strip()
    if os.path.isfile(os.path.expanduser(stripped)):  # one path, even with " - " or " not " in its name
        return [(1.0, stripped)]
    parts = _SPLIT.split(" " + natural(stripped) + " ")
    out = [(1.0, parts[0])] if parts[0].strip() else []
    out += [(1.0 if op == "+" else -1.0, raw) for op, raw in zip(parts[1::2], parts[2::2])]
    return out


def parse(query: str | None = None, images=(), add=(), subtract=()) -> list[Term]:
    """Terms from a query string plus example images and extra terms to add or subtract."""
    if query and len(query) > MAX_QUERY_CHARS:
        raise PixfindError(f"the query is {len(query)} characters long; at most {MAX_QUERY_CHARS} are allowed")
    raw: list[tuple[float, str, bool]] = []
    if any("\x00" in text for text in (query or "", *images, *add, *subtract)):
        raise PixfindError("a query cannot contain a NUL character")
    if query and query.strip():
        raw += [(sign, text, False) for sign, text in _split(query)]
    raw += [(1.0, p, True) for p in images]
    raw += [(1.0, t, False) for t in add]
    raw += [(-1.0, t, False) for t in subtract]
    if len(raw) > MAX_TERMS:
        raise PixfindError(f"the query has {len(raw)} terms; at most {MAX_TERMS} are allowed")
    terms = [_term(text, sign, force_image=image) for sign, text, image in raw]
    if not terms:
        raise PixfindError("nothing to search for: give a text query or --image PATH")
    if not any(t.weight > 0 for t in terms):
        raise PixfindError("a query needs at least one positive term")
    return terms


def balance(terms: list[Term], images_share: float) -> list[Term]:
    """Weigh example images against words: 0 only the words count, 1 only the images, 0.5 as given.

    Applies only when the query has both; the extremes are clamped so that neither side vanishes.
    """
    kinds = {t.kind for t in terms}
    if kinds != {"text", "image"}:
        return terms
    b = min(max(images_share, 0.02), 0.98)
    return [replace(t, weight=t.weight * 2 * (b if t.kind == "image" else 1 - b)) for t in terms]


def combine(terms: list[Term], embed_texts, embed_images) -> np.ndarray:
    """The normalised weighted sum of the terms' normalised embeddings."""
    texts = [t for t in terms if t.kind == "text"]
    images = [t for t in terms if t.kind == "image"]
    parts = []
    if texts:
        parts.append((np.asarray([t.weight for t in texts])[:, None] * embed_texts([t.value for t in texts])).sum(0))
    if images:
        parts.append((np.asarray([t.weight for t in images])[:, None] * embed_images([t.value for t in images])).sum(0))
    with np.errstate(over="ignore", invalid="ignore"):
        vector = np.sum(parts, axis=0).astype(np.float32)
        norm = float(np.linalg.norm(vector))
    if not math.isfinite(norm):
        raise PixfindError("the query's weights are too large to combine")
    if norm < 1e-6:
        raise PixfindError("the query terms cancel each other out")
    return vector / norm
