"""The query language of pixfind, parsed here for the command line and the window alike.

The syntax follows rclip: terms are joined by `` + `` or `` - `` (spaces around the
sign), a term may start with a weight (``2:a dog``), and a term that names an image
file is an example image. ``"a beach + 2:./dog.jpg - people"`` is the sum of the
normalised vectors of "a beach" and twice dog.jpg, minus "people", normalised.
Plain words work too: "beach not people", "beach without people", "beach but not
people" and "beach no people" all mean "beach - people"; a query that starts with
"not" has no positive term and is refused.

Words in quotes (``"hornbach"``, ``“two words”``) or after ``text:`` (``text:hornbach``,
``text:"two words"``) are looked for in the text read in the photos, not given to the
image model: ``receipt "hornbach"`` is the photos whose text says hornbach, ranked by how
much they look like a receipt. Such a term is a condition, never a weight: every one must
be in the photo; ``-"word"`` (or one after ``-``/"not") leaves out the photos that have it.
"""

from __future__ import annotations

import math
import os
import re
import unicodedata
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from ..errors import PixfindError
from .scanner import is_photo_name

if TYPE_CHECKING:
    import numpy as np

MAX_WEIGHT = 100.0
MAX_TERMS = 64
MAX_QUERY_CHARS = 4000

_SPLIT = re.compile(r"\s+([+-])\s+")
_WEIGHT = re.compile(r"^\s*(\d+(?:\.\d*)?|\.\d+)\s*:(.*)$", re.DOTALL)
_NOT = re.compile(r"(?:^|\s+)(?:but\s+)?(?:not|without|no)\s+", re.IGNORECASE)
_PATH_START = ("/", "./", "../", "~", ".\\", "..\\")
# Text in the photo: "words", “words” (typographic quotes), text:word or text:"words"; an optional
# "-" right before it (or before its text:) leaves the photos with those words out.
_WRITTEN = re.compile(
    r'((?<!\S)-)?(?:(?<![^\s-])text:)?(?:"([^"]*)(?:"|$)|“([^”]*)(?:”|$))|((?<!\S)-)?(?<![^\s-])text:([^\s"“]+)', re.IGNORECASE
)
_PLACEHOLDER = re.compile(r"(-?)\x00(\d+)\x00")  # a written term's place in the query while it is split


@dataclass(frozen=True)
class Term:
    kind: str  # "text" (for the image model), "image" (an example image) or "written" (text in the photo)
    value: str
    weight: float = 1.0  # negative: subtract ("written": leave out the photos with this text)


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
    parts = _SPLIT.split(" " + natural(query.strip()) + " ")
    out = [(1.0, parts[0])] if parts[0].strip() else []
    out += [(1.0 if op == "+" else -1.0, raw) for op, raw in zip(parts[1::2], parts[2::2])]
    return out


def _set_aside_written(query: str) -> tuple[str, list[str]]:
    """The query with each text-in-the-photo term replaced by a placeholder, and those terms' words.
    An opening quote with no closing one runs to the end (a query being typed)."""
    words: list[str] = []

    def placeholder(m: re.Match) -> str:
        sign = m.group(1) or m.group(4) or ""
        words.append(next(g for g in m.group(2, 3, 5) if g is not None))
        return f" {sign}\x00{len(words) - 1}\x00 "

    return _WRITTEN.sub(placeholder, query), words


def _written_term(words: str, sign: float) -> Term:
    value = " ".join(words.split())
    if not re.search(r"[^\W_]", unicodedata.normalize("NFKC", value)):  # what the full-text index calls a word
        raise PixfindError(f"{words!r}: no letters or digits to look for in the photos' text")
    return Term("written", value, sign)


def _query_terms(query: str) -> list[tuple[float, str, bool] | Term]:
    """The query's terms: model terms as (sign, text, False) for :func:`_term`, text in the photo as Terms."""
    stripped = query.strip()
    if os.path.isfile(os.path.expanduser(stripped)):  # one path, even with " - ", " not " or quotes in its name
        return [(1.0, stripped, False)]
    marked, words = _set_aside_written(query)
    out: list[tuple[float, str, bool] | Term] = []
    for sign, raw in _split(marked):
        for m in _PLACEHOLDER.finditer(raw):
            if words[int(m.group(2))].strip():  # "" looks for nothing
                out.append(_written_term(words[int(m.group(2))], -sign if m.group(1) else sign))
        rest = _PLACEHOLDER.sub(" ", raw)
        weight = _WEIGHT.match(rest)
        if rest.strip() and not (weight and not weight.group(2).strip() and len(rest) < len(raw)):
            out.append((sign, rest, False))  # (a weight left alone by its written term is dropped)
    return out


def parse(query: str | None = None, images=(), add=(), subtract=()) -> list[Term]:
    """Terms from a query string plus example images and extra terms to add or subtract."""
    if query and len(query) > MAX_QUERY_CHARS:
        raise PixfindError(f"the query is {len(query)} characters long; at most {MAX_QUERY_CHARS} are allowed")
    raw: list[tuple[float, str, bool] | Term] = []
    if any("\x00" in text for text in (query or "", *images, *add, *subtract)):
        raise PixfindError("a query cannot contain a NUL character")
    if query and query.strip():
        raw += _query_terms(query)
    raw += [(1.0, p, True) for p in images]
    raw += [(1.0, t, False) for t in add]
    raw += [(-1.0, t, False) for t in subtract]
    if len(raw) > MAX_TERMS:
        raise PixfindError(f"the query has {len(raw)} terms; at most {MAX_TERMS} are allowed")
    terms = [r if isinstance(r, Term) else _term(r[1], r[0], force_image=r[2]) for r in raw]
    if not terms:
        raise PixfindError("nothing to search for: give a text query or --image PATH")
    if not any(t.weight > 0 for t in terms):
        raise PixfindError("a query needs at least one positive term")
    return terms


def balance(terms: list[Term], images_share: float) -> list[Term]:
    """Weigh example images against words: 0 only the words count, 1 only the images, 0.5 as given.

    Applies only when the query has both; the extremes are clamped so that neither side vanishes.
    """
    kinds = {t.kind for t in terms} - {"written"}
    if kinds != {"text", "image"}:
        return terms
    b = min(max(images_share, 0.02), 0.98)
    share = {"image": b, "text": 1 - b}
    return [replace(t, weight=t.weight * 2 * share[t.kind]) if t.kind in share else t for t in terms]


def written(terms: list[Term]) -> tuple[list[str], list[str]]:
    """(words the photo's text must have, words it must not have): one entry per term."""
    return [t.value for t in terms if t.kind == "written" and t.weight > 0], [
        t.value for t in terms if t.kind == "written" and t.weight < 0
    ]


def for_model(terms: list[Term]) -> list[Term]:
    """The terms the image model ranks by (words and example images)."""
    return [t for t in terms if t.kind != "written"]


def combine(terms: list[Term], embed_texts, embed_images) -> np.ndarray:
    """The normalised weighted sum of the terms' normalised embeddings (text in the photo aside)."""
    import numpy as np  # here, not at the top: parsing a query must not wait for NumPy (a cold search parses first)

    terms = for_model(terms)
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
