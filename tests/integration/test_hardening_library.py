"""Issue 12, the photo library engine: damaged, full, read-only or contended libraries end in one
clear line or a transparent recovery, and nothing indexed is lost (F6, F8-F11, F13, F14 and the
thumbnail / EXIF items). Each test drives the real `pixfind` command in a subprocess."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import struct
import subprocess
import sys
import time
import warnings
from pathlib import Path

import hnswlib
import numpy as np
import pytest
from PIL import Image

from tests.library_helpers import REPO, db_rows, make_photo, pixfind_process, small_filesystem

pytestmark = pytest.mark.timeout(300)


def pixfind(*args, timeout: float = 180) -> tuple[int, str, str]:
    """Run the real console entry point in a subprocess (PIXFIND_HOME comes from the environment)."""
    proc = subprocess.run(
        [sys.executable, "-m", "desktop_app", *[str(a) for a in args]],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    return proc.returncode, proc.stdout, proc.stderr


def assert_one_line_error(code: int, err: str, *needles: str) -> str:
    assert code == 1, err
    assert "Traceback" not in err, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("pixfind: error: "), err
    for needle in needles:
        assert needle in lines[0], err
    return lines[0]


def indexed(tmp_path: Path, library: Path, n: int = 8, name: str = "photos", size=(160, 120)) -> Path:
    root = tmp_path / name
    for i in range(n):
        make_photo(root / f"p{i:03d}.jpg", seed=i, size=size)
    code, out, err = pixfind("index", root, "--library", library, "--json")
    assert code == 0, err
    assert json.loads(out)["encoded"] == n
    return root


def marker_of(library: Path) -> tuple[Path, dict]:
    (path,) = list((library / "vectors").glob("*.json"))
    return path, json.loads(path.read_text())


def catalogue_vectors(library: Path) -> dict[int, np.ndarray]:
    return {pid: np.frombuffer(v, dtype=np.float32) for pid, v in db_rows(library, "SELECT photo_id, vector FROM embeddings")}


def assert_index_matches_catalogue(library: Path) -> None:
    _, marker = marker_of(library)
    expected = catalogue_vectors(library)
    index = hnswlib.Index(space="ip", dim=64)
    index.load_index(str(library / "vectors" / marker["file"]))
    ids = sorted(int(i) for i in index.get_ids_list())
    assert ids == sorted(expected)
    got = np.asarray(index.get_items(ids), dtype=np.float32)
    assert np.allclose(got, np.stack([expected[i] for i in ids]), atol=1e-6)


def status_json(library: Path) -> dict:
    code, out, err = pixfind("status", "--library", library, "--json")
    assert code == 0, err
    return json.loads(out)


# --------------------------------------------------------------------------- F6


_MEASURED = """
import resource, subprocess, sys
proc = subprocess.run(sys.argv[1:], capture_output=True, text=True)
print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, proc.returncode, file=sys.stderr)
sys.stdout.write(proc.stdout)
sys.stderr.write(proc.stderr)
"""


def pixfind_peak_memory(*args) -> tuple[int, str, str, float]:
    """Run pixfind from a small parent process (ru_maxrss survives fork and exec: measured from
    pytest it would include pytest's own memory); returns (exit code, stdout, stderr, peak MB)."""
    proc = subprocess.run(
        [sys.executable, "-c", _MEASURED, sys.executable, "-m", "desktop_app", *[str(a) for a in args]],
        cwd=REPO, capture_output=True, text=True, timeout=300,
    )
    first, _, err = proc.stderr.partition("\n")
    rss_kb, code = first.split()
    return int(code), proc.stdout, err, int(rss_kb) / 1024


def test_f6_extreme_aspect_png_indexed_with_bounded_memory(tmp_path, tiny_model, library_dir):
    """A ~100-byte 1x10000 PNG made the indexer allocate 2.3 GB with a 224-pixel model (the short
    side is resized to the model's input size, so the long side became millions of pixels). The
    test model's input is 32 pixels, so a 1x300000 strip shows the same (about 1 GB). Now it is
    decoded safely: indexed, with the peak memory of the whole `pixfind index` process bounded."""
    root = tmp_path / "photos"
    root.mkdir()
    Image.new("RGB", (1, 300_000), (200, 30, 30)).save(root / "strip.png")
    Image.new("RGB", (300_000, 1), (30, 30, 200)).save(root / "wide.png")
    make_photo(root / "normal.jpg", seed=1)
    assert (root / "strip.png").stat().st_size < 2000
    code, out, err, rss = pixfind_peak_memory("index", root, "--library", library_dir, "--json", "--workers", "1")
    assert code == 0, err
    assert "Traceback" not in err
    report = json.loads(out)
    assert report["encoded"] + len(report["skipped"]) == 3 and report["encoded"] >= 1
    for skipped in report["skipped"]:
        assert skipped["reason"]  # skipped with a reason, never silently
    assert rss < 400, f"peak memory {rss:.0f} MB"  # about 180 MB for a normal photo


def test_f6_search_by_a_1x8000000_image_no_memory_error(tmp_path, tiny_model, library_dir):
    """`search --image` with a 1x8,000,000 PNG was a MemoryError traceback."""
    indexed(tmp_path, library_dir, n=3)
    strip = tmp_path / "strip.png"
    Image.new("RGB", (1, 8_000_000), (10, 120, 10)).save(strip)
    code, out, err = pixfind("search", "--image", strip, "--library", library_dir, "--json")
    assert "Traceback" not in err and "MemoryError" not in err, err
    if code == 0:
        assert len(json.loads(out)) == 3
    else:
        assert_one_line_error(code, err, str(strip))


# --------------------------------------------------------------------------- F8


def _hnsw_layout(path: Path) -> dict:
    """Header fields of an hnswlib index file (hnswalg.h saveIndex)."""
    data = path.read_bytes()
    offset_level0, max_elements, count, size_per_element, label_offset, offset_data = struct.unpack_from("<6Q", data, 0)
    return {"header": 96, "count": count, "size": size_per_element, "data": offset_data, "label": label_offset}


def _corrupt_in_place(path: Path, spans) -> None:
    size = path.stat().st_size
    with open(path, "r+b") as f:
        for start, payload in spans:
            f.seek(start)
            f.write(payload)
    assert path.stat().st_size == size  # the right size: only a checksum can tell


def test_f8_corrupted_index_links_rebuilt_not_segfault(tmp_path, tiny_model, library_dir):
    """Link ids pointing far outside the graph made hnswlib crash the process (SIGSEGV, exit 139)
    and `status` said ok. Now the checksum in the marker catches it before hnswlib reads the file:
    `status` says the index needs a rebuild and `index` rebuilds it from the catalogue."""
    root = indexed(tmp_path, library_dir, n=30)
    _, marker = marker_of(library_dir)
    hnsw = library_dir / "vectors" / marker["file"]
    layout = _hnsw_layout(hnsw)
    links = (layout["data"] - 4) // 4
    spans = [
        (layout["header"] + i * layout["size"], struct.pack("<I", links) + struct.pack("<I", 0x7FFFFFF0) * links)
        for i in range(layout["count"])
    ]
    _corrupt_in_place(hnsw, spans)

    health = status_json(library_dir)["active_model"]["index"]
    assert not health.startswith("ok"), health
    make_photo(root / "new.jpg", seed=99)
    code, out, err = pixfind("index", "--library", library_dir, "--json")
    assert code == 0, f"exit {code}: {err}"
    assert json.loads(out)["encoded"] == 1
    assert_index_matches_catalogue(library_dir)
    assert status_json(library_dir)["active_model"]["index"].startswith("ok, 31 vectors")


def test_f8_corrupted_index_vectors_detected_and_rebuilt(tmp_path, tiny_model, library_dir):
    """Flipped vector bytes gave silently wrong results while `status` said ok."""
    indexed(tmp_path, library_dir, n=12)
    _, marker = marker_of(library_dir)
    hnsw = library_dir / "vectors" / marker["file"]
    layout = _hnsw_layout(hnsw)
    spans = [(layout["header"] + i * layout["size"] + layout["data"], b"\x00\x00\x80\x7f" * 8) for i in range(layout["count"])]
    _corrupt_in_place(hnsw, spans)

    health = status_json(library_dir)["active_model"]["index"]
    assert not health.startswith("ok") and "checksum" in health, health
    code, _, err = pixfind("index", "--library", library_dir)
    assert code == 0, err
    assert_index_matches_catalogue(library_dir)
    assert status_json(library_dir)["active_model"]["index"].startswith("ok, 12 vectors")


# --------------------------------------------------------------------------- F9


def _leaf_page_of(library: Path, table: str) -> tuple[int, int]:
    """(page size, page number) of the right-most leaf of a table's b-tree."""
    conn = sqlite3.connect(library / "catalogue.db")
    try:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        page_size = conn.execute("PRAGMA page_size").fetchone()[0]
        page = conn.execute("SELECT rootpage FROM sqlite_master WHERE name = ?", (table,)).fetchone()[0]
    finally:
        conn.close()
    data = (library / "catalogue.db").read_bytes()
    while True:
        start = (page - 1) * page_size + (100 if page == 1 else 0)
        kind = data[start]
        if kind == 0x0D:  # table leaf
            return page_size, page
        assert kind == 0x05, kind  # table interior: follow the right-most pointer
        page = struct.unpack_from(">I", data, start + 8)[0]


def test_f9_garbage_page_in_catalogue_explained_then_repaired(tmp_path, tiny_model, library_dir):
    """A garbage page in catalogue.db made every command a SQLAlchemy DatabaseError traceback. Now:
    one line pointing at `pixfind library check` / `repair`; check finds it, repair salvages the
    readable rows (backing up the damaged file) and rebuilds the vector index, and the next
    `pixfind index` re-encodes exactly what was lost."""
    long = "a-rather-long-folder-name-to-make-the-photo-rows-take-several-pages" * 2
    root = tmp_path / "photos" / long
    for i in range(60):
        make_photo(root / f"photo-with-a-long-name-{i:03d}.jpg", seed=i)
    code, _, err = pixfind("index", tmp_path / "photos", "--library", library_dir)
    assert code == 0, err
    page_size, page = _leaf_page_of(library_dir, "photos")
    with open(library_dir / "catalogue.db", "r+b") as f:
        f.seek((page - 1) * page_size)
        f.write(np.random.default_rng(0).integers(0, 256, page_size, dtype=np.uint8).tobytes())

    # `status` reads only indexes here and may still work; commands reading the photo rows stop.
    for command in (("search", "cat", "--limit", "100"), ("index",)):
        code, _, err = pixfind(*command, "--library", library_dir)
        line = assert_one_line_error(code, err, "catalogue.db", "pixfind library repair")
        assert "damaged" in line

    code, out, err = pixfind("library", "check", "--library", library_dir)
    assert code == 1 and "Traceback" not in err, err
    assert "integrity" in out and "pixfind library repair" in err

    code, out, err = pixfind("library", "repair", "--library", library_dir)
    assert code == 0, err
    assert list(library_dir.glob("catalogue.db.damaged-*")), "the damaged catalogue is kept as a backup"
    photos_left = db_rows(library_dir, "SELECT COUNT(*) FROM photos")[0][0]
    assert 0 < photos_left < 60
    assert f"{60 - photos_left} " in out or "re-index" in out, out
    code, out, err = pixfind("library", "check", "--library", library_dir)
    assert code == 0, out + err

    code, out, err = pixfind("index", "--library", library_dir, "--json")
    assert code == 0, err
    assert json.loads(out)["encoded"] == 60 - photos_left
    assert db_rows(library_dir, "SELECT COUNT(*) FROM embeddings")[0][0] == 60
    assert_index_matches_catalogue(library_dir)
    code, out, err = pixfind("search", "--image", root / "photo-with-a-long-name-059.jpg", "--library", library_dir, "--json")
    assert code == 0, err
    assert json.loads(out)[0]["path"].endswith("photo-with-a-long-name-059.jpg")


def test_f9_lost_folders_page_keeps_every_photo_and_vector(tmp_path, tiny_model, library_dir):
    """Garbage over the folders table (found by the fault-injection script): repair used to refuse
    every photo row for its missing folder and lose the whole index. The folder rows are rebuilt
    from the photos' paths, and nothing is encoded again."""
    root = tmp_path / "photos"
    for i in range(12):
        make_photo(root / "trip" / f"p{i:02d}.jpg", seed=i)
    code, _, err = pixfind("index", root, "--library", library_dir)
    assert code == 0, err
    page_size, page = _leaf_page_of(library_dir, "folders")
    with open(library_dir / "catalogue.db", "r+b") as f:
        f.seek((page - 1) * page_size)
        f.write(np.random.default_rng(1).integers(0, 256, page_size, dtype=np.uint8).tobytes())

    code, out, err = pixfind("library", "repair", "--library", library_dir)
    assert code == 0, err
    assert f"folder rebuilt from its photos' paths: {root / 'trip'}" in out
    assert db_rows(library_dir, "SELECT COUNT(*) FROM photos")[0][0] == 12
    assert db_rows(library_dir, "SELECT COUNT(*) FROM embeddings")[0][0] == 12
    code, out, err = pixfind("index", "--library", library_dir, "--json")
    assert code == 0, err
    assert json.loads(out)["encoded"] == 0
    assert_index_matches_catalogue(library_dir)


@pytest.mark.parametrize("damage", ["missing", "string", "garbage-counter"])
def test_f9_marker_or_change_counter_damaged_recovers(tmp_path, tiny_model, library_dir, damage):
    """A vector-index marker without its change number or with it as a string, or garbage in the
    catalogue's change counter, were tracebacks in `status` and `index`. The index is rebuilt and
    the counter restored from the catalogue, transparently."""
    root = indexed(tmp_path, library_dir, n=5)
    path, marker = marker_of(library_dir)
    if damage == "missing":
        del marker["seq"]
        path.write_text(json.dumps(marker))
    elif damage == "string":
        marker["seq"] = "five"
        path.write_text(json.dumps(marker))
    else:
        conn = sqlite3.connect(library_dir / "catalogue.db")
        with conn:
            conn.execute("UPDATE meta SET value = 'x7!' WHERE key = 'seq'")
        conn.close()
    code, out, err = pixfind("status", "--library", library_dir)
    assert code == 0 and "Traceback" not in err, err
    make_photo(root / "new.jpg", seed=50)
    code, out, err = pixfind("index", "--library", library_dir, "--json")
    assert code == 0 and "Traceback" not in err, err
    assert json.loads(out)["encoded"] == 1
    seq = db_rows(library_dir, "SELECT value FROM meta WHERE key = 'seq'")[0][0]
    assert int(seq) >= max(s for (s,) in db_rows(library_dir, "SELECT seq FROM embeddings"))
    assert_index_matches_catalogue(library_dir)
    assert status_json(library_dir)["active_model"]["index"].startswith("ok, 6 vectors")


def test_f9_lock_path_is_a_folder(tmp_path, tiny_model, library_dir):
    """writer.lock being a folder was a traceback. An empty one is replaced transparently; one with
    files in it is a one-line error naming it."""
    root = indexed(tmp_path, library_dir, n=2)
    (library_dir / "writer.lock").unlink(missing_ok=True)
    (library_dir / "writer.lock").mkdir()
    make_photo(root / "new.jpg", seed=7)
    code, out, err = pixfind("index", "--library", library_dir, "--json")
    assert code == 0, err
    assert json.loads(out)["encoded"] == 1
    (library_dir / "writer.lock").unlink(missing_ok=True)
    (library_dir / "writer.lock").mkdir()
    (library_dir / "writer.lock" / "something").write_text("x")
    code, _, err = pixfind("index", "--library", library_dir)
    assert_one_line_error(code, err, "writer.lock", "folder")


def test_f9_dropped_table(tmp_path, tiny_model, library_dir):
    """A dropped table was a traceback. A disposable table (skipped files) is recreated; a lost
    photos table is explained, and `library repair` + `index` bring everything back."""
    root = indexed(tmp_path, library_dir, n=4)
    conn = sqlite3.connect(library_dir / "catalogue.db")
    conn.execute("DROP TABLE skipped_files")
    conn.close()
    code, out, err = pixfind("status", "--library", library_dir, "--errors")
    assert code == 0, err
    assert "skipped files: 0" in out

    conn = sqlite3.connect(library_dir / "catalogue.db")
    conn.execute("DROP TABLE photos")
    conn.close()
    for command in (("status",), ("search", "a dog")):
        code, _, err = pixfind(*command, "--library", library_dir)
        assert_one_line_error(code, err, "catalogue.db", "photos", "pixfind library repair")
    code, out, err = pixfind("library", "repair", "--library", library_dir)
    assert code == 0, err
    assert "4 photos" in out or "index" in out, out
    code, out, err = pixfind("index", root, "--library", library_dir, "--json")
    assert code == 0, err
    assert json.loads(out)["encoded"] == 4
    assert_index_matches_catalogue(library_dir)


def test_f9_vector_blob_of_wrong_length(tmp_path, tiny_model, library_dir):
    """A vector blob of the wrong length was a traceback (numpy reshape) in search and index. The
    damaged vector is dropped (so the photo is encoded again on the next index), search works."""
    root = indexed(tmp_path, library_dir, n=6)
    conn = sqlite3.connect(library_dir / "catalogue.db")
    with conn:
        conn.execute("UPDATE embeddings SET vector = substr(vector, 1, 100) WHERE photo_id = 3")
    conn.close()
    code, out, err = pixfind("library", "check", "--library", library_dir)
    assert code == 1 and "length" in out, out + err
    code, out, err = pixfind("search", "--image", root / "p005.jpg", "--library", library_dir, "--json")
    assert code == 0, err
    assert json.loads(out)[0]["path"].endswith("p005.jpg")
    code, out, err = pixfind("index", "--library", library_dir, "--json")
    assert code == 0, err
    assert json.loads(out)["encoded"] == 1
    assert all(len(v) == 256 for (v,) in db_rows(library_dir, "SELECT vector FROM embeddings"))
    assert_index_matches_catalogue(library_dir)


# --------------------------------------------------------------------------- F10


@pytest.fixture
def small_disk(tmp_path):
    """A 2 MiB tmpfs (mounting needs root and CAP_SYS_ADMIN), filled up by the test, then freed. With 1 MiB,
    80 indexed photos (thumbnails, catalogue, its WAL) left the resumed run 4 KB short of saving its vector
    index under load: the test is about the disk filling up mid-run, not about the library's final size."""
    mountpoint = tmp_path / "small-disk"
    mountpoint.mkdir()
    with small_filesystem(mountpoint, "2m", "F10 not covered here: cannot mount a small tmpfs to fill up") as mounted:
        yield mounted


def test_f10_disk_full_during_indexing_one_line_then_resumes(tmp_path, tiny_model, small_disk):
    library = small_disk / "library"
    root = tmp_path / "photos"
    for i in range(80):
        make_photo(root / f"p{i:03d}.jpg", seed=i)
    code, _, err = pixfind("status", "--library", library)  # creates the catalogue
    assert code == 0, err
    filler = small_disk / "filler"
    with open(filler, "wb", buffering=0) as f:
        try:
            while True:
                f.write(b"\0" * 4096)
        except OSError:
            pass
    os.truncate(filler, max(0, filler.stat().st_size - 96 * 1024))  # leave 96 KB

    code, out, err = pixfind("index", root, "--library", library, "--batch-size", "4")
    line = assert_one_line_error(code, err, "full")
    assert "free" in line and ("KB" in line or "MB" in line or "bytes" in line), line
    done = db_rows(library, "SELECT COUNT(*) FROM embeddings")[0][0]
    assert done < 80
    assert db_rows(library, "PRAGMA integrity_check")[0][0] == "ok"

    filler.unlink()
    code, out, err = pixfind("index", "--library", library, "--json")
    assert code == 0, err
    assert json.loads(out)["encoded"] == 80 - done
    assert db_rows(library, "SELECT COUNT(*) FROM embeddings")[0][0] == 80


# --------------------------------------------------------------------------- F11


@pytest.fixture
def make_read_only():
    """Turns a folder read-only for root with a read-only bind mount."""
    mounted = []

    def apply(folder: Path) -> None:
        first = subprocess.run(["mount", "--bind", str(folder), str(folder)], capture_output=True)
        if first.returncode != 0:
            pytest.skip(
                "F11 not covered here: cannot make a folder read-only for root (bind mount refused: "
                f"{first.stderr.decode().strip()}); search/status on a read-only library are untested"
            )
        mounted.append(folder)
        second = subprocess.run(["mount", "-o", "remount,bind,ro", str(folder)], capture_output=True)
        if second.returncode != 0:
            pytest.skip(f"F11 not covered here: read-only remount refused ({second.stderr.decode().strip()})")
        assert not os.access(folder, os.W_OK)

    yield apply
    for folder in mounted:
        subprocess.run(["umount", "--lazy", str(folder)], check=False)


def test_f11_read_only_library_search_status_work_index_refused(tmp_path, tiny_model, library_dir, make_read_only):
    root = indexed(tmp_path, library_dir, n=5)
    make_read_only(library_dir)
    code, out, err = pixfind("search", "--image", root / "p002.jpg", "--library", library_dir, "--json")
    assert code == 0, err
    results = json.loads(out)
    assert len(results) == 5 and results[0]["path"].endswith("p002.jpg")
    code, out, err = pixfind("status", "--library", library_dir)
    assert code == 0, err
    assert "photos: 5" in out and "vector index: ok" in out
    make_photo(root / "new.jpg", seed=9)
    code, _, err = pixfind("index", "--library", library_dir)
    assert_one_line_error(code, err, "read-only", str(library_dir))


# --------------------------------------------------------------------------- F13


def _open_files(pid: int) -> set[str]:
    try:
        return {os.readlink(f"/proc/{pid}/fd/{fd}") for fd in os.listdir(f"/proc/{pid}/fd")}
    except OSError:
        return set()


def test_f13_three_processes_first_use_of_a_new_library(tmp_path, tiny_model):
    """Three `pixfind status` on a new library at once: some failed with a false "damaged (table
    folders already exists)" or an IntegrityError. To hit the race every time rather than 11 times
    in 30, the test holds a write transaction on the (still empty) new catalogue until all three
    processes have opened it, then lets them go together."""
    for round_ in range(2):
        library = tmp_path / f"lib{round_}"
        library.mkdir()
        gate = sqlite3.connect(library / "catalogue.db", isolation_level=None)
        gate.execute("PRAGMA journal_mode = WAL")
        gate.execute("BEGIN IMMEDIATE")
        procs = [pixfind_process("status", "--library", library) for _ in range(3)]
        catalogue = str(library / "catalogue.db")
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not all(catalogue in _open_files(p.pid) for p in procs):
            time.sleep(0.02)
        time.sleep(0.5)
        gate.execute("ROLLBACK")
        gate.close()
        for p in procs:
            out, err = p.communicate(timeout=120)
            assert p.returncode == 0, err.decode()
        assert db_rows(library, "SELECT COUNT(*) FROM meta WHERE key = 'catalogue_id'")[0][0] == 1


# --------------------------------------------------------------------------- F14


def test_f14_watch_waits_for_the_lock_and_indexes_the_new_photo(tmp_path, tiny_model, library_dir):
    watched = indexed(tmp_path, library_dir, n=1, name="watched")
    watcher = pixfind_process("watch", "--library", library_dir, "--settle", "0.3")
    try:
        line = watcher.stdout.readline().decode()
        assert line.startswith("watching"), line + watcher.stderr.read().decode()
        watcher.stdout.readline()  # the first pass
        bulk = tmp_path / "bulk"
        for i in range(120):
            make_photo(bulk / f"b{i:03d}.jpg", seed=100 + i, size=(640, 480))
        long_index = pixfind_process("index", bulk, "--library", library_dir, "--batch-size", "2", "--workers", "1")
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and db_rows(library_dir, "SELECT COUNT(*) FROM embeddings")[0][0] < 4:
            time.sleep(0.05)
        assert long_index.poll() is None, "the long index finished too early"
        make_photo(watched / "new.jpg", seed=77)
        time.sleep(2.5)  # the watcher notices the photo while the lock is taken
        assert watcher.poll() is None, watcher.stderr.read().decode()
        assert long_index.wait(timeout=240) == 0
        long_index.stdout.close(), long_index.stderr.close()
        deadline = time.monotonic() + 120
        new = os.fsencode(watched / "new.jpg")
        while time.monotonic() < deadline:
            rows = db_rows(library_dir, "SELECT p.path FROM photos p JOIN embeddings e ON e.photo_id = p.id")
            if any(p == new for (p,) in rows):
                break
            assert watcher.poll() is None, watcher.stderr.read().decode()
            time.sleep(0.2)
        else:
            pytest.fail("the photo added while another pixfind held the lock was never indexed")
    finally:
        watcher.send_signal(signal.SIGTERM)
        try:
            watcher.wait(timeout=60)
        except subprocess.TimeoutExpired:
            watcher.kill()
        watcher.stdout.close(), watcher.stderr.close()
    assert watcher.returncode == 0


# --------------------------------------------------------------------------- smaller items


def test_thumbnail_tmp_left_by_a_kill_is_cleaned(tmp_path, tiny_model, library_dir):
    """A SIGKILL between writing a thumbnail's temporary file and renaming it leaves a `.tmp`
    behind (planted here, as such a kill leaves it); the next writer removes it."""
    root = indexed(tmp_path, library_dir, n=2)
    leftovers = [library_dir / "thumbnails" / "ab" / "tmpx1y2z3.tmp", library_dir / "thumbnails" / ".tmp-4f2a.jpg.tmp"]
    for leftover in leftovers:
        leftover.parent.mkdir(parents=True, exist_ok=True)
        leftover.write_bytes(b"\xff\xd8 half a jpeg")
    make_photo(root / "new.jpg", seed=5)
    code, _, err = pixfind("index", "--library", library_dir)
    assert code == 0, err
    assert not [p for p in leftovers if p.exists()]
    assert not list((library_dir / "thumbnails").rglob("*.tmp"))
    thumbs = [t for (t,) in db_rows(library_dir, "SELECT thumbnail FROM photos")]
    assert len(thumbs) == 3 and all((library_dir / "thumbnails" / t).is_file() for t in thumbs)


def _jpeg_with_corrupt_exif(path: Path) -> Path:
    """A JPEG whose EXIF has the camera make and model, and a tag whose data runs past the end."""
    exif = Image.Exif()
    exif[0x010F] = "Acme"
    exif[0x0110] = "Snapper 3000"
    exif[0x013B] = "an artist name long enough to be stored out of line"
    data = bytearray(exif.tobytes())
    # The Artist entry (tag 0x013B, type ASCII): claim far more bytes than there are.
    order = ">" if data[6:8] == b"MM" else "<"
    entry = data.find(struct.pack(f"{order}HH", 0x013B, 2))
    assert entry > 0
    struct.pack_into(f"{order}I", data, entry + 4, 5000)
    Image.fromarray(np.full((60, 80, 3), 128, np.uint8)).save(path, "JPEG", exif=bytes(data))
    return path


def test_exif_warnings_are_not_printed_and_metadata_is_kept(tmp_path, tiny_model, library_dir):
    root = tmp_path / "photos"
    root.mkdir()
    photo = _jpeg_with_corrupt_exif(root / "odd-exif.jpg")
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        Image.open(photo).getexif()
    assert seen, "the test photo should make Pillow warn"
    code, out, err = pixfind("index", root, "--library", library_dir)
    assert code == 0, err
    assert "Warning" not in err and "EXIF" not in err, err
    assert db_rows(library_dir, "SELECT camera_make, camera_model FROM photos") == [("Acme", "Snapper 3000")]
