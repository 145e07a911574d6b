"""Per-model calibration: what a similarity score means for this model.

Scores of different models live on different scales (one scores a matching caption 0.30, another
0.80), so fixed thresholds are wrong for most of them. A pack is calibrated once, when it is built
or installed, on the photos bundled in ``desktop_app/resources/sample-photos`` (package data, so a wheel
and the bundle carry them):

- **duplicates**: each photo against augmented copies of itself (resized, recompressed, cropped to
  90 %, slightly rotated, brightened) versus against the other photos and their copies;
- **matches**: each photo against its honest captions (``captions.json``) versus the captions of
  the other photos.

The result is a small dict, recorded in pack.json's ``calibration`` (see :mod:`desktop_app.pack`),
or for a pack built before calibration existed, in a sidecar file beside it
(:data:`SIDECAR`), computed on first use. ``reliable`` says whether the model separates the two
sides at all: a random-weight model does not, and its thresholds mean nothing.

Also here: the perceptual check that near-duplicates must pass whatever the model says
(:func:`perceptual_signature`, :func:`same_picture`).
"""

from __future__ import annotations

import functools
import io
import json
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # NumPy and Pillow load only when something is measured: pack.json checks need neither
    import numpy as np
    from PIL import Image

SAMPLE_DIR = Path(__file__).resolve().parent / "resources" / "sample-photos"
CAPTIONS_FILE = "captions.json"
SIDECAR = ".pixfind-calibration.json"
METHOD = "sample-photos-augmented-v1"
VERSION = 1

# The perceptual check: 64-bit DCT hashes (imagehash.phash) of the whole picture and of its middle
# 90 %, so a copy cropped to 90 % still matches; the distance is the least Hamming distance of
# whole/whole, middle/whole and whole/middle. Measured on the 45 augmented copies of the sample
# photos (resized, recompressed, brightened: 0-2; cropped to 90 %: 0-4; rotated 2 degrees: up to 8)
# against 38 distinct photos and textures from scikit-image (16 at the least, mostly 20 and more).
HASH_LOOSE = 12  # beyond it two files do not show the same picture, whatever the model says
HASH_STRICT = 6  # within it (and the same aspect ratio) a copy is certain enough to pre-mark
ASPECT_TOLERANCE = 0.04  # relative difference of width/height allowed between copies
CALIBRATION_SIDE = 512  # sample photos are decoded at most this large


# ------------------------------------------------------------------ perceptual check


@dataclass(frozen=True)
class Signature:
    """A model-independent description of a picture: perceptual hashes and aspect ratio."""

    phash: int  # the whole picture
    inner: int  # its middle 90 %
    aspect: float  # width / height


def _phash(image: Image.Image) -> int:
    import imagehash

    value = 0
    for bit in imagehash.phash(image, hash_size=8).hash.flatten():
        value = (value << 1) | int(bit)
    return value


def perceptual_signature(image: Image.Image) -> Signature:
    gray = image.convert("L")
    w, h = gray.size
    cw, ch = max(1, int(w * 0.9)), max(1, int(h * 0.9))
    left, top = (w - cw) // 2, (h - ch) // 2
    return Signature(_phash(gray), _phash(gray.crop((left, top, left + cw, top + ch))), w / max(1, h))


def hash_distance(a: Signature, b: Signature) -> int:
    return min((a.phash ^ b.phash).bit_count(), (a.inner ^ b.phash).bit_count(), (a.phash ^ b.inner).bit_count())


def aspect_close(a: float, b: float, tolerance: float = ASPECT_TOLERANCE) -> bool:
    """Whether two aspect ratios are the same picture's (a rotated photo counts: 3:2 and 2:3 are not)."""
    return abs(a - b) <= tolerance * max(a, b)


def same_picture(a: Signature, b: Signature, strict: bool = False) -> bool:
    """The model-independent check: two files show the same picture (perceptual hash + aspect ratio)."""
    limit = HASH_STRICT if strict else HASH_LOOSE
    return hash_distance(a, b) <= limit and aspect_close(a.aspect, b.aspect, ASPECT_TOLERANCE / 4 if strict else ASPECT_TOLERANCE)


# ------------------------------------------------------------------ augmented copies


