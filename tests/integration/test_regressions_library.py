"""Regression tests for issue 17's planted library bugs, through real `pixfind` processes.

Indexing: a batch's photo rows and vectors commit together (a failure or SIGKILL between them
never leaves a photo without a vector); a file changed under the same size is seen through its
mtime; a changed file loses every model's old vector; the writer lock keeps a second indexer
out. Search: `--after` includes its bound, `--before` excludes it, `--camera` is a substring
match, and the window's custom date range includes its last day.
"""

from __future__ import annotations

import json
import os
import random
import sqlite3
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.integration.paused_indexer import start as paused_indexer
from tests.integration.paused_indexer import wait as wait_paused
from tests.library_helpers import db_rows, index_json, make_photo, pixfind_process, run_cli

DATE = 0x9003  # EXIF DateTimeOriginal (in the Exif IFD 0x8769)


def _counts(library: Path) -> tuple[int, int]:
    return (db_rows(library, "SELECT COUNT(*) FROM photos")[0][0], db_rows(library, "SELECT COUNT(*) FROM embeddings")[0][0])


def _orphans(library: Path) -> list[bytes]:
    """Photos without a vector (the library has one model in these tests)."""
    return [p for (p,) in db_rows(library, "SELECT path FROM photos WHERE id NOT IN (SELECT photo_id FROM embeddings)")]


def _finish(proc: subprocess.Popen, timeout: float = 120) -> tuple[int, str]:
    _, err = proc.communicate(timeout=timeout)
    return proc.returncode, err.decode(errors="replace")


# --------------------------------------------------------------------------- one transaction per batch


def test_a_batch_that_fails_to_store_its_vectors_stores_no_photo_rows(tmp_path, capsys, tiny_model, library_dir):
    """A real failure while the third batch's vectors are written (SQLite refuses the insert, as a full
    disk would) in a real `pixfind index`: the batch's photo rows must roll back with it."""
    root = tmp_path / "photos"
    root.mkdir()
    assert index_json(capsys, library_dir, root)["encoded"] == 0  # creates the catalogue
    conn = sqlite3.connect(library_dir / "catalogue.db")
    conn.execute(
        "CREATE TRIGGER fail_third_batch BEFORE INSERT ON embeddings WHEN (SELECT COUNT(*) FROM embeddings) >= 4 "
        "BEGIN SELECT RAISE(ABORT, 'injected failure: no space left for this vector'); END"
    )
    conn.commit()
    conn.close()
    for i in range(10):
        make_photo(root / f"p{i}.jpg", seed=i)
    code, err = _finish(pixfind_process("index", root, "--library", library_dir, "--batch-size", "2", "--workers", "1"))
    assert code != 0 and "injected failure" in err, err
    assert _counts(library_dir) == (4, 4)  # the two batches before the failure, nothing of the third
    assert _orphans(library_dir) == []

    conn = sqlite3.connect(library_dir / "catalogue.db")
    conn.execute("DROP TRIGGER fail_third_batch")
    conn.commit()
    conn.close()
    report = index_json(capsys, library_dir)
    assert report["encoded"] == 6 and _counts(library_dir) == (10, 10)


def test_sigkill_at_random_moments_never_leaves_a_photo_without_a_vector(tmp_path, capsys, tiny_model, library_dir):
    """`pixfind index` killed with SIGKILL at random moments while it commits: after every kill each
    photo row has its vector, and the final run completes the library."""
    root, total = tmp_path / "photos", 80  # batches of one: far more than one run can finish in the 50 ms before a kill
    for i in range(total):
        make_photo(root / f"p{i:02d}.jpg", seed=i, size=(320, 240))
    rng = random.Random(os.getpid())
    kills = 0
    for _ in range(3):
        before = _counts(library_dir)[1] if (library_dir / "catalogue.db").exists() else 0
        if before == total:
            break
        proc = pixfind_process("index", root, "--library", library_dir, "--batch-size", "1", "--workers", "1")
        deadline = time.monotonic() + 120
        while proc.poll() is None and time.monotonic() < deadline:  # wait until it is committing
            try:
                if _counts(library_dir)[1] > before:
                    break
            except sqlite3.Error:
                pass
            time.sleep(0.005)
        time.sleep(rng.uniform(0, 0.05))
        if proc.poll() is None:
            proc.kill()
            kills += 1
        proc.communicate()
        assert _orphans(library_dir) == [], f"a photo without its vector after kill {kills}"
    assert kills >= 1
    index_json(capsys, library_dir)
    assert _counts(library_dir) == (total, total) and _orphans(library_dir) == []


