"""Behaviours of desktop_app/library/vector_index.py that mutation testing
(benchmarks/mutation_score.py) found untested: searching the smallest libraries, the scores a
search returns, and a damaged marker's recall figures."""

from __future__ import annotations

import json

import numpy as np
import pytest

from desktop_app.library.catalogue import Embedding
from desktop_app.library.library_dir import Library
from tests.vector_helpers import add_photos

MODEL, DIM = "m@mutants", 16


@pytest.fixture
def lib(tmp_path):
    with Library(tmp_path / "lib") as library:
        yield library


def _vectors(lib: Library) -> tuple[np.ndarray, np.ndarray]:
    with lib.catalogue.session() as s:
        rows = s.query(Embedding.photo_id, Embedding.vector).filter(Embedding.model == MODEL).all()
    return np.array([i for i, _ in rows]), np.stack([np.frombuffer(v, np.float32) for _, v in rows])


def test_an_empty_library_finds_nothing_and_a_library_of_one_photo_finds_it(lib):
    index = lib.vector_index(MODEL, DIM)
    found, scores = index.search(np.ones(DIM, np.float32) / 4, 10)
    assert found.shape == scores.shape == (0,) and found.dtype == np.int64 and scores.dtype == np.float32
    [only] = add_photos(lib, 1, np.random.default_rng(0), MODEL, DIM)
    index = lib.vector_index(MODEL, DIM)
    _, matrix = _vectors(lib)
    found, scores = index.search(matrix[0], 10)
    assert list(found) == [only] and scores[0] == pytest.approx(1.0, abs=1e-5)


def test_scores_are_cosine_similarities_best_first(lib):
    add_photos(lib, 60, np.random.default_rng(1), MODEL, DIM)
    index = lib.vector_index(MODEL, DIM)
    labels, matrix = _vectors(lib)
    query = matrix[5] + matrix[9]
    query /= np.linalg.norm(query)
    found, scores = index.search(query, 8)
    assert found.dtype == np.int64
    by_id = dict(zip(labels.tolist(), matrix @ query))
    np.testing.assert_allclose(scores, [by_id[i] for i in found.tolist()], atol=1e-5)
    assert list(found) == [int(i) for i in labels[np.argsort(-(matrix @ query))[:8]]]


def test_a_marker_with_bad_fields_has_no_recall_figures(lib):
    add_photos(lib, 30, np.random.default_rng(2), MODEL, DIM)
    index = lib.vector_index(MODEL, DIM)
    index.save()
    assert index.quality()["recall"] is not None
    marker = json.loads(index.marker_path.read_text())
    index.marker_path.write_text(json.dumps({**marker, "seq": -1}))
    assert index.quality() is None
    assert index.health(lib.catalogue) == (
        "needs a rebuild: its marker has an invalid 'seq' (rebuilt on the next search or index run)"
    )


@pytest.mark.parametrize(
    "field, value",
    [
        ("seq", -1),
        ("file_size", 0),
        ("file", "sub/index.hnsw"),  # the marker may only name a file in the vectors folder
        ("recall", True),
        ("recall", 1.5),
        ("recall_count", -1),
        ("deleted", ["7"]),
        ("M", 1),
    ],
)
def test_status_refuses_a_marker_field_out_of_range(lib, field, value):
    add_photos(lib, 20, np.random.default_rng(3), MODEL, DIM)
    index = lib.vector_index(MODEL, DIM)
    index.save()
    marker = json.loads(index.marker_path.read_text())
    index.marker_path.write_text(json.dumps({**marker, field: value}))
    assert index.health(lib.catalogue) == (
        f"needs a rebuild: its marker has an invalid {field!r} (rebuilt on the next search or index run)"
    )


def test_a_marker_of_an_empty_catalogue_is_valid(lib):
    index = lib.vector_index(MODEL, DIM)
    index.save()
    assert json.loads(index.marker_path.read_text())["seq"] == 0
    assert index.health(lib.catalogue).startswith("ok, 0 vectors")


def test_status_checks_the_index_file_against_its_checksum(lib):
    add_photos(lib, 20, np.random.default_rng(4), MODEL, DIM)
    index = lib.vector_index(MODEL, DIM)
    index.save()
    path = index.directory / json.loads(index.marker_path.read_text())["file"]
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF  # same size, one byte changed
    path.write_bytes(bytes(data))
    assert index.health(lib.catalogue) == (
        "needs a rebuild: the index file is corrupt (it does not match its checksum) (rebuilt on the next search or index run)"
    )


def test_status_counts_the_changes_waiting_since_the_save(lib):
    add_photos(lib, 20, np.random.default_rng(5), MODEL, DIM)
    index = lib.vector_index(MODEL, DIM)
    index.save()
    assert "changes to apply" not in index.health(lib.catalogue)
    add_photos(lib, 3, np.random.default_rng(6), MODEL, DIM)
    assert index.health(lib.catalogue).endswith(", 3 changes to apply on next open")


