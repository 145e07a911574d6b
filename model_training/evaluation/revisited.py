"""Revisited Oxford and Paris (Radenović et al. 2018): 70 cropped queries, Medium and Hard mAP, junk ignored.

The layout is the one the authors' download script writes: ``<root>/gnd_roxford5k.pkl`` (or
``gnd_rparis6k.pkl``) beside ``<root>/jpg/<name>.jpg``. The ground truth lists, per query, its
bounding box and the database indices that are easy, hard or junk. Medium counts easy + hard as
positives and ignores junk; Hard counts only hard ones and ignores junk + easy.
"""

from __future__ import annotations

import pickle
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from desktop_app.errors import PixfindError

GROUND_TRUTH_FILES = {"roxford5k": "gnd_roxford5k.pkl", "rparis6k": "gnd_rparis6k.pkl"}


class _PlainDataUnpickler(pickle.Unpickler):
    """The ground-truth pickle holds lists, dicts and numbers (numpy arrays in some copies); nothing else may load."""

    ALLOWED = {("numpy", "ndarray"), ("numpy", "dtype"), ("numpy.core.multiarray", "_reconstruct"),
               ("numpy._core.multiarray", "_reconstruct"), ("numpy.core.multiarray", "scalar"),
               ("numpy._core.multiarray", "scalar")}

    def find_class(self, module, name):
        if (module, name) in self.ALLOWED:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"refusing to load {module}.{name}")


@dataclass
class RevisitedQuery:
    path: Path
    box: tuple[float, float, float, float]  # x1, y1, x2, y2 in pixels

    def load(self) -> Image.Image:
        with Image.open(self.path) as im:
            return im.convert("RGB").crop(tuple(round(v) for v in self.box))


@dataclass
class RevisitedSet:
    name: str
    database: list[Path]
    queries: list[RevisitedQuery]
    ground_truth: list[dict]  # per query: easy, hard, junk (database indices)


def revisited_name(root: Path) -> str:
    """Which set a root holds (roxford5k or rparis6k), from its ground-truth file alone."""
    found = [name for name, f in GROUND_TRUTH_FILES.items() if (Path(root) / f).is_file()]
    if not found:
        raise PixfindError(f"{root}: no {' or '.join(GROUND_TRUTH_FILES.values())} (the revisited ground truth)")
    return found[0]


def read_revisited(root: Path) -> RevisitedSet:
    root = Path(root)
    name = revisited_name(root)
    gnd_file = root / GROUND_TRUTH_FILES[name]
    try:
        with open(gnd_file, "rb") as f:
            cfg = _PlainDataUnpickler(f).load()
        images = root / "jpg"
        database = [images / f"{n}.jpg" for n in cfg["imlist"]]
        queries = [RevisitedQuery(images / f"{n}.jpg", tuple(float(v) for v in g["bbx"]))
                   for n, g in zip(cfg["qimlist"], cfg["gnd"])]
        truth = [{k: [int(i) for i in g.get(k, [])] for k in ("easy", "hard", "junk")} for g in cfg["gnd"]]
    except (pickle.UnpicklingError, EOFError, KeyError, TypeError, ValueError) as e:
        raise PixfindError(f"{gnd_file}: not a revisited ground-truth file ({e})") from None
    missing = next((p for p in database + [q.path for q in queries] if not p.is_file()), None)
    if missing:
        raise PixfindError(f"{missing}: image listed in {gnd_file.name} is missing")
    return RevisitedSet(name, database, queries, truth)


def revisited_ap(positive_ranks: np.ndarray, num_positives: int) -> float:
    """AP with the trapezoidal precision of the revisited toolkit (``compute_ap``); ranks are 0-based."""
    ap = 0.0
    for j, rank in enumerate(np.sort(positive_ranks)):
        precision_before = 1.0 if rank == 0 else j / rank
        precision_after = (j + 1) / (rank + 1)
        ap += (precision_before + precision_after) / 2 / num_positives
    return ap


def _ap_ignoring(ranking: np.ndarray, positives: list[int], junk: list[int]) -> float | None:
    if not positives:
        return None  # the toolkit leaves such queries out of the mean
    pos_at = np.flatnonzero(np.isin(ranking, positives))
    junk_at = np.flatnonzero(np.isin(ranking, junk))
    # a junk image ranked above a positive does not count: move the positive up by one per such image
    pos_at = pos_at - np.searchsorted(junk_at, pos_at)
    return revisited_ap(pos_at, len(positives))


def revisited_map(query_features: np.ndarray, database_features: np.ndarray, ground_truth: list[dict]) -> dict[str, float]:
    """Medium and Hard mAP over the queries, as the revisited protocol defines them."""
    rankings = np.argsort(-(query_features @ database_features.T), axis=1, kind="stable")
    medium, hard = [], []
    for ranking, g in zip(rankings, ground_truth):
        medium.append(_ap_ignoring(ranking, g["easy"] + g["hard"], g["junk"]))
        hard.append(_ap_ignoring(ranking, g["hard"], g["junk"] + g["easy"]))
    def mean(aps):
        return float(np.mean([a for a in aps if a is not None])) if any(a is not None for a in aps) else 0.0
    return {"medium": mean(medium), "hard": mean(hard)}
