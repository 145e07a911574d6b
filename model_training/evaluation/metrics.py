"""Metrics on L2-normalised embeddings (numpy in, floats out)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def average_precision(relevant_in_rank_order: np.ndarray) -> float:
    """AP over a full ranking: mean of precision@rank at each relevant item (0 when none is relevant)."""
    hits = np.flatnonzero(relevant_in_rank_order)
    if hits.size == 0:
        return 0.0
    return float(np.mean(np.arange(1, hits.size + 1) / (hits + 1)))


def _rank(query: np.ndarray, gallery: np.ndarray) -> np.ndarray:
    # stable sort on -sim: ties keep gallery order, as the authors' argsort()[::-1] would not
    # (theirs reverses ties); ties are measure-zero for real embeddings.
    return np.argsort(-(query @ gallery.T), axis=1, kind="stable")


def all_vs_all_map(features: np.ndarray, labels: Sequence, include_self: bool = True, chunk: int = 1024) -> float:
    """Every item queries all items; mAP over the full ranking.

    ``include_self=True`` is the GPR1200 authors' protocol: the query is in the database and counts
    as a relevant hit (normally at rank 1).
    """
    labels = np.asarray(labels)
    aps = []
    for start in range(0, len(features), chunk):
        order = _rank(features[start:start + chunk], features)
        for row, q in enumerate(range(start, min(start + chunk, len(features)))):
            ranked = order[row]
            if not include_self:
                ranked = ranked[ranked != q]
            aps.append(average_precision(labels[ranked] == labels[q]))
    return float(np.mean(aps))


def recall_at_1(features: np.ndarray, labels: Sequence) -> float:
    """Leave-one-out Recall@1 (the CUB protocol): is the nearest other item of the same class?"""
    labels = np.asarray(labels)
    sim = features @ features.T
    np.fill_diagonal(sim, -np.inf)
    return float(np.mean(labels[sim.argmax(axis=1)] == labels))


def knn_accuracy(query: np.ndarray, query_labels: Sequence, gallery: np.ndarray, gallery_labels: Sequence,
                 k: int = 21, temperature: float = 0.1, num_classes: int | None = None, chunk: int = 1024) -> float:
    """Weighted k-NN vote (Wu et al. 2018, as in DINO): each of the k nearest adds exp(cos / T) to its class."""
    query_labels, gallery_labels = np.asarray(query_labels), np.asarray(gallery_labels)
    num_classes = num_classes or int(max(query_labels.max(), gallery_labels.max())) + 1
    k = min(k, gallery.shape[0])
    correct = 0
    for s in range(0, len(query), chunk):
        sim = query[s:s + chunk] @ gallery.T
        top = np.argsort(-sim, axis=1, kind="stable")[:, :k]
        weights = np.exp(np.take_along_axis(sim, top, axis=1) / temperature)
        votes = np.zeros((len(sim), num_classes))
        np.add.at(votes, (np.repeat(np.arange(len(sim)), k), gallery_labels[top].ravel()), weights.ravel())
        correct += int(np.sum(votes.argmax(axis=1) == query_labels[s:s + chunk]))
    return correct / len(query)


def zero_shot_accuracy(image_features: np.ndarray, labels: Sequence, classifier: np.ndarray) -> float:
    """Top-1 accuracy of argmax cos(image, class embedding); ``classifier`` is [num_classes, D]."""
    return float(np.mean((image_features @ classifier.T).argmax(axis=1) == np.asarray(labels)))


def text_to_image_recall(text_features: np.ndarray, image_features: np.ndarray, relevant: Sequence[Sequence[int]],
                         ks: Sequence[int] = (1, 5, 10), chunk: int = 1024) -> dict[int, float]:
    """Recall@K: share of text queries with at least one relevant image among the K nearest images."""
    top = max(ks)
    order = np.concatenate([_rank(text_features[s:s + chunk], image_features)[:, :top]
                            for s in range(0, len(text_features), chunk)])
    hits = np.array([[bool(set(order[q, :k]) & set(relevant[q])) for k in ks] for q in range(len(order))])
    return {k: float(hits[:, j].mean()) for j, k in enumerate(ks)}


def caption_queries(captions: Sequence[str]) -> tuple[list[str], list[list[int]]]:
    """Distinct caption texts, each with every image it was written for (identical captions merge)."""
    index: dict[str, list[int]] = {}
    for i, c in enumerate(captions):
        index.setdefault(c, []).append(i)
    texts = list(index)
    return texts, [index[t] for t in texts]
