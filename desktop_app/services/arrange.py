"""Lay photos out on a grid with similar ones side by side (FLAS, through ``vc-flas``)."""

from __future__ import annotations

import numpy as np


def arrange(vectors: np.ndarray, columns: int, seed: int = 1) -> np.ndarray:
    """Order of the rows of ``vectors`` that lays them out on a grid ``columns`` wide with
    similar photos side by side (FLAS, Barthel et al. 2023, through ``vc-flas``)."""
    n = len(vectors)
    columns = max(1, min(columns, n))
    if n < 4 or columns < 2:
        return np.arange(n)
    rows = -(-n // columns)
    if rows < 2:
        return np.arange(n)
    import vc_flas

    features = np.ascontiguousarray(vectors, dtype=np.float32)
    best, best_cost = None, np.inf
    # FLAS is a heuristic; on small grids a few seeds are cheap and visibly better.
    for s in range(seed, seed + (4 if n <= 400 else 1)):
        grid = vc_flas.Grid.from_features(features, size=(rows, columns))
        labels = vc_flas.flas(grid, seed=s).get_sorted_labels().ravel()
        order = labels[labels >= 0].astype(np.int64)
        cost = _neighbour_distance(features[order], columns)
        if cost < best_cost:
            best, best_cost = order, cost
    return best


def _neighbour_distance(ordered: np.ndarray, columns: int) -> float:
    """Mean distance between horizontally and vertically adjacent cells of the laid-out grid."""
    n = len(ordered)
    idx = np.arange(n)
    right = idx[(idx % columns != columns - 1) & (idx + 1 < n)]
    down = idx[idx + columns < n]
    d = np.concatenate(
        [np.linalg.norm(ordered[right] - ordered[right + 1], axis=1), np.linalg.norm(ordered[down] - ordered[down + columns], axis=1)]
    )
    return float(d.mean()) if len(d) else 0.0
