"""Incremental indexing: new, unchanged, changed, moved, copied and deleted photos."""

from __future__ import annotations

import os
import shutil

import numpy as np
from sqlalchemy import select

from desktop_app.library import migrations
from desktop_app.library.catalogue import Base, Embedding, Photo
from desktop_app.library.library_dir import Library
from tests.library_helpers import db_rows, index_json, make_photo, run_cli


def _photos(tmp_path, n=6):
    root = tmp_path / "photos"
    for i in range(n):
        make_photo(root / ("sub" if i % 2 else "") / f"p{i}.jpg", seed=i)
    return root


def test_index_then_reindex_only_encodes_what_changed(tmp_path, capsys, tiny_model, library_dir):
    root = _photos(tmp_path)
    first = index_json(capsys, library_dir, root)
    assert (first["found"], first["encoded"], first["skipped"]) == (6, 6, [])

    again = index_json(capsys, library_dir, root)
    assert (again["encoded"], again["unchanged"]) == (0, 6)

    shutil.move(root / "p0.jpg", root / "sub" / "renamed.jpg")  # moved + renamed
    shutil.copy(root / "p2.jpg", root / "copy-of-p2.jpg")  # copied
    (root / "sub" / "p1.jpg").unlink()  # deleted
    make_photo(root / "p4.jpg", seed=99)  # changed content, same name
    make_photo(root / "new.jpg", seed=42)  # new
    report = index_json(capsys, library_dir)  # no folder: refresh the library's folders
    assert report["moved"] == 1 and report["copied"] == 1 and report["removed"] == 1
    assert report["encoded"] == 2  # the changed and the new photo, nothing else

    paths = {os.path.relpath(p, root) for (p,) in db_rows(library_dir, "SELECT CAST(path AS TEXT) FROM photos")}
    assert paths == {"sub/renamed.jpg", "copy-of-p2.jpg", "p2.jpg", "p4.jpg", "new.jpg", "sub/p3.jpg", "sub/p5.jpg"}
    (count,) = db_rows(library_dir, "SELECT COUNT(*) FROM embeddings")[0]
    assert count == 7

    with Library(library_dir) as lib:
        with lib.catalogue.session() as s:
            vectors = {
                os.path.basename(p.path): np.frombuffer(e.vector, np.float32)
                for p, e in s.execute(select(Photo, Embedding).join(Embedding, Embedding.photo_id == Photo.id))
            }
        (model,) = {e for (e,) in db_rows(library_dir, "SELECT DISTINCT model FROM embeddings")}
        index = lib.vector_index(model, 64)
        assert len(index) == 7 and not index.rebuilt_because
    np.testing.assert_array_equal(vectors["copy-of-p2.jpg"], vectors["p2.jpg"])


def test_metadata_is_catalogued(tmp_path, capsys, tiny_model, library_dir):
    exif = {
        0x010F: "Acme",
        0x0110: "Snapper 3000",
        0x0112: 6,  # rotated: width and height swap
        0x8769: {0x9003: "2021:07:04 10:30:00"},
        0x8825: {1: "S", 2: (33.0, 51.0, 0.0), 3: "E", 4: (151.0, 12.0, 36.0)},
    }
    make_photo(tmp_path / "photos" / "exif.jpg", seed=1, size=(200, 100), exif=exif)
    index_json(capsys, library_dir, tmp_path / "photos")
    with Library(library_dir) as lib, lib.catalogue.session() as s:
        photo = s.scalars(select(Photo)).one()
    assert (photo.width, photo.height, photo.orientation) == (100, 200, 6)
    assert (photo.camera_make, photo.camera_model) == ("Acme", "Snapper 3000")
    assert abs(photo.gps_lat + 33.85) < 1e-6 and abs(photo.gps_lon - 151.21) < 1e-6
    assert photo.taken_at is not None and photo.thumbnail
    assert (library_dir / "thumbnails" / photo.thumbnail).is_file()


def test_schema_from_migrations_matches_the_models(tmp_path):
    with Library(tmp_path / "lib") as lib:
        for table in Base.metadata.sorted_tables:
            cols = {r[1] for r in db_rows(lib.directory, f"PRAGMA table_info({table.name})")}
            assert cols == set(table.columns.keys()), table.name
        assert db_rows(lib.directory, "PRAGMA user_version")[0][0] == migrations.LATEST
        assert db_rows(lib.directory, "PRAGMA journal_mode")[0][0] == "wal"


def test_library_from_a_newer_pixfind_is_refused(tmp_path, capsys, tiny_model):
    import sqlite3

    lib = tmp_path / "lib"
    Library(lib).close()
    conn = sqlite3.connect(lib / "catalogue.db")
    conn.execute(f"PRAGMA user_version = {migrations.LATEST + 1}")
    conn.close()
    code, _, err = run_cli(capsys, "status", "--library", lib)
    assert code == 1 and "newer pixfind" in err and "Traceback" not in err


def test_status_reports_folders_model_errors_and_index(tmp_path, capsys, tiny_model, library_dir):
    root = _photos(tmp_path, 3)
    (root / "broken.jpg").write_bytes(b"")
    index_json(capsys, library_dir, root)
    code, out, _ = run_cli(capsys, "status", "--library", library_dir, "--errors")
    assert code == 0
    assert f"{root}: 3 photos" in out and "active model: tiny: 3 of 3 photos encoded" in out
    assert "vector index: ok, 3 vectors" in out
    assert "broken.jpg: empty file (0 bytes)" in out


def test_index_errors_are_one_line(tmp_path, capsys, tiny_model, library_dir):
    code, _, err = run_cli(capsys, "index", tmp_path / "nowhere", "--library", library_dir)
    assert code == 1 and err.strip() == f"pixfind: error: {tmp_path / 'nowhere'}: no such folder"
    code, _, err = run_cli(capsys, "index", "--library", library_dir)
    assert code == 1 and "no folders yet" in err


def test_formats_and_colour_modes(tmp_path, capsys, tiny_model, library_dir):
    from PIL import Image

    import desktop_app.library.decode  # noqa: F401 - registers the HEIF plugin with Pillow

    root = tmp_path / "photos"
    root.mkdir()
    base = Image.open(make_photo(tmp_path / "base.jpg", seed=5)).convert("RGB")
    base.save(root / "photo.heic")  # through pillow-heif
    base.convert("CMYK").save(root / "cmyk.jpg")
    base.convert("P").save(root / "palette.png", transparency=0)
    base.convert("RGBA").save(root / "alpha.png")
    Image.fromarray(np.asarray(base.convert("L"), dtype=np.uint16) * 257).save(root / "deep16.png")
    base.save(root / "plain.webp")
    report = index_json(capsys, library_dir, root)
    assert report["skipped"] == [] and report["encoded"] == 6
