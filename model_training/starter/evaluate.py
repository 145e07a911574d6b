"""Measuring a starter pack on the sample photos that ship inside scikit-image, scikit-learn and matplotlib.

The gallery and its captions are listed in ``tests/data/starter_captions.json``. Shared by
``benchmarks/starter_sweep.py`` (choosing the settings) and ``tests/integration/test_starter_model.py``
(holding them). NumPy and Pillow only.
"""

from __future__ import annotations

import importlib.util
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

CAPTIONS_FILE = Path(__file__).resolve().parents[2] / "tests" / "data" / "starter_captions.json"


@dataclass
class Gallery:
    ids: list[str]
    paths: list[Path]
    groups: list[str]
    captions: list[str]
    caption_group: list[str]
    pairs: list[tuple[str, str]]
    issue_queries: list[str]


def package_file(package: str, file: str) -> Path:
    """A data file inside an installed package, found without importing the package."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(f"{package} is not installed (pip install scikit-image scikit-learn matplotlib)")
    path = Path(list(spec.submodule_search_locations)[0]) / file
    if not path.is_file():
        raise FileNotFoundError(f"{path}: not in this {package} installation")
    return path


def load_gallery(path: Path = CAPTIONS_FILE) -> Gallery:
    data = json.loads(Path(path).read_text(encoding="utf-8"))
    ids, paths, groups, captions, caption_group = [], [], [], [], []
    for entry in data["images"]:
        ids.append(entry["id"])
        paths.append(package_file(entry["package"], entry["file"]))
        groups.append(entry["group"])
        for caption in entry["captions"]:
            captions.append(caption)
            caption_group.append(entry["group"])
    pairs = [(a, b) for a, b in data["image_pairs"]]
    return Gallery(ids, paths, groups, captions, caption_group, pairs, list(data["issue_queries"]))


def augmented(image):
    """A near-duplicate of a photo: an off-centre 85% crop, mirrored, slightly darker."""
    from PIL import ImageEnhance, ImageOps

    w, h = image.size
    cw, ch = int(w * 0.85), int(h * 0.85)
    top = int((h - ch) * 0.3)
    crop = image.crop((w - cw, top, w, top + ch))
    return ImageEnhance.Brightness(ImageOps.mirror(crop)).enhance(0.9)


def text_to_image(gallery: Gallery, text_emb: np.ndarray, image_emb: np.ndarray) -> dict:
    """Recall@1/@5 and MRR over all captions; a caption is found when any image of its group ranks within K.

    Ties count against the model: an image of another group scoring the same ranks first.
    """
    sims = text_emb @ image_emb.T
    groups = np.array(gallery.groups)
    ranks = []
    for i, group in enumerate(gallery.caption_group):
        best = sims[i, groups == group].max()
        ranks.append(int((sims[i, groups != group] >= best - 1e-6).sum()) + 1)
    ranks_arr = np.array(ranks)
    return {
        "r1": float((ranks_arr <= 1).mean()),
        "r5": float((ranks_arr <= 5).mean()),
        "mrr": float((1.0 / ranks_arr).mean()),
        "ranks": ranks,
        "issue": {q: ranks[gallery.captions.index(q)] for q in gallery.issue_queries},
    }


def image_to_image(gallery: Gallery, image_emb: np.ndarray, dup_emb: np.ndarray | None = None) -> dict:
    """The photo pairs (each photo as query: does its partner rank first?) and near-duplicate retrieval."""
    sims = image_emb @ image_emb.T
    np.fill_diagonal(sims, -np.inf)
    hits, detail = 0, {}
    for a, b in gallery.pairs:
        for q, t in ((a, b), (b, a)):
            i, j = gallery.ids.index(q), gallery.ids.index(t)
            rank = int((sims[i] >= sims[i, j] - 1e-6).sum())
            detail[f"{q}->{t}"] = rank
            hits += rank == 1
    out = {"pairs": hits, "pairs_total": len(detail), "pair_ranks": detail}
    if dup_emb is not None:
        dup_sims = dup_emb @ image_emb.T
        own = np.diag(dup_sims)
        out["dup1"] = float(((dup_sims >= own[:, None] - 1e-6).sum(axis=1) == 1).mean())
    return out


def measure_pack(pack_dir: Path, gallery: Gallery | None = None, threads: int | None = 2) -> tuple[dict, dict]:
    """Text-to-image and image-to-image results of a pack run by the app's own encoder (ONNX Runtime, CPU)."""
    from desktop_app.encoder import Encoder
    from desktop_app.preprocess import load_image

    gallery = gallery or load_gallery()
    encoder = Encoder(pack_dir, providers=["CPUExecutionProvider"], threads=threads)
    images = [load_image(p) for p in gallery.paths]
    emb = encoder.encode_images(images)
    dup = encoder.encode_images([augmented(im) for im in images])
    text = encoder.encode_texts(gallery.captions)
    return text_to_image(gallery, text, emb), image_to_image(gallery, emb, dup)