def augmented_copies(image: Image.Image) -> list[tuple[str, Image.Image]]:
    """Near-duplicates of a photo as a library holds them: what each copy went through."""
    from PIL import Image, ImageEnhance

    w, h = image.size
    out = []
    out.append(("resized", image.resize((max(1, w // 2), max(1, h // 2)), Image.Resampling.BILINEAR)))
    buf = io.BytesIO()
    image.save(buf, "JPEG", quality=35)
    buf.seek(0)
    out.append(("recompressed", Image.open(buf).convert("RGB")))
    cw, ch = int(w * 0.9), int(h * 0.9)
    left, top = (w - cw) // 2, (h - ch) // 2
    out.append(("cropped", image.crop((left, top, left + cw, top + ch))))
    out.append(("rotated", image.rotate(2, resample=Image.Resampling.BICUBIC, expand=False)))
    out.append(("brightened", ImageEnhance.Brightness(image).enhance(1.25)))
    return out


@functools.lru_cache(maxsize=2)
def _sample_set(folder: str) -> tuple[tuple[str, ...], tuple[Image.Image, ...], tuple[tuple[int, str, Image.Image], ...]]:
    """(photo names, originals, (photo index, augmentation, copy)) of the sample photos; cached per process."""
    from PIL import Image

    names, originals, copies = [], [], []
    for path in sorted(Path(folder).glob("*.jpg")):
        with Image.open(path) as im:
            im.draft("RGB", (CALIBRATION_SIDE, CALIBRATION_SIDE))
            image = im.convert("RGB")
        image.thumbnail((CALIBRATION_SIDE, CALIBRATION_SIDE))
        names.append(path.stem)
        originals.append(image)
        for kind, copy in augmented_copies(image):
            copies.append((len(names) - 1, kind, copy))
    return tuple(names), tuple(originals), tuple(copies)


def sample_captions(folder: Path = SAMPLE_DIR) -> dict[str, list[str]]:
    """photo name (file stem) -> honest captions of it."""
    path = Path(folder) / CAPTIONS_FILE
    data = json.loads(path.read_text(encoding="utf-8"))
    return {str(k): [str(c) for c in v] for k, v in data["captions"].items()}


# ------------------------------------------------------------------ calibrating


def _best_split(pos: np.ndarray, neg: np.ndarray) -> float:
    """The score that best separates pos (above) from neg (below): Youden's J, midpoint of the best gap."""
    import numpy as np

    values = np.unique(np.concatenate([pos, neg]))
    best, best_j = float(values[0]), -1.0
    for lo, hi in zip(values[:-1], values[1:]):
        t = (lo + hi) / 2
        j = float((pos >= t).mean() - (neg >= t).mean())
        if j > best_j + 1e-12:
            best, best_j = t, j
    return best


def _auc(pos: np.ndarray, neg: np.ndarray) -> float:
    greater = (pos[:, None] > neg[None, :]).mean()
    ties = (pos[:, None] == neg[None, :]).mean()
    return float(greater + 0.5 * ties)


def calibrate(encoder, folder: Path = SAMPLE_DIR) -> dict[str, Any]:
    """Measure the duplicate and match thresholds of ``encoder`` (an :class:`~desktop_app.encoder.Encoder`)."""
    import numpy as np

    names, originals, copies = _sample_set(str(folder))
    if len(names) < 3:
        raise FileNotFoundError(f"{folder}: too few sample photos to calibrate a model")
    images = list(originals) + [c for _, _, c in copies]
    owner = np.array(list(range(len(originals))) + [i for i, _, _ in copies])
    emb = encoder.encode_images(images)
    sims = emb @ emb.T
    n = len(originals)
    # duplicates: an original against its own copies, versus any two pictures of different photos
    dup_pos = np.array([sims[i, n + k] for k, (i, _, _) in enumerate(copies)])
    rows, cols = np.triu_indices(len(images), 1)
    dup_neg = sims[rows, cols][owner[rows] != owner[cols]]
    dup_low = float(np.quantile(dup_pos, 0.1))
    neg_high = float(dup_neg.max())
    dup_auc = _auc(dup_pos, dup_neg)
    dup_reliable = dup_low > neg_high
    if dup_reliable:
        # Above every distinct pair, and low enough to take nine copies in ten: a third of the
        # way up from the closest distinct pair, so photos of one scene stay apart.
        duplicate = neg_high + (dup_low - neg_high) / 3
    else:
        duplicate = float(np.quantile(dup_pos, 0.5))
    # matches: a photo against its own captions, versus the captions of the other photos
    captions = sample_captions(folder)
    texts, text_owner = [], []
    for i, name in enumerate(names):
        for caption in captions.get(name, []):
            texts.append(caption)
            text_owner.append(i)
    if not texts:
        raise FileNotFoundError(f"{folder / CAPTIONS_FILE}: no captions for the sample photos")
    text_emb = encoder.encode_texts(texts)
    scores = text_emb @ emb[:n].T
    mask = np.zeros_like(scores, dtype=bool)
    mask[np.arange(len(texts)), np.array(text_owner)] = True
    match_pos, match_neg = scores[mask], scores[~mask]
    match_auc = _auc(match_pos, match_neg)
    separation = float(match_pos.mean() - match_neg.mean())
    match_reliable = match_auc >= MATCH_AUC_FLOOR and separation > 1e-3
    match = _best_split(match_pos, match_neg)
    return {
        "duplicate_threshold": round(float(duplicate), 4),
        "duplicate_copies_low": round(dup_low, 4),
        "duplicate_distinct_high": round(neg_high, 4),
        "duplicate_auc": round(dup_auc, 4),
        "duplicate_reliable": bool(dup_reliable),
        "match_threshold": round(float(match), 4),
        "match_mean": round(float(match_pos.mean()), 4),
        "non_match_mean": round(float(match_neg.mean()), 4),
        "match_auc": round(match_auc, 4),
        "match_reliable": bool(match_reliable),
        "score_low": round(float(np.quantile(match_neg, 0.05)), 4),
        "score_high": round(float(match_pos.max()), 4),
        "photos": n,
        "captions": len(texts),
        "method": METHOD,
        "version": VERSION,
    }


# ------------------------------------------------------------------ reading and storing

_NUMBERS = (
    "duplicate_threshold",
    "duplicate_copies_low",
    "duplicate_distinct_high",
    "duplicate_auc",
    "match_threshold",
    "match_mean",
    "non_match_mean",
    "match_auc",
    "score_low",
    "score_high",
)
_FLAGS = ("duplicate_reliable", "match_reliable")
_COUNTS = ("photos", "captions", "version")
REQUIRED = ("duplicate_threshold", "match_threshold", "non_match_mean", "method", "version")


def check(data: Any) -> list[str]:
    """Every way ``data`` breaks the calibration schema (the ``calibration`` object of pack.json)."""
    if not isinstance(data, dict):
        return ["calibration is not a JSON object"]
    problems = []
    if not data:
        return problems  # an uncalibrated pack
    for key in REQUIRED:
        if key not in data:
            problems.append(f"calibration field {key!r} is missing")
    for key, value in data.items():
        if key in _NUMBERS:
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or not -1.0 <= value <= 1.0:
                problems.append(f"calibration {key} is not a number in -1..1")
        elif key in _FLAGS:
            if not isinstance(value, bool):
                problems.append(f"calibration {key} is not true or false")
        elif key in _COUNTS:
            if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < 1 << 31:
                problems.append(f"calibration {key} is not a non-negative whole number")
        elif key == "method":
            if not isinstance(value, str) or len(value) > 128:
                problems.append("calibration method is not a short string")
        else:
            problems.append(f"calibration has unknown field {key!r}")
    return problems


def _pack_identity(manifest) -> dict[str, str]:
    return {k: v for k, v in manifest.files.items() if k.endswith(".onnx") or k == manifest.text.tokenizer_file}


def read_sidecar(pack_dir: Path, manifest) -> dict | None:
    """The calibration stored beside a pack calibrated on first use, when it is for these very files."""
    try:
        raw = (Path(pack_dir) / SIDECAR).read_bytes()
        if len(raw) > 1 << 16:
            return None
        data = json.loads(raw.decode("utf-8"))
    except (OSError, ValueError, RecursionError):
        return None
    if not isinstance(data, dict) or data.get("files") != _pack_identity(manifest):
        return None
    calibration = data.get("calibration")
    if not calibration or check(calibration):
        return None
    return calibration


def write_sidecar(pack_dir: Path, manifest, calibration: dict) -> Path:
    path = Path(pack_dir) / SIDECAR
    tmp = path.with_name(f"{SIDECAR}.{os.getpid()}.tmp")
    try:
        tmp.write_text(json.dumps({"files": _pack_identity(manifest), "calibration": calibration}, indent=1) + "\n", encoding="utf-8")
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def stored(pack_dir: Path, manifest) -> dict | None:
    """The pack's calibration: pack.json's, else the sidecar's; None when it has none yet."""
    if manifest.calibration:
        return dict(manifest.calibration)
    return read_sidecar(pack_dir, manifest)


def ensure(pack_dir: Path, manifest, encoder=None) -> dict | None:
    """The pack's calibration, measured now (and kept in the sidecar) when it has none.

    None when it cannot be measured (the sample photos are not installed)."""
    found = stored(pack_dir, manifest)
    if found is not None:
        return found
    if encoder is None:
        from .encoder import Encoder

        encoder = Encoder(pack_dir, providers=["CPUExecutionProvider"], verify=None)
    try:
        calibration = calibrate(encoder)
    except (FileNotFoundError, ValueError, KeyError):
        return None
    try:
        write_sidecar(pack_dir, manifest, calibration)
    except OSError:
        pass  # a read-only pack: measured again next time
    return calibration


def describe(calibration: dict | None) -> str:
    """One line for the user: the thresholds and whether they mean anything."""
    if not calibration:
        return "not calibrated (the sample photos are missing); default thresholds"
    parts = [f"duplicates at {calibration['duplicate_threshold']:.3f}", f"good matches from {calibration['match_threshold']:.3f}"]
    text = "calibrated: " + ", ".join(parts)
    if not calibration.get("duplicate_reliable", True) or not calibration.get("match_reliable", True):
        text += " (this model does not separate the sample photos: its scores mean little)"
    return text


# ------------------------------------------------------------------ using it

MATCH_AUC_FLOOR = 0.7  # below it a model's caption scores barely rank the sample photos: no cut-off
WINDOW = 0.4  # the per-query cut-off stays within this share of the match/non-match separation of the threshold
MIN_GAP = 0.1  # a drop in a query's scores counts when at least this share of the separation


def match_reliable(calibration: dict | None) -> bool:
    return bool(calibration) and calibration.get("match_auc", 0.0) >= MATCH_AUC_FLOOR and (
        calibration.get("match_mean", 0.0) - calibration.get("non_match_mean", 0.0) > 1e-3
    )


def cutoff_window(calibration: dict | None, baseline: float | None = None) -> tuple[float, float] | None:
    """(lo, hi): the scores a query's cut-off lies between (see :func:`query_cutoff`); None when
    the calibration gives no cut-off. Only scores down to the first one below ``lo`` are looked at."""
    if not match_reliable(calibration):
        return None
    lo, _, hi = _window(calibration, baseline)
    return lo, hi


def _window(calibration: dict, baseline: float | None) -> tuple[float, float, float]:
    """(lo, threshold, hi) for a query with this ``baseline``."""
    threshold = float(calibration["match_threshold"])
    if baseline is not None:
        threshold += max(0.0, baseline - float(calibration["non_match_mean"]))
    separation = float(calibration["match_mean"]) - float(calibration["non_match_mean"])
    return threshold - WINDOW * separation, threshold, threshold + WINDOW * separation


def query_cutoff(scores, calibration: dict | None, baseline: float | None = None) -> float | None:
    """The good-match cut-off for one query, from its scores over the library (best first).

    The pack's calibrated threshold, raised by how much higher than the calibration's
    non-matching pairs this query scores a typical photo of the library (``baseline``, its
    median score over a sample: wordings like "a photo of ..." lift every score), then moved
    to the largest drop in the query's own scores that lies within a window around it
    (±WINDOW of the match/non-match separation): the gap between the photos a query is about
    and the rest. None when the model's calibration says its scores do not separate matches
    (a random-weight model), or it has none: then no cut-off.
    """
    if not match_reliable(calibration):
        return None
    lo, threshold, hi = _window(calibration, baseline)
    separation = float(calibration["match_mean"]) - float(calibration["non_match_mean"])
    best, cut = MIN_GAP * separation, threshold
    scores = [float(s) for s in scores]
    for a, b in zip(scores, scores[1:]):
        if a < lo:
            break
        if b > hi:
            continue
        if a - b > best:
            best, cut = a - b, min(max((a + b) / 2, lo), hi)
    return cut


def score_range(calibration: dict | None) -> tuple[float, float]:
    """(low, high): the scores that mean something for this model's text queries (the Min. match scale)."""
    if not calibration or "score_low" not in calibration or "score_high" not in calibration:
        return (0.0, 1.0)
    low, high = float(calibration["score_low"]), float(calibration["score_high"])
    if not high > low:
        return (0.0, 1.0)
    pad = 0.1 * (high - low)
    return (round(max(-1.0, low - pad), 2), round(min(1.0, high + pad), 2))
