"""Behaviours of desktop_app/library/indexer.py that mutation testing (benchmarks/mutation_score.py)
found untested: photos removed several at a time leave the vector index consistent, the stage
timings of `pixfind index --json` add up over batches, the disk-full estimate, the skip reason."""

from __future__ import annotations

import os

import numpy as np
import pytest

from desktop_app.library.indexer import IndexReport, _reason, _space_needed, delete_photos
from desktop_app.library.library_dir import Library
from tests.library_helpers import db_rows, index_json, make_photo
from tests.vector_helpers import add_photos

MODEL, DIM = "m@indexer", 16


@pytest.fixture
def lib(tmp_path):
    with Library(tmp_path / "lib") as library:
        yield library


def test_photos_removed_together_leave_the_index_by_catch_up(lib):
    ids = add_photos(lib, 30, np.random.default_rng(0), MODEL, DIM)
    lib.vector_index(MODEL, DIM).save()
    gone = ids[3:8]
    with lib.catalogue.session() as s, s.begin():
        delete_photos(s, lib.catalogue, gone)  # as the indexer removes the photos of deleted files
    index = lib.vector_index(MODEL, DIM)
    # each removal has its own change number after the save: caught up, not rebuilt from scratch
    assert index.rebuilt_because is None
    assert index.live == set(ids) - set(gone)


def test_stage_timings_add_up_over_batches():
    report = IndexReport()
    for seconds in (0.5, 0.25, 1.0):
        report.add_time("decode", seconds)
    report.add_time("encode", 2.0)
    assert report.timings == {"decode": 1.75, "encode": 2.0}


def test_the_disk_full_estimate_keeps_room_for_the_journal():
    assert _space_needed(0, 512) == 8 * 2**20  # nothing left to encode: SQLite's journal still needs room
    assert _space_needed(-3, 512) == 8 * 2**20
    assert _space_needed(10, 512) == 10 * (2 * 4 * 512 + 1024 + 24 * 1024) + 8 * 2**20


def test_a_skip_reason_loses_only_the_path_load_image_put_in_front():
    assert _reason("/p/a.jpg", "/p/a.jpg: empty file (0 bytes)") == "empty file (0 bytes)"
    assert _reason("/p/a.jpg", "cannot decode (ValueError: x)") == "cannot decode (ValueError: x)"
    assert _reason("/p/a.jpg", "/p/a.jpgx: other") == "/p/a.jpgx: other"


# --------------------------------------------------------------------------- several folders, through `pixfind index`


def test_indexing_one_folder_leaves_the_other_folders_photos_and_problems_alone(tmp_path, capsys, tiny_model, library_dir):
    """Two folders whose paths sort one after the other (a/, b/): re-indexing the first by its path must
    not take the second's photos for deleted files, nor drop the second's skipped files."""
    for folder, seed in (("a", 0), ("b", 10)):
        for i in range(2):
            make_photo(tmp_path / folder / f"p{i}.jpg", seed=seed + i)
        (tmp_path / folder / "empty.jpg").write_bytes(b"")
    both = index_json(capsys, library_dir, tmp_path / "a", tmp_path / "b")
    assert (both["found"], both["encoded"], len(both["skipped"])) == (6, 4, 2)  # found adds up over the folders
    for folder in ("a", "b"):  # each in turn: the other one sorts after it, then before it
        assert index_json(capsys, library_dir, tmp_path / folder)["removed"] == 0
    assert db_rows(library_dir, "SELECT COUNT(*) FROM photos")[0][0] == 4
    skipped = sorted(os.path.relpath(os.fsdecode(p), tmp_path) for (p,) in db_rows(library_dir, "SELECT path FROM skipped_files"))
    assert skipped == ["a/empty.jpg", "b/empty.jpg"]
    make_photo(tmp_path / "b" / "empty.jpg", seed=30)  # the user mends the file: it leaves the skipped list
    assert index_json(capsys, library_dir, tmp_path / "b")["encoded"] == 1
    assert [os.path.basename(os.fsdecode(p)) for (p,) in db_rows(library_dir, "SELECT path FROM skipped_files")] == ["empty.jpg"]


def test_progress_counts_towards_the_photos_to_encode_and_saves_on_schedule(tmp_path, tiny_model, library_dir):
    from desktop_app import model_store
    from desktop_app.encoder import Encoder
    from desktop_app.library.indexer import Indexer

    for i in range(3):
        make_photo(tmp_path / "photos" / f"p{i}.jpg", seed=i)
    calls = []
    with Library(library_dir) as lib:
        indexer = Indexer(lib, Encoder(model_store.resolve("tiny").path), batch_size=1, workers=1,
                          progress=lambda done, total: calls.append((done, total)), save_every=0.0)  # fmt: skip
        report = indexer.run([str(tmp_path / "photos")])
        assert report.encoded == 3 and report.index_error is None
        assert calls == [(0, 3), (1, 3), (2, 3), (3, 3)]  # what the window's bar and the CLI's counter show
        assert lib.vector_index(indexer.model, indexer.encoder.dim).rebuilt_because is None  # saved as it went
