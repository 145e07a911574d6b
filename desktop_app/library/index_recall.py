"""Recall of an hnswlib index measured against exact search, as the vector index records it.

The share of each sampled stored vector's exact k nearest others (by inner product, itself
left out) that the index returns; exact search streams the vectors a chunk at a time so the
measurement's memory stays bounded however large the index.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import hnswlib
    import numpy as np

RECALL_TARGET = 0.98
RECALL_K = 10
RECALL_QUERIES = 200
RECALL_GROWTH = 0.10  # measured again once the index holds this share more vectors
_EF_SEARCH, _M = 128, 16  # the vector index's defaults, shown when a marker predates them


def exact_top_k(data: np.ndarray, queries: np.ndarray, k: int, exclude: np.ndarray | None = None, chunk: int = 65536) -> np.ndarray:
    """Row indices into ``data`` of each query's k largest inner products, best first; ``exclude``
    (one data row index per query, or -1) is left out, so a stored vector does not find itself."""
    import numpy as np

    n = len(data)
    k = min(k, n - (0 if exclude is None else 1))
    best_scores = np.full((len(queries), 0), -np.inf, dtype=np.float32)
    best_rows = np.zeros((len(queries), 0), dtype=np.int64)
    for start in range(0, n, chunk):
        scores = queries @ data[start : start + chunk].T
        if exclude is not None:
            hit = (exclude >= start) & (exclude < start + scores.shape[1])
            scores[np.nonzero(hit)[0], exclude[hit] - start] = -np.inf
        rows = np.broadcast_to(np.arange(start, start + scores.shape[1]), scores.shape)
        scores = np.concatenate([best_scores, scores], axis=1)
        rows = np.concatenate([best_rows, rows], axis=1)
        top = np.argpartition(-scores, min(k, scores.shape[1]) - 1, axis=1)[:, :k]
        best_scores = np.take_along_axis(scores, top, axis=1)
        best_rows = np.take_along_axis(rows, top, axis=1)
    order = np.argsort(-best_scores, axis=1, kind="stable")
    return np.take_along_axis(best_rows, order, axis=1)


def measure_recall(index: hnswlib.Index, labels: np.ndarray, vectors: np.ndarray | None, sample: np.ndarray, k: int = RECALL_K,
                   ef: int | None = None, truth: np.ndarray | None = None) -> tuple[float, np.ndarray]:
    """(recall@k, truth): the share of each sampled stored vector's exact k nearest others (by inner
    product, itself left out) that the hnswlib index returns at ``ef``. ``sample`` holds row indices
    into ``labels`` (the live labels); ``vectors`` their vectors, or None to read them back from the
    index a chunk at a time (bounded memory however large the index); ``truth`` (from a previous
    call) saves the exact search."""
    import numpy as np

    if truth is None:
        truth = exact_truth(index, labels, vectors, sample, k)
    queries = _rows(index, labels, vectors, sample)
    k = truth.shape[1]
    if ef is not None:
        index.set_ef(max(ef, k + 1))
    found, _ = index.knn_query(queries, k=min(k + 1, len(labels)))  # labels: the live ones only
    hits = 0
    for i, row in enumerate(found):
        mine = [int(x) for x in row if x != labels[sample[i]]][:k]
        hits += len(set(mine) & {int(x) for x in truth[i]})
    return hits / max(1, truth.size), np.asarray(truth)


def _rows(index, labels, vectors, rows):
    import numpy as np

    if vectors is not None:
        return vectors[rows]
    return np.asarray(index.get_items(labels[rows], return_type="numpy"), dtype=np.float32)


def exact_truth(index, labels: np.ndarray, vectors: np.ndarray | None, sample: np.ndarray, k: int, chunk: int = 50000) -> np.ndarray:
    """Labels of each sampled vector's exact k nearest others by inner product (itself left out),
    best first, reading ``vectors`` (or the index's stored vectors) ``chunk`` rows at a time."""
    import numpy as np

    queries = _rows(index, labels, vectors, sample)
    n = len(labels)
    k = max(1, min(k, n - 1))
    best_scores = np.full((len(sample), 0), -np.inf, dtype=np.float32)
    best_labels = np.zeros((len(sample), 0), dtype=np.int64)
    for start in range(0, n, chunk):
        rows = np.arange(start, min(start + chunk, n))
        scores = queries @ _rows(index, labels, vectors, rows).T
        mine = (sample >= start) & (sample < start + len(rows))
        scores[np.nonzero(mine)[0], sample[mine] - start] = -np.inf
        scores = np.concatenate([best_scores, scores], axis=1)
        found = np.concatenate([best_labels, np.broadcast_to(labels[rows], (len(sample), len(rows)))], axis=1)
        top = np.argpartition(-scores, min(k, scores.shape[1]) - 1, axis=1)[:, :k]
        best_scores = np.take_along_axis(scores, top, axis=1)
        best_labels = np.take_along_axis(found, top, axis=1)
    order = np.argsort(-best_scores, axis=1, kind="stable")
    return np.take_along_axis(best_labels, order, axis=1)


def describe_recall(marker: dict) -> str:
    """"recall@10 0.993 (ef 128, M 16)" from a marker, or why there is no figure."""
    recall = marker.get("recall")
    ef, m = marker.get("ef", _EF_SEARCH), marker.get("M", _M)
    if recall is None:
        if marker.get("count", 0) <= RECALL_K:
            return f"recall exact (too few vectors to measure; ef {ef}, M {m})"
        return f"recall not measured yet (ef {ef}, M {m}; measured at the next save)"
    low = "" if recall >= RECALL_TARGET else f", below the {RECALL_TARGET} target"
    return f"recall@{RECALL_K} {recall:.3f} (ef {ef}, M {m}{low})"
