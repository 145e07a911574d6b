"""desktop_app/services/arrange.py: the FLAS grid layout behind "Arrange by similarity" (no window needed).

Moved here from tests/test_gui_app.py. Its wall-clock bound (< 1 s) is gone: a timing assert on a
shared machine fails for reasons that are not bugs, and speed is not what this code could get wrong
silently. Its "< 0.6 × the shuffled distance" floor was copied from a run; the checks below compare
with a layout built from the ground truth instead: the photos sorted by their cluster and laid out
row by row, which a layout "with similar photos side by side" must do at least as well as.
"""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("vc_flas")

from desktop_app.services.arrange import _neighbour_distance, arrange

SIDE = 20  # a 20 × 20 grid
CLUSTERS = 4


def _clustered(seed: int):
    """400 vectors in 4 tight clusters of 100, shuffled; and each vector's cluster."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((CLUSTERS, 64)).astype(np.float32)
    labels = np.repeat(np.arange(CLUSTERS), SIDE * SIDE // CLUSTERS)
    vectors = centres[labels] + 0.05 * rng.standard_normal((len(labels), 64)).astype(np.float32)
    shuffle = rng.permutation(len(labels))
    return vectors[shuffle], labels[shuffle]


def _crossings(labels_on_grid: np.ndarray) -> int:
    """Horizontally or vertically adjacent cells that hold photos of different clusters."""
    g = labels_on_grid.reshape(SIDE, SIDE)
    return int((g[:, 1:] != g[:, :-1]).sum() + (g[1:] != g[:-1]).sum())


@pytest.mark.parametrize("seed", [0, 1])
def test_arrange_puts_similar_vectors_side_by_side(seed):
    vectors, labels = _clustered(seed)
    order = arrange(vectors, SIDE)
    assert sorted(order.tolist()) == list(range(len(vectors)))  # every photo once
    by_cluster = np.argsort(labels, kind="stable")  # the ground truth: clusters in bands of 5 rows
    assert _crossings(labels[by_cluster]) == (CLUSTERS - 1) * SIDE
    assert _crossings(labels[order]) <= _crossings(labels[by_cluster])
    assert _neighbour_distance(vectors[order], SIDE) < _neighbour_distance(vectors[by_cluster], SIDE)
    # and far from the order it was given (where most neighbours are strangers)
    assert _crossings(labels) > 2 * _crossings(labels[by_cluster])


def test_arrange_fills_a_partial_last_row_with_every_photo():
    vectors = np.random.default_rng(0).standard_normal((10, 8)).astype(np.float32)
    order = arrange(vectors, 4)  # 3 rows, the last one half full
    assert sorted(order.tolist()) == list(range(10))


@pytest.mark.parametrize(("n", "columns"), [(3, 2), (10, 1), (5, 8)])
def test_arrange_leaves_what_it_cannot_lay_out_in_order(n, columns):
    """Fewer than 4 photos, one column, or one row: nothing to arrange, the order stays."""
    vectors = np.random.default_rng(n).standard_normal((n, 8)).astype(np.float32)
    assert arrange(vectors, columns).tolist() == list(range(n))