# --------------------------------------------------------------------------- changed files


def _bmp(path: Path, seed: int) -> Path:
    """An uncompressed BMP: every one of the same dimensions has the same size, whatever it shows."""
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, (4, 4, 3), dtype=np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(small).resize((96, 64), Image.Resampling.BICUBIC).save(path, "BMP")
    return path


def _top(capsys, library_dir, image: Path, *extra) -> tuple[str, float]:
    code, out, err = run_cli(capsys, "search", "--image", image, "--json", "--library", library_dir, *extra)
    assert code == 0, err
    best = json.loads(out)[0]
    return os.path.basename(best["path"]), best["score"]


def test_a_file_rewritten_with_the_same_size_is_seen_by_its_mtime(tmp_path, capsys, tiny_model, library_dir):
    root = tmp_path / "photos"
    photo = _bmp(root / "a.bmp", seed=1)
    _bmp(root / "other.bmp", seed=3)
    assert index_json(capsys, library_dir, root)["encoded"] == 2
    st = photo.stat()
    replacement = _bmp(tmp_path / "new.bmp", seed=2)
    assert replacement.stat().st_size == st.st_size
    photo.write_bytes(replacement.read_bytes())
    os.utime(photo, ns=(st.st_atime_ns, st.st_mtime_ns + 5_000_000_000))

    report = index_json(capsys, library_dir)
    assert (report["encoded"], report["unchanged"]) == (1, 1)
    name, score = _top(capsys, library_dir, replacement)
    assert name == "a.bmp" and score == pytest.approx(1.0, abs=1e-4)

    # only the mtime changes: nothing to encode, and the new mtime is remembered
    later = st.st_mtime_ns + 60_000_000_000
    os.utime(photo, ns=(st.st_atime_ns, later))
    report = index_json(capsys, library_dir)
    assert (report["encoded"], report["unchanged"]) == (0, 2)
    assert db_rows(library_dir, "SELECT mtime_ns FROM photos WHERE CAST(path AS TEXT) LIKE '%a.bmp'") == [(later,)]


def test_a_changed_file_loses_every_models_old_vector(tmp_path, capsys, tiny_model, library_dir):
    from model_training.export import export_and_install
    from tests.conftest import TINY_CONFIG, save_tiny_checkpoint

    root = tmp_path / "photos"
    for i in range(3):
        make_photo(root / f"p{i}.jpg", seed=i)
    other = save_tiny_checkpoint(tmp_path / "other.pth", seed=1)
    export_and_install(str(TINY_CONFIG), pretrained=None, checkpoint=other, tokenizer=None, precision="fp32",
                       name="tiny2", output=None, replace=False)
    capsys.readouterr()
    assert index_json(capsys, library_dir, root)["encoded"] == 3
    assert index_json(capsys, library_dir, root, extra=("--model", "tiny2"))["encoded"] == 3

    changed = make_photo(root / "p1.jpg", seed=99, size=(200, 150))
    assert index_json(capsys, library_dir)["encoded"] == 1  # the active model, tiny
    per_model = dict(db_rows(library_dir, "SELECT substr(model, 1, instr(model, '@') - 1), COUNT(*) FROM embeddings GROUP BY 1"))
    assert per_model == {"tiny": 3, "tiny2": 2}  # tiny2's vector of the old p1 is gone

    assert index_json(capsys, library_dir, extra=("--model", "tiny2"))["encoded"] == 1
    name, score = _top(capsys, library_dir, changed, "--model", "tiny2")
    assert name == "p1.jpg" and score == pytest.approx(1.0, abs=1e-4)


# --------------------------------------------------------------------------- the writer lock


def test_a_second_indexer_is_kept_out_while_the_first_runs(tmp_path, capsys, tiny_model, library_dir):
    root, total = tmp_path / "photos", 12
    for i in range(total):
        make_photo(root / f"p{i:02d}.jpg", seed=i)
    paused = tmp_path / "paused"
    first = paused_indexer(paused, 2, "index", root, "--library", library_dir, "--batch-size", "2", "--workers", "1")
    try:
        wait_paused(first, paused)
        assert _counts(library_dir) == (4, 4)
        second = pixfind_process("index", root, "--library", library_dir, "--batch-size", "2", "--workers", "1")
        try:
            code, err = _finish(second, timeout=60)
        except subprocess.TimeoutExpired:  # it waits for the lock: also correct, as long as it waits
            assert _counts(library_dir) == (4, 4)
            paused.unlink()
            code, err = _finish(second)
            assert code == 0, err
        else:
            assert code != 0 and "another pixfind is updating this library" in err, err
            assert "Traceback" not in err
            assert _counts(library_dir) == (4, 4)  # it changed nothing
            paused.unlink()
        code, err = _finish(first)
        assert code == 0, err
    finally:
        for p in (first,):
            if p.poll() is None:
                p.kill()
                p.communicate()
    paths = [p for (p,) in db_rows(library_dir, "SELECT path FROM photos")]
    assert len(paths) == len(set(paths)) == total
    assert _counts(library_dir) == (total, total) and _orphans(library_dir) == []
    code, out, err = run_cli(capsys, "status", "--library", library_dir)
    assert code == 0 and f"vector index: ok, {total} vectors" in out, out + err


