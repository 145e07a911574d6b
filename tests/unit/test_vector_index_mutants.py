"""Behaviours of desktop_app/library/vector_index.py that mutation testing
(benchmarks/mutation_score.py) found untested: searching the smallest libraries, the scores a
search returns, a damaged marker's recall figures, when a saved index counts as current (what lets
`pixfind index` skip opening it), damaged files rebuilt with nothing lost, and catching up."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

from desktop_app.library import vector_index as vi
from desktop_app.library.catalogue import Embedding
from desktop_app.library.indexer import delete_photos, delete_photos_vectors
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


def test_photos_of_another_model_are_not_changes_waiting_for_this_index(lib):
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


def test_an_index_grows_past_its_first_capacity_and_status_shows_its_size(lib):
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


# ---------------------------------------------------------------- is_current, damage, catching up


def _saved(lib: Library) -> vi.VectorIndex:
    """The saved index as `pixfind index` sees it before deciding whether to open it."""
    return vi.VectorIndex(lib.vectors_dir, MODEL, DIM, lib.catalogue_id)


def _opening_changes_nothing(lib: Library) -> bool:
    opened = lib.vector_index(MODEL, DIM)
    return opened.rebuilt_because is None and not opened.dirty


def _assert_current(lib: Library, expected: bool) -> None:
    # is_current is the promise that opening (and saving) the index would change nothing
    assert _saved(lib).is_current(lib.catalogue) is expected
    assert _opening_changes_nothing(lib) is expected


def _bump_mtime(path) -> None:
    st = os.stat(path)
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))


def _flip_a_byte(path) -> None:
    """Same size, one byte changed, and a new mtime (as any write gives it)."""
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    _bump_mtime(path)


def _index_file(lib: Library):
    return lib.vectors_dir / json.loads((lib.vectors_dir / f"{MODEL}.json").read_text())["file"]


def test_an_index_is_current_exactly_while_the_catalogue_has_not_changed(lib):
    assert _saved(lib).is_current(lib.catalogue) is False  # nothing saved yet
    ids = add_photos(lib, 30, np.random.default_rng(20), MODEL, DIM)
    lib.vector_index(MODEL, DIM).save()
    _assert_current(lib, True)
    add_photos(lib, 2, np.random.default_rng(21), MODEL, DIM)
    _assert_current(lib, False)
    lib.vector_index(MODEL, DIM).save()
    _assert_current(lib, True)
    with lib.catalogue.session() as s, s.begin():
        delete_photos(s, lib.catalogue, ids[:1])
    _assert_current(lib, False)
    lib.vector_index(MODEL, DIM).save()
    _assert_current(lib, True)
    add_photos(lib, 3, np.random.default_rng(22), "other@model", DIM)
    _assert_current(lib, False)  # the change number moved on: only opening tells nothing here changed
    assert lib.vector_index(MODEL, DIM).rebuilt_because is None and len(lib.vector_index(MODEL, DIM)) == 31
    assert vi.VectorIndex(lib.vectors_dir, MODEL, DIM, "another-catalogue").is_current(lib.catalogue) is False
    assert vi.VectorIndex(lib.vectors_dir, MODEL, DIM * 2, lib.catalogue_id).is_current(lib.catalogue) is False


def test_an_index_missing_a_photo_at_the_same_change_number_is_not_current(lib):
    ids = add_photos(lib, 30, np.random.default_rng(23), MODEL, DIM)
    index = lib.vector_index(MODEL, DIM)
    index.index.mark_deleted(ids[0])  # as a buggy or foreign writer might have saved it
    index.live.discard(ids[0])
    index.deleted.add(ids[0])
    index.save()
    assert _saved(lib).is_current(lib.catalogue) is False
    reopened = lib.vector_index(MODEL, DIM)
    assert reopened.rebuilt_because == "it does not hold the same photos as the catalogue" and len(reopened) == 30


def test_an_index_whose_recall_is_due_is_not_current(lib):
    add_photos(lib, 10, np.random.default_rng(24), MODEL, DIM)
    lib.vector_index(MODEL, DIM).save()
    assert _marker(lib)["recall"] is None  # too few vectors to measure: exact, nothing due
    _assert_current(lib, True)
    add_photos(lib, 10, np.random.default_rng(25), MODEL, DIM)
    lib.vector_index(MODEL, DIM).save()
    assert _marker(lib)["recall_count"] == 20
    add_photos(lib, 2, np.random.default_rng(26), MODEL, DIM)
    lib.vector_index(MODEL, DIM).save()
    # grown by exactly a tenth (22 = 20 * 1.1): not more, so the figure still stands
    assert (_marker(lib)["count"], _marker(lib)["recall_count"]) == (22, 20)
    _assert_current(lib, True)
    marker = _marker(lib)
    for stale in ({"recall_count": 19}, {"recall": None}, {"recall_count": None}):  # grown by more, or never measured
        _write(lib, {**marker, **stale})
        _assert_current(lib, False)
    old = {k: v for k, v in marker.items() if k not in ("recall", "recall_count")}  # written before recall was measured
    _write(lib, old)
    _assert_current(lib, False)


def _marker(lib: Library) -> dict:
    return json.loads((lib.vectors_dir / f"{MODEL}.json").read_text())


def _write(lib: Library, marker: dict) -> None:
    (lib.vectors_dir / f"{MODEL}.json").write_text(json.dumps(marker))


def test_an_untouched_index_file_is_trusted_without_hashing_and_a_touched_one_is_hashed(lib, monkeypatch):
    add_photos(lib, 30, np.random.default_rng(27), MODEL, DIM)
    lib.vector_index(MODEL, DIM).save()
    hashed = []
    real = vi.file_checksum
    monkeypatch.setattr(vi, "file_checksum", lambda path: hashed.append(path) or real(path))
    assert _saved(lib).is_current(lib.catalogue) and lib.vector_index(MODEL, DIM).rebuilt_because is None
    assert hashed == []  # same size and mtime as when it was written and hashed
    _bump_mtime(_index_file(lib))  # touched (copied back, restored), content intact
    assert _saved(lib).is_current(lib.catalogue) and len(hashed) == 1
    assert lib.vector_index(MODEL, DIM).rebuilt_because is None and len(hashed) == 2


def test_a_writer_records_the_mtime_an_old_marker_lacks_so_later_checks_skip_the_hash(lib, monkeypatch):
    add_photos(lib, 30, np.random.default_rng(28), MODEL, DIM)
    lib.vector_index(MODEL, DIM).save()
    old = {k: v for k, v in _marker(lib).items() if k != "file_mtime_ns"}
    _write(lib, old)
    hashed = []
    real = vi.file_checksum
    monkeypatch.setattr(vi, "file_checksum", lambda path: hashed.append(path) or real(path))
    assert _saved(lib).is_current(lib.catalogue) and len(hashed) == 1
    assert _marker(lib) == old  # a reader (no writer lock) leaves the marker alone
    assert _saved(lib).is_current(lib.catalogue, writer=True) and len(hashed) == 2
    assert _marker(lib) == {**old, "file_mtime_ns": _index_file(lib).stat().st_mtime_ns}
    assert _saved(lib).is_current(lib.catalogue) and len(hashed) == 2


def test_a_corrupt_index_file_is_not_current_and_is_rebuilt_with_every_photo(lib):
    ids = add_photos(lib, 30, np.random.default_rng(29), MODEL, DIM)
    lib.vector_index(MODEL, DIM).save()
    _flip_a_byte(_index_file(lib))  # hnswlib itself would load it: only the checksum tells
    assert _saved(lib).is_current(lib.catalogue) is False
    rebuilt = lib.vector_index(MODEL, DIM)
    assert rebuilt.rebuilt_because == "the index file is corrupt (it does not match its checksum)"
    assert rebuilt.live == set(ids) and rebuilt.dirty
    labels, matrix = _vectors(lib)
    found, _ = rebuilt.search(matrix[7], 1)
    assert list(found) == [labels[7]]


def test_status_of_a_library_without_an_index(lib):
    add_photos(lib, 5, np.random.default_rng(30), MODEL, DIM)
    assert _saved(lib).health(lib.catalogue) == "no index file yet (built on the next search or index run)"


def test_the_first_save_creates_the_index_folder(tmp_path, lib):
    add_photos(lib, 5, np.random.default_rng(31), MODEL, DIM)
    folder = tmp_path / "elsewhere" / "vectors"
    index = vi.VectorIndex(folder, MODEL, DIM, lib.catalogue_id).open(lib.catalogue)
    index.save()
    assert vi.VectorIndex(folder, MODEL, DIM, lib.catalogue_id).is_current(lib.catalogue)


def test_catch_up_reports_how_many_vectors_changed(lib):
    ids = add_photos(lib, 20, np.random.default_rng(32), MODEL, DIM)
    index = lib.vector_index(MODEL, DIM)
    assert index.catch_up(lib.catalogue) == 0
    add_photos(lib, 3, np.random.default_rng(33), MODEL, DIM)
    assert index.catch_up(lib.catalogue) == 3
    with lib.catalogue.session() as s, s.begin():
        delete_photos(s, lib.catalogue, ids[:2])
    assert index.catch_up(lib.catalogue) == 2 and len(index) == 21
    assert index.catch_up(lib.catalogue) == 0


def test_a_photo_encoded_again_after_its_vector_was_dropped_stays_in_the_index(lib):
    """A photo's content changed while indexing with another model drops this model's vector; the
    next index run with this model encodes it again. The old removal must not undo the new vector."""
    ids = add_photos(lib, 20, np.random.default_rng(34), MODEL, DIM)
    lib.vector_index(MODEL, DIM).save()
    with lib.catalogue.session() as s, s.begin():
        delete_photos_vectors(s, lib.catalogue, ids[:1], keep_model="other@model")
    index = lib.vector_index(MODEL, DIM)
    assert ids[0] not in index.live and index.rebuilt_because is None
    index.save()
    vector = np.random.default_rng(35).standard_normal(DIM).astype(np.float32)
    vector /= np.linalg.norm(vector)
    with lib.catalogue.session() as s, s.begin():
        s.merge(Embedding(photo_id=ids[0], model=MODEL, vector=vector.tobytes(), seq=lib.catalogue.next_seq(s)))
    lib.vector_index(MODEL, DIM).save()
    add_photos(lib, 1, np.random.default_rng(36), MODEL, DIM)  # any later change makes the next open catch up
    again = lib.vector_index(MODEL, DIM)
    assert again.rebuilt_because is None and ids[0] in again.live and len(again) == 21
    found, _ = again.search(vector, 1)
    assert list(found) == [ids[0]]


def test_an_index_grows_by_half_its_capacity_so_catching_up_one_photo_at_a_time_rarely_resizes(lib):
    add_photos(lib, 1000, np.random.default_rng(37), MODEL, DIM)
    index = lib.vector_index(MODEL, DIM)
    capacity = index.index.get_max_elements()
    assert capacity == 1250  # room for a quarter more
    add_photos(lib, 251, np.random.default_rng(38), MODEL, DIM)
    index.catch_up(lib.catalogue)
    assert index.index.get_max_elements() == capacity * 3 // 2
    assert len(index) == 1251


def test_the_recall_of_a_library_of_duplicates_is_measured_the_same_every_time(lib):
    """Identical photos have identical vectors: which 10 of the ties are "nearest" is arbitrary, so
    the figure depends on the sampled queries; the seeded sample keeps it (and the marker, and
    `pixfind status`) the same from one measurement to the next."""
    add_photos(lib, 300, np.random.default_rng(39), MODEL, DIM)
    base = np.random.default_rng(40).standard_normal((10, DIM)).astype(np.float32)
    base /= np.linalg.norm(base, axis=1, keepdims=True)
    with lib.catalogue.session() as s, s.begin():
        for i, row in enumerate(s.query(Embedding).filter(Embedding.model == MODEL).order_by(Embedding.photo_id)):
            row.vector = base[i % 10].tobytes()  # 30 copies of each of 10 photos
    index = lib.vector_index(MODEL, DIM)
    figures = {index.tune(target=0.0) for _ in range(3)}
    assert len(figures) == 1 and figures.pop() < 1.0  # ties do cost recall here: the sample matters
