"""Recall you can trust: measured against exact search, ef/M raised until the target, kept in the
marker; and a cold open with nothing changed does not read every photo id."""

from __future__ import annotations

import json

import numpy as np
import pytest

from desktop_app.library import index_recall
from desktop_app.library import vector_index as vi
from desktop_app.library.library_dir import Library
from tests.vector_helpers import add_photos

MODEL, DIM = "m@recall", 16


def _add(lib: Library, n: int, rng) -> list[int]:
    return add_photos(lib, n, rng, MODEL, DIM)


@pytest.fixture
def lib(tmp_path):
    with Library(tmp_path / "lib") as library:
        yield library


def _marker(lib: Library) -> dict:
    return json.loads((lib.vectors_dir / f"{MODEL}.json").read_text())


def test_exact_top_k_matches_a_full_sort():
    rng = np.random.default_rng(0)
    data = rng.standard_normal((500, 8)).astype(np.float32)
    queries = data[[3, 70, 499]]
    got = vi.exact_top_k(data, queries, 5, exclude=np.array([3, 70, 499]), chunk=64)
    for q, row, me in zip(queries, got, (3, 70, 499)):
        scores = data @ q
        scores[me] = -np.inf
        assert list(row) == list(np.argsort(-scores, kind="stable")[:5])


def test_save_measures_recall_and_stores_it(lib):
    _add(lib, 1500, np.random.default_rng(1))
    index = lib.vector_index(MODEL, DIM)
    index.save()
    marker = _marker(lib)
    assert marker["recall"] >= vi.RECALL_TARGET
    assert marker["recall_count"] == 1500 and marker["ef"] >= vi.EF_SEARCH and marker["M"] == vi.M
    quality = vi.VectorIndex(lib.vectors_dir, MODEL, DIM, lib.catalogue_id).quality()
    assert quality["recall"] == marker["recall"] and quality["ef"] == marker["ef"]
    health = vi.VectorIndex(lib.vectors_dir, MODEL, DIM, lib.catalogue_id).health(lib.catalogue)
    assert f"recall@10 {marker['recall']:.3f}" in health
    reopened = lib.vector_index(MODEL, DIM)
    assert reopened.recall == marker["recall"] and reopened.ef == marker["ef"] and not reopened.dirty


def test_recall_measured_again_only_after_growing_by_a_tenth(lib, monkeypatch):
    rng = np.random.default_rng(2)
    _add(lib, 1000, rng)
    lib.vector_index(MODEL, DIM).save()
    assert _marker(lib)["recall_count"] == 1000
    _add(lib, 50, rng)  # 5 %: the old figure stands
    index = lib.vector_index(MODEL, DIM)
    assert not index.needs_recall()
    index.save()
    assert _marker(lib)["recall_count"] == 1000
    _add(lib, 80, rng)  # 13 % since the measurement
    index = lib.vector_index(MODEL, DIM)
    assert index.needs_recall()
    index.save()
    assert _marker(lib)["recall_count"] == 1130


def test_unreachable_target_raises_ef_then_m_and_says_so(lib, monkeypatch):
    _add(lib, 600, np.random.default_rng(3))
    monkeypatch.setattr(vi, "RECALL_TARGET", 1.01)  # can never be met: every step is tried
    monkeypatch.setattr(index_recall, "RECALL_TARGET", 1.01)
    monkeypatch.setattr(vi, "EF_STEPS", (128, 256))
    monkeypatch.setattr(vi, "M_STEPS", (16, 24))
    index = lib.vector_index(MODEL, DIM)
    recall = index.tune(target=1.01)
    assert index.ef == 256 and index.M == 24 and index.index.M == 24
    assert len(index) == 600 and 0.9 <= recall <= 1.0
    index.save()
    marker = _marker(lib)
    assert marker["M"] == 24 and marker["ef"] == 256
    assert "below the" in vi.describe_recall(marker)
    again = lib.vector_index(MODEL, DIM)  # the larger graph is what is saved and loaded
    assert again.index.M == 24 and again.ef == 256 and again.rebuilt_because is None


def test_old_marker_without_recall_still_loads_and_is_measured_at_next_save(lib):
    _add(lib, 300, np.random.default_rng(4))
    lib.vector_index(MODEL, DIM).save()
    path = lib.vectors_dir / f"{MODEL}.json"
    marker = _marker(lib)
    for key in ("ef", "M", "recall", "recall_count"):
        marker.pop(key)
    path.write_text(json.dumps(marker))
    index = lib.vector_index(MODEL, DIM)
    assert index.rebuilt_because is None and index.recall is None and index.dirty
    assert "not measured yet" in index.health(lib.catalogue)
    index.save()
    assert _marker(lib)["recall"] is not None


def test_open_with_nothing_changed_reads_no_photo_ids(lib, monkeypatch):
    rng = np.random.default_rng(5)
    _add(lib, 200, rng)
    lib.vector_index(MODEL, DIM).save()
    calls = []
    real = vi.VectorIndex._catalogue_ids
    monkeypatch.setattr(vi.VectorIndex, "_catalogue_ids", lambda self, cat: calls.append(1) or real(self, cat))
    index = lib.vector_index(MODEL, DIM)
    assert calls == [] and not index.checked_catalogue and len(index) == 200 and index.rebuilt_because is None
    _add(lib, 5, rng)  # changes since the save: caught up, then checked against every id
    index = lib.vector_index(MODEL, DIM)
    assert calls == [1] and index.checked_catalogue and len(index) == 205


def test_open_with_nothing_changed_still_notices_a_count_mismatch(lib):
    """A marker whose change number matches but whose index lacks photos (written by a buggy or
    foreign writer) is caught by the count check and rebuilt."""
    ids = _add(lib, 100, np.random.default_rng(6))
    index = lib.vector_index(MODEL, DIM)
    index.index.mark_deleted(ids[0])
    index.live.discard(ids[0])
    index.deleted.add(ids[0])
    index.save()
    reopened = lib.vector_index(MODEL, DIM)
    assert reopened.rebuilt_because == "it does not hold the same photos as the catalogue"
    assert len(reopened) == 100


def test_exact_truth_streams_from_the_index_with_the_same_answer():
    import hnswlib

    rng = np.random.default_rng(7)
    data = rng.standard_normal((2000, DIM)).astype(np.float32)
    data /= np.linalg.norm(data, axis=1, keepdims=True)
    labels = np.arange(2000, dtype=np.int64) * 3 + 1
    index = hnswlib.Index(space="ip", dim=DIM)
    index.init_index(max_elements=2000, M=16, ef_construction=100)
    index.add_items(data, labels)
    sample = np.array([0, 999, 1999])
    streamed = vi.exact_truth(index, labels, None, sample, 10, chunk=300)  # read back from the index
    in_memory = vi.exact_truth(index, labels, data, sample, 10)
    scores = data[sample] @ data.T
    scores[np.arange(3), sample] = -np.inf
    expected = labels[np.argsort(-scores, axis=1, kind="stable")[:, :10]]
    assert (streamed == expected).all() and (in_memory == expected).all()