# --------------------------------------------------------------------------- search filters at their bounds


@pytest.fixture
def dated(tmp_path, capsys, tiny_model, library_dir):
    root = tmp_path / "photos"
    times = {
        "before.jpg": "2021:05:04 09:59:59",
        "at.jpg": "2021:05:04 10:00:00",
        "after.jpg": "2021:05:04 10:00:01",
        "midnight.jpg": "2021:05:05 00:00:00",
        "first-day.jpg": "2021:05:01 00:00:00",
        "day-before.jpg": "2021:04:30 23:59:59",
        "last-second.jpg": "2021:05:04 23:59:59",
    }
    cameras = {"at.jpg": ("Acme Corp", "Z1 Mark II"), "after.jpg": ("Other", "Q7")}
    for i, (name, when) in enumerate(times.items()):
        exif = {0x8769: {DATE: when}}
        if name in cameras:
            exif[0x010F], exif[0x0110] = cameras[name]
        make_photo(root / name, seed=i, exif=exif)
    index_json(capsys, library_dir, root)
    return root


def _names(capsys, library_dir, *args) -> set[str]:
    code, out, err = run_cli(capsys, "search", "a photo", "--json", "--limit", "100", "--library", library_dir, *args)
    assert code == 0, err
    return {os.path.basename(r["path"]) for r in json.loads(out)}


def test_after_includes_a_photo_taken_exactly_at_the_bound(capsys, dated, library_dir):
    assert _names(capsys, library_dir, "--after", "2021-05-04 10:00:00") == {"at.jpg", "after.jpg", "midnight.jpg", "last-second.jpg"}
    assert _names(capsys, library_dir, "--after", "2021-05-05") == {"midnight.jpg"}
    assert "first-day.jpg" in _names(capsys, library_dir, "--after", "2021-05-01")


def test_before_excludes_a_photo_taken_exactly_at_the_bound(capsys, dated, library_dir):
    assert _names(capsys, library_dir, "--before", "2021-05-04 10:00:00") == {"before.jpg", "first-day.jpg", "day-before.jpg"}
    assert _names(capsys, library_dir, "--after", "2021-05-04 10:00:00", "--before", "2021-05-04 10:00:01") == {"at.jpg"}


def test_camera_matches_any_part_of_make_and_model(capsys, dated, library_dir):
    for text in ("corp", "ACME", "mark", "z1 mark ii", "acme corp z1", "Acme Corp Z1 Mark II"):
        assert _names(capsys, library_dir, "--camera", text) == {"at.jpg"}, text
    code, out, _ = run_cli(capsys, "search", "a photo", "--camera", "nikon", "--library", library_dir)
    assert code == 0 and out.strip() == "no matching photos"


def test_window_custom_date_range_includes_its_last_day(qtbot, dated, library_dir, tmp_path):
    """The window's "Custom range…" from 1 May to 4 May 2021: both whole days are in, the days around are out."""
    from PySide6.QtCore import QDate, QSettings

    from desktop_app.gui.search_bar import DATE_RANGES, SearchBar
    from desktop_app.services.library import LibraryService
    from desktop_app.services.records import SearchRequest

    bar = SearchBar(QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat))
    qtbot.addWidget(bar)
    bar.date_from.setDate(QDate(2021, 5, 1))
    bar.date_to.setDate(QDate(2021, 5, 4))
    bar.date_filter.setCurrentIndex(DATE_RANGES.index("Custom range…"))
    with LibraryService(library_dir) as service:
        service.load_model(None)
        result = service.search(SearchRequest(text="a photo", filters=bar.filters()))
    names = {os.path.basename(it.path) for it in result.items}
    assert names == {"first-day.jpg", "before.jpg", "at.jpg", "after.jpg", "last-second.jpg"}
