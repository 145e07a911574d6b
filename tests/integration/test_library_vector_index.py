"""The hnswlib index as a derived cache: catch-up, deletions with slot reuse, rebuilds, atomic saves."""

from __future__ import annotations

import json

import numpy as np
import pytest

from desktop_app.library.catalogue import Embedding
from desktop_app.library.indexer import delete_photos
from desktop_app.library.library_dir import Library
from tests.vector_helpers import add_photos

MODEL, DIM = "m@test", 16


def _add(lib: Library, n: int, rng) -> list[int]:
    return add_photos(lib, n, rng, MODEL, DIM)


@pytest.fixture
def lib(tmp_path):
    with Library(tmp_path / "lib") as library:
        yield library


def test_catch_up_after_a_crash_between_saves(lib):
    rng = np.random.default_rng(0)
    ids = _add(lib, 50, rng)
    index = lib.vector_index(MODEL, DIM)
    assert index.rebuilt_because == "there was no index" and len(index) == 50
    index.save()
    with lib.catalogue.session() as s, s.begin():  # committed, but the process "dies" before saving the index
        delete_photos(s, lib.catalogue, ids[:5])
    reopened = lib.vector_index(MODEL, DIM)
    assert reopened.rebuilt_because is None  # caught up from the catalogue, no rebuild
    assert reopened.live == set(ids[5:]) and reopened.deleted == set(ids[:5])
    reopened.save()
    more = _add(lib, 3, rng)  # new photos reuse the deleted slots
    again = lib.vector_index(MODEL, DIM)
    assert again.rebuilt_because is None and again.live == set(ids[5:]) | set(more)
    assert len(again.deleted) == 2 and again.index.get_current_count() == 50  # no growth


def test_rebuild_when_missing_corrupt_or_stale(lib):
    rng = np.random.default_rng(1)
    _add(lib, 30, rng)
    index = lib.vector_index(MODEL, DIM)
    index.save()
    marker = json.loads(index.marker_path.read_text())
    path = index.directory / marker["file"]

    path.write_bytes(path.read_bytes()[:-100])  # truncated
    assert "wrong size" in lib.vector_index(MODEL, DIM).rebuilt_because
    data = bytearray(path.read_bytes() + b"\0" * 100)
    data[:64] = b"\xff" * 64  # garbage header, right size
    path.write_bytes(bytes(data))
    rebuilt = lib.vector_index(MODEL, DIM)
    assert "corrupt" in rebuilt.rebuilt_because and len(rebuilt) == 30
    rebuilt.save()

    json_marker = json.loads(index.marker_path.read_text())
    json_marker["catalogue"] = "another library"
    index.marker_path.write_text(json.dumps(json_marker))
    assert "another catalogue" in lib.vector_index(MODEL, DIM).rebuilt_because
    index.marker_path.write_text("{not json")
    assert "unreadable" in lib.vector_index(MODEL, DIM).rebuilt_because
    path.unlink(missing_ok=True)
    fresh = lib.vector_index(MODEL, DIM)
    assert fresh.rebuilt_because and len(fresh) == 30


def test_save_replaces_atomically_and_cleans_up(lib):
    rng = np.random.default_rng(2)
    _add(lib, 20, rng)
    index = lib.vector_index(MODEL, DIM)
    (index.directory).mkdir(parents=True, exist_ok=True)
    leftover = index.directory / f"{MODEL}.killed-mid-save.hnsw"
    leftover.write_bytes(b"partial")
    index.save()
    _add(lib, 1, rng)
    index.catch_up(lib.catalogue)
    index.save()
    files = sorted(p.name for p in index.directory.iterdir())
    assert files == sorted([json.loads(index.marker_path.read_text())["file"], index.marker_path.name])


def test_hnsw_search_agrees_with_exact(lib):
    rng = np.random.default_rng(3)
    ids = _add(lib, 200, rng)
    index = lib.vector_index(MODEL, DIM)
    with lib.catalogue.session() as s:
        rows = s.query(Embedding.photo_id, Embedding.vector).all()
    matrix = np.stack([np.frombuffer(v, np.float32) for _, v in rows])
    labels = np.array([i for i, _ in rows])
    q = matrix[17]
    exact = labels[np.argsort(-(matrix @ q))[:10]]
    found, scores = index.search(q, 10)
    assert list(found) == list(exact) and scores[0] == pytest.approx(1.0, abs=1e-5)
    allowed = set(ids[:20])
    found, _ = index.search(q, 5, allowed.__contains__)
    assert set(found) <= allowed