def test_quality_reports_the_markers_figures_and_defaults_for_an_old_marker(lib):
    add_photos(lib, 40, np.random.default_rng(7), MODEL, DIM)
    index = lib.vector_index(MODEL, DIM)
    index.save()
    marker = json.loads(index.marker_path.read_text())
    assert index.quality() == {"recall": marker["recall"], "k": 10, "ef": marker["ef"], "M": marker["M"],
                               "measured_at": 40, "target": 0.98}
    index.marker_path.write_text(json.dumps({**marker, "ef": 384, "M": 32}))  # as after a tuning that raised both
    assert (index.quality()["ef"], index.quality()["M"]) == (384, 32)
    old = {k: v for k, v in marker.items() if k not in ("ef", "M", "recall", "recall_count")}
    index.marker_path.write_text(json.dumps(old))
    assert index.quality() == {"recall": None, "k": 10, "ef": 128, "M": 16, "measured_at": None, "target": 0.98}


def test_photos_of_another_model_do_not_make_an_index_look_stale(lib):
    add_photos(lib, 20, np.random.default_rng(8), MODEL, DIM)
    saved = lib.vector_index(MODEL, DIM)
    saved.save()
    add_photos(lib, 5, np.random.default_rng(9), "other@model", DIM)
    assert "changes to apply" not in saved.health(lib.catalogue)  # another model's vectors are not this index's
    again = lib.vector_index(MODEL, DIM)
    assert again.rebuilt_because is None and len(again) == 20


def test_an_index_rebuilt_on_open_is_marked_to_be_saved(lib):
    add_photos(lib, 20, np.random.default_rng(10), MODEL, DIM)
    index = lib.vector_index(MODEL, DIM)  # no index yet: built from the catalogue
    assert index.rebuilt_because == "there was no index" and index.dirty  # the search service saves it


def test_an_index_grows_past_its_first_capacity(lib):
    add_photos(lib, 1000, np.random.default_rng(11), MODEL, DIM)
    lib.vector_index(MODEL, DIM).save()  # room for 1250
    add_photos(lib, 400, np.random.default_rng(12), MODEL, DIM)
    index = lib.vector_index(MODEL, DIM)  # caught up beyond the first capacity
    assert index.rebuilt_because is None and len(index) == 1400
    index.save()
    size = json.loads(index.marker_path.read_text())["file_size"]
    assert index.health(lib.catalogue).startswith(f"ok, 1400 vectors, {size / 2**20:.1f} MiB, ")  # 0.3 MiB
    labels, matrix = _vectors(lib)
    found, _ = index.search(matrix[-1], 1)
    assert list(found) == [labels[-1]]


def test_a_recall_that_just_meets_the_target_keeps_ef(lib):
    add_photos(lib, 400, np.random.default_rng(13), MODEL, DIM)
    index = lib.vector_index(MODEL, DIM)
    reached = index.tune(target=0.0)  # measured at the floor, ef 128
    assert index.ef == 128
    assert index.tune(target=reached) == reached and (index.ef, index.M) == (128, 16)  # nothing raised, nothing rebuilt


def test_status_describes_a_good_index_and_names_each_problem(lib):
    from desktop_app.library.vector_index import VectorIndex

    add_photos(lib, 20, np.random.default_rng(14), MODEL, DIM)
    index = lib.vector_index(MODEL, DIM)
    index.save()
    marker = json.loads(index.marker_path.read_text())
    assert index.health(lib.catalogue).startswith(f"ok, 20 vectors, {marker['file_size'] / 2**20:.1f} MiB, recall@10 ")
    index.marker_path.write_text(json.dumps({**marker, "recall": 0.0}))  # a poor recall is still a valid figure
    assert index.health(lib.catalogue).startswith("ok, 20 vectors")
    # the catalogue was replaced (restored from a backup, another library's copy): not this index's
    other = VectorIndex(index.directory, MODEL, DIM, "another-catalogue")
    assert other.health(lib.catalogue) == "needs a rebuild: it was made for another catalogue (rebuilt on the next search or index run)"
    path = index.directory / marker["file"]
    path.write_bytes(path.read_bytes()[:-100])
    assert index.health(lib.catalogue) == (
        "needs a rebuild: the index file has the wrong size (truncated or replaced) (rebuilt on the next search or index run)"
    )
    index.marker_path.write_text("[]")  # JSON, but not a marker
    assert index.health(lib.catalogue) == "needs a rebuild: its marker is unreadable (rebuilt on the next search or index run)"


def test_an_index_that_caught_up_is_marked_to_be_saved(lib):
    add_photos(lib, 20, np.random.default_rng(15), MODEL, DIM)
    lib.vector_index(MODEL, DIM).save()
    add_photos(lib, 3, np.random.default_rng(16), MODEL, DIM)
    index = lib.vector_index(MODEL, DIM)
    assert index.rebuilt_because is None and len(index) == 23 and index.dirty  # saved by the search service
