"""Search through the CLI: filters, cut-off, sorting, output; near-duplicates; watch.

The query language itself is tested in test_query_language.py."""

from __future__ import annotations

import json
import os
import signal
import time

import pytest
from PIL import Image

from desktop_app.library import query
from tests.library_helpers import db_rows, index_json, make_photo, pixfind_process, run_cli


@pytest.fixture
def indexed(tmp_path, capsys, tiny_model, library_dir):
    root = tmp_path / "photos"
    make_photo(root / "2019" / "old.jpg", seed=1, exif={0x8769: {0x9003: "2019:05:01 12:00:00"}, 0x010F: "Acme", 0x0110: "Z1"})
    make_photo(root / "2023" / "new.jpg", seed=2, exif={0x8769: {0x9003: "2023:08:01 12:00:00"}})
    make_photo(
        root / "2023" / "gps.jpg",
        seed=3,
        exif={0x8769: {0x9003: "2023:02:01 12:00:00"}, 0x8825: {1: "N", 2: (48.0, 51.0, 0.0), 3: "E", 4: (2.0, 21.0, 0.0)}},
    )
    index_json(capsys, library_dir, root)
    return root


def _search(capsys, library_dir, *args):
    code, out, err = run_cli(capsys, "search", *args, "--json", "--library", library_dir)
    assert code == 0, err
    return [os.path.basename(r["path"]) for r in json.loads(out)], json.loads(out)


def test_search_filters_sort_and_cutoff(capsys, indexed, library_dir):
    names, rows = _search(capsys, library_dir, "--image", indexed / "2023" / "new.jpg")
    assert names[0] == "new.jpg" and rows[0]["score"] == pytest.approx(1.0, abs=1e-4) and len(names) == 3
    assert [r["rank"] for r in rows] == [1, 2, 3] and rows[0]["date"] == "2023-08-01 12:00:00"
    assert _search(capsys, library_dir, "a photo", "--folder", indexed / "2019")[0] == ["old.jpg"]
    assert sorted(_search(capsys, library_dir, "a photo", "--after", "2020-01-01")[0]) == ["gps.jpg", "new.jpg"]
    assert _search(capsys, library_dir, "a photo", "--before", "2020-01-01")[0] == ["old.jpg"]
    assert _search(capsys, library_dir, "a photo", "--camera", "acme z1")[0] == ["old.jpg"]
    assert _search(capsys, library_dir, "a photo", "--gps")[0] == ["gps.jpg"]
    assert sorted(_search(capsys, library_dir, "a photo", "--no-gps")[0]) == ["new.jpg", "old.jpg"]
    assert _search(capsys, library_dir, "a photo", "--sort", "date")[0] == ["new.jpg", "gps.jpg", "old.jpg"]
    assert _search(capsys, library_dir, "--image", indexed / "2023" / "new.jpg", "--min-score", "0.99999")[0] == ["new.jpg"]
    assert _search(capsys, library_dir, "a photo", "--limit", "1")[0].__len__() == 1
    names, _ = _search(capsys, library_dir, f"{indexed / '2019' / 'old.jpg'} - 0.5:a photo + 2:sunset")
    assert len(names) == 3

    code, out, _ = run_cli(capsys, "search", "a photo", "--library", library_dir)
    lines = out.strip().splitlines()
    assert code == 0 and lines[0].split() == ["rank", "score", "date", "path"]
    assert len(lines) == 4 and lines[1].split()[0] == "1" and lines[1].endswith(".jpg")


def test_search_errors_are_one_line(tmp_path, capsys, tiny_model, library_dir):
    code, _, err = run_cli(capsys, "search", "cats", "--library", library_dir)
    assert code == 1 and "no photos indexed" in err and len(err.strip().splitlines()) == 1
    code, _, err = run_cli(capsys, "search", "--image", tmp_path / "nope.jpg", "--library", library_dir)
    assert code == 1 and "no such image" in err


def test_duplicates_groups_resized_and_reencoded_copies(tmp_path, capsys, tiny_model, library_dir):
    root = tmp_path / "photos"
    original = make_photo(root / "a.jpg", seed=7, size=(320, 240))
    with Image.open(original) as im:
        im.resize((160, 120)).save(root / "a-small.jpg", quality=70)
        im.crop((4, 3, 316, 237)).save(root / "a-cropped.png")
    for i in range(4):
        make_photo(root / f"other{i}.jpg", seed=100 + i, size=(320, 240))
    index_json(capsys, library_dir, root)
    code, out, _ = run_cli(capsys, "duplicates", "--threshold", "0.999", "--json", "--library", library_dir)
    groups = json.loads(out)
    assert code == 0 and groups
    assert {os.path.basename(p["path"]) for p in groups[0]} == {"a.jpg", "a-small.jpg", "a-cropped.png"}
    assert groups[0][0]["path"].endswith("a.jpg")  # the largest first
    assert all(len(g) <= len(groups[0]) for g in groups)


def test_watch_indexes_new_photos(tmp_path, capsys, tiny_model, library_dir):
    root = tmp_path / "photos"
    make_photo(root / "first.jpg", seed=1)
    index_json(capsys, library_dir, root)
    proc = pixfind_process("watch", "--library", library_dir, "--settle", "0.3")
    try:
        assert "watching 1 folders" in proc.stdout.readline().decode()
        assert "unchanged" in proc.stdout.readline().decode()  # the initial refresh
        make_photo(root / "later" / "second.jpg", seed=2)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and db_rows(library_dir, "SELECT COUNT(*) FROM embeddings")[0][0] < 2:
            time.sleep(0.1)
        assert db_rows(library_dir, "SELECT COUNT(*) FROM embeddings")[0][0] == 2
        (root / "first.jpg").unlink()
        while time.monotonic() < deadline and db_rows(library_dir, "SELECT COUNT(*) FROM photos")[0][0] > 1:
            time.sleep(0.1)
        assert db_rows(library_dir, "SELECT COUNT(*) FROM photos")[0][0] == 1
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
        proc.stdout.close(), proc.stderr.close()


def test_engine_refresh_applies_photos_indexed_after_its_vector_index_opened(tmp_path, capsys, tiny_model, library_dir,
                                                                           monkeypatch):
    from desktop_app import model_store
    from desktop_app.encoder import Encoder
    from desktop_app.library import search
    from desktop_app.library.library_dir import Library

    monkeypatch.setattr(search, "EXACT_LIMIT", 0)  # every search goes through hnswlib, as in a library of 20k+
    photos = tmp_path / "photos"
    for i in range(3):
        make_photo(photos / f"{i}.jpg", seed=i)
    index_json(capsys, library_dir, photos)
    engine = search.SearchEngine(Library(library_dir), Encoder(model_store.resolve(None).path))
    late = make_photo(photos / "late.jpg", seed=9)
    vector = engine.query_vector(query.parse(images=[str(late)]))
    assert len(engine.search(vector, limit=10)) == 3  # opens the vector index
    index_json(capsys, library_dir, photos)
    assert len(engine.search(vector, limit=10)) == 3  # the open index does not see the new photo ...
    engine.refresh()
    hits = engine.search(vector, limit=10)
    assert len(hits) == 4 and str(hits[0].photo.path).endswith("late.jpg") and hits[0].score == pytest.approx(1.0, abs=1e-4)
