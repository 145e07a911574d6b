"""`pixfind eval` and in-training validation: which sets to score and how."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from ..data import sources
from ..data.datasets import load_rgb
from . import metrics
from .embedders import openai_templates, zero_shot_classifier
from .gpr1200 import ZipImage, read_gpr1200
from .labelled_sets import read_cub_test, read_instre
from .revisited import RevisitedQuery, read_revisited, revisited_map, revisited_name


def load_images(items: Sequence) -> list[Image.Image]:
    return [it.load() if isinstance(it, (ZipImage, RevisitedQuery)) else load_rgb(it) for it in items]


class _Lazy:
    """Images opened in chunks while embedding, so 12,000 photos never sit in memory at once."""

    def __init__(self, embedder, chunk: int = 512):
        self.embedder, self.chunk = embedder, chunk

    def images(self, items: Sequence) -> np.ndarray:
        parts = [self.embedder.encode_images(load_images(items[s:s + self.chunk])) for s in range(0, len(items), self.chunk)]
        return np.concatenate(parts)


@dataclass
class EvalSets:
    folder: Path | None = None  # ImageFolder: all-vs-all mAP
    gpr1200: Path | None = None
    instre: Path | None = None  # all-vs-all mAP, labels from the leaf folders
    cub: Path | None = None  # CUB-200-2011: Recall@1 on test classes 101-200
    revisited: tuple[Path, ...] = ()  # ROxford5k / RParis6k roots: Medium and Hard mAP
    captions: Path | None = None  # manifest path,caption: T2I recall
    captions_root: Path | None = None
    knn_train: Path | None = None
    knn_val: Path | None = None
    zero_shot: Path | None = None  # ImageFolder whose folder names are the class names
    ks: tuple[int, ...] = field(default=(1, 5, 10))

    @classmethod
    def from_config(cls, cfg: dict) -> EvalSets:
        def get(k):
            return Path(cfg[k]) if cfg.get(k) else None
        return cls(folder=get("folder"), gpr1200=get("gpr1200"), instre=get("instre"), cub=get("cub"),
                   revisited=tuple(Path(p) for p in cfg.get("revisited") or ()),
                   captions=get("captions"), captions_root=get("captions_root"), knn_train=get("knn_train"),
                   knn_val=get("knn_val"), zero_shot=get("zero_shot"))

    @property
    def empty(self) -> bool:
        return not any((self.folder, self.gpr1200, self.instre, self.cub, self.revisited, self.captions, self.knn_val,
                        self.zero_shot))

    @property
    def metric_names(self) -> list[str]:
        names = (["gpr1200_map"] if self.gpr1200 else []) + (["i2i_map"] if self.folder else [])
        names += (["instre_map"] if self.instre else []) + (["cub_r1"] if self.cub else [])
        names += [f"{n}_{level}_map" for n in map(revisited_name, self.revisited) for level in ("medium", "hard")]
        names += (["knn_acc"] if self.knn_val else []) + (["zero_shot_acc"] if self.zero_shot else [])
        return names + ([f"t2i_r{k}" for k in self.ks] if self.captions else [])

    def evaluate(self, embedder) -> dict[str, float]:
        lazy, out = _Lazy(embedder), {}
        if self.gpr1200:
            items, labels = read_gpr1200(self.gpr1200)
            out["gpr1200_map"] = metrics.all_vs_all_map(lazy.images(items), labels, include_self=True)
        if self.folder:
            listing = sources.image_folder(self.folder)
            out["i2i_map"] = metrics.all_vs_all_map(lazy.images(listing.paths), listing.labels, include_self=True)
        if self.instre:
            listing = read_instre(self.instre)
            out["instre_map"] = metrics.all_vs_all_map(lazy.images(listing.paths), listing.labels, include_self=True)
        if self.cub:
            listing = read_cub_test(self.cub)
            out["cub_r1"] = metrics.recall_at_1(lazy.images(listing.paths), listing.labels)
        for root in self.revisited:
            data = read_revisited(root)
            result = revisited_map(lazy.images(data.queries), lazy.images(data.database), data.ground_truth)
            out.update({f"{data.name}_{level}_map": v for level, v in result.items()})
        if self.knn_val:
            if not self.knn_train:
                raise ValueError("k-NN needs a training (gallery) folder as well")
            train, val = sources.image_folder(self.knn_train), sources.image_folder(self.knn_val)
            val_labels = [train.classes.index(val.classes[label]) for label in val.labels]
            out["knn_acc"] = metrics.knn_accuracy(lazy.images(val.paths), val_labels, lazy.images(train.paths),
                                                  train.labels, k=21, temperature=0.1, num_classes=len(train.classes))
        if self.zero_shot:
            listing = sources.image_folder(self.zero_shot)
            names = [c.replace("_", " ") for c in listing.classes]
            classifier = zero_shot_classifier(embedder, names, openai_templates())
            out["zero_shot_acc"] = metrics.zero_shot_accuracy(lazy.images(listing.paths), listing.labels, classifier)
        if self.captions:
            listing = sources.caption_manifest(self.captions, self.captions_root)
            # one query per (image, caption); identical texts merge and may match any of their images
            flat = [(i, c) for i, caps in enumerate(listing.captions) for c in caps]
            texts, relevant = metrics.caption_queries([c for _, c in flat])
            relevant = [sorted({flat[j][0] for j in rel}) for rel in relevant]
            recall = metrics.text_to_image_recall(embedder.encode_texts(texts), lazy.images(listing.paths), relevant, self.ks)
            out.update({f"t2i_r{k}": v for k, v in recall.items()})
        return out
