"""Bad input and faults: each bad file is recorded with its reason and never stops the run."""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import hnswlib
import pytest

from desktop_app import model_store
from desktop_app.encoder import Encoder
from desktop_app.library.indexer import Indexer
from desktop_app.library.library_dir import Library
from tests.integration import paused_indexer
from tests.library_helpers import (
    REPO,
    db_rows,
    decompression_bomb,
    index_json,
    make_photo,
    run_cli,
)
from tests.unprivileged import as_user_without_read_override


def test_bad_files_are_skipped_with_reasons(tmp_path, capsys, tiny_model, library_dir):
    root = tmp_path / "photos"
    make_photo(root / "good.jpg", seed=1)
    (root / "zero.jpg").write_bytes(b"")
    data = make_photo(tmp_path / "full.jpg", seed=2, size=(400, 300)).read_bytes()
    (root / "truncated.jpg").write_bytes(data[: len(data) // 2])
    (root / "text.jpg").write_text("this is not a photo\n")
    decompression_bomb(root / "bomb.png")
    os.symlink(root / "gone.jpg", root / "broken-link.jpg")
    os.symlink(root, root / "loop")  # a folder link to its own parent
    os.symlink("self.jpg", root / "self.jpg")  # a link to itself
    long_name = "l" * 200 + "ö" * 25 + ".jpg"  # 254 bytes
    make_photo(root / long_name, seed=3)
    latin1 = os.path.join(os.fsencode(root), b"caf\xe9.jpg")  # not valid UTF-8
    make_photo(Path(os.fsdecode(latin1)), seed=4)

    code, out, err = run_cli(capsys, "index", root, "--library", library_dir)
    assert code == 0, err
    assert "3 photos encoded" in out and "7 files skipped, see `pixfind status --errors`" in out

    reasons = {os.path.basename(p): r for p, r in db_rows(library_dir, "SELECT CAST(path AS TEXT), reason FROM skipped_files")}
    assert reasons.pop("zero.jpg") == "empty file (0 bytes)"
    assert reasons.pop("truncated.jpg").startswith("truncated or corrupt image data")
    assert reasons.pop("text.jpg").startswith("not an image")
    assert "decompression bomb" in reasons.pop("bomb.png")
    assert reasons.pop("broken-link.jpg") == "broken symbolic link"
    assert reasons.pop("self.jpg") == "symbolic link loop"
    assert reasons.pop("loop") == "symbolic link loop"
    assert not reasons

    paths = {p for (p,) in db_rows(library_dir, "SELECT path FROM photos")}
    assert latin1 in paths and os.fsencode(os.path.join(root, long_name)) in paths
    code, out, _ = run_cli(capsys, "search", "--image", root / "good.jpg", "--json", "--library", library_dir)
    assert code == 0 and any(r["path"].endswith("caf\\xe9.jpg") for r in json.loads(out))


def test_unreadable_file_is_skipped(tmp_path, capsys, tiny_model, library_dir):
    prefix = as_user_without_read_override()
    if prefix is None:
        pytest.skip("running as root without a working setpriv: the 'permission denied' skip reason of an unreadable "
                    "photo is not covered here")
    root = tmp_path / "photos"
    make_photo(root / "secret.jpg", seed=1).chmod(0)
    make_photo(root / "fine.jpg", seed=2)
    if not prefix:
        report = index_json(capsys, library_dir, root)
    else:  # a real `pixfind index` without root's read bypass
        done = subprocess.run([*prefix, sys.executable, "-m", "desktop_app", "index", str(root), "--library", str(library_dir),
                               "--json"], cwd=REPO, capture_output=True, text=True, timeout=300, check=False)
        assert done.returncode == 0, done.stderr
        report = json.loads(done.stdout)
    assert report["encoded"] == 1
    [skipped] = report["skipped"]
    assert skipped["path"] == str(root / "secret.jpg") and skipped["reason"] == "permission denied"


def test_folder_vanishing_mid_run(tmp_path, tiny_model, library_dir):
    root = tmp_path / "photos"
    make_photo(root / "a" / "first.jpg", seed=0)
    for i in range(12):
        make_photo(root / "b" / f"p{i:02d}.jpg", seed=i + 1)

    def progress(done, total):
        if done == 1 and (root / "b").exists():
            shutil.rmtree(root / "b")  # the folder goes away while its photos wait to be decoded

    encoder = Encoder(model_store.resolve("tiny").path)
    with Library(library_dir) as lib:
        report = Indexer(lib, encoder, batch_size=1, workers=1, progress=progress).run([str(root)])
        assert report.encoded >= 1 and report.skipped
        assert all(reason == "file not found" for _, reason in report.skipped)
        assert report.encoded + len(report.skipped) == 13
        again = Indexer(lib, encoder).run(None)
    assert again.encoded == 0 and again.removed == report.encoded - 1  # the b/ photos that made it are gone
    assert db_rows(library_dir, "SELECT COUNT(*) FROM photos")[0][0] == 1


@pytest.fixture
def full_vectors_dir(library_dir):
    """The library's vectors folder on a tiny filesystem that is already full (root),
    or a read-only folder (other users)."""
    vectors = library_dir / "vectors"
    vectors.mkdir(parents=True)
    if os.geteuid() != 0:
        vectors.chmod(0o555)
        yield vectors, lambda: vectors.chmod(0o755)
        vectors.chmod(0o755)
        return
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(vectors)], capture_output=True, check=False)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a small filesystem: {mounted.stderr.decode().strip()}")
    filler = vectors / "filler"
    with open(filler, "wb", buffering=0) as f:
        try:
            while True:
                f.write(b"\0" * 4096)
        except OSError:
            pass
    try:
        yield vectors, filler.unlink
    finally:
        subprocess.run(["umount", "--lazy", str(vectors)], check=False)


def test_disk_full_when_writing_the_index(tmp_path, capsys, tiny_model, library_dir, full_vectors_dir):
    vectors, make_room = full_vectors_dir
    root = tmp_path / "photos"
    for i in range(5):
        make_photo(root / f"p{i}.jpg", seed=i)
    code, out, err = run_cli(capsys, "index", root, "--library", library_dir)
    assert code == 1 and "Traceback" not in err
    assert err.startswith("pixfind: error: ") and "cannot save the vector index" in err and len(err.strip().splitlines()) == 1
    assert "5 photos encoded" in out
    assert db_rows(library_dir, "SELECT COUNT(*) FROM embeddings")[0][0] == 5  # nothing indexed was lost
    assert not list(vectors.glob("*.hnsw"))  # no half-written index left behind

    make_room()
    again = index_json(capsys, library_dir)
    assert again["encoded"] == 0 and again["index_error"] is None
    code, out, _ = run_cli(capsys, "status", "--library", library_dir)
    assert "vector index: ok, 5 vectors" in out


def _indexing_in_progress(root, total: int, library_dir, paused):
    """A real `pixfind index` subprocess over ``total`` photos, held still after 3 committed batches of 2
    (tests/integration/paused_indexer.py): no race with an indexer that might finish first."""
    for i in range(total):
        make_photo(root / f"p{i:03d}.jpg", seed=i, size=(640, 480))
    proc = paused_indexer.start(paused, 3, "index", root, "--library", library_dir, "--batch-size", "2", "--workers", "1")
    paused_indexer.wait(proc, paused)
    assert db_rows(library_dir, "SELECT COUNT(*) FROM embeddings")[0][0] == 6
    return proc


def test_sigkill_mid_run_then_resume(tmp_path, capsys, tiny_model, library_dir):
    root, total, paused = tmp_path / "photos", 120, tmp_path / "paused"
    proc = _indexing_in_progress(root, total, library_dir, paused)
    paused.unlink()  # let it go on, and kill it wherever it is a moment later (between or inside batches)
    time.sleep(random.uniform(0, 0.2))
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    proc.stdout.close(), proc.stderr.close()
    done_before = db_rows(library_dir, "SELECT COUNT(*) FROM embeddings")[0][0]
    assert 6 <= done_before <= total
    # every photo row written before the kill has its vector (rows and vectors commit together)
    assert db_rows(library_dir, "SELECT COUNT(*) FROM photos")[0][0] == done_before
    assert db_rows(library_dir, "SELECT COUNT(*) FROM photos WHERE id NOT IN (SELECT photo_id FROM embeddings)") == [(0,)]

    report = index_json(capsys, library_dir, root)
    assert report["encoded"] == total - done_before  # nothing committed before the kill was encoded again
    photos = db_rows(library_dir, "SELECT id, path FROM photos")
    assert len(photos) == total == len({p for _, p in photos})
    assert db_rows(library_dir, "SELECT COUNT(*) FROM embeddings")[0][0] == total

    marker = json.loads(next((library_dir / "vectors").glob("*.json")).read_text())
    index = hnswlib.Index(space="ip", dim=64)
    index.load_index(str(library_dir / "vectors" / marker["file"]))
    assert set(index.get_ids_list()) == {i for i, _ in photos} and marker["count"] == total


def test_ctrl_c_stops_cleanly_and_the_next_run_resumes(tmp_path, capsys, tiny_model, library_dir):
    """SIGINT (Ctrl-C) on a real `pixfind index`: a clean stop with exit 130, the index saved, and
    the next run encodes only what the first had not."""
    root, total = tmp_path / "photos", 120
    proc = _indexing_in_progress(root, total, library_dir, tmp_path / "paused")
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    err = err.decode() if isinstance(err, bytes) else err
    assert proc.returncode == 130, err
    assert "interrupted" in err and "Traceback" not in err
    done_before = db_rows(library_dir, "SELECT COUNT(*) FROM embeddings")[0][0]
    assert done_before == 6  # it stopped at the next step: the batches committed before Ctrl-C, no more

    report = index_json(capsys, library_dir, root)
    assert report["encoded"] == total - done_before
    assert db_rows(library_dir, "SELECT COUNT(*) FROM embeddings")[0][0] == total


def test_switching_model_re_encodes_and_keeps_vectors_apart(tmp_path, capsys, tiny_model, library_dir):
    """A second model gets its own embeddings; search with either model uses only its own vectors."""
    from model_training.export import export_and_install
    from tests.conftest import TINY_CONFIG, save_tiny_checkpoint

    root = tmp_path / "photos"
    for i in range(5):
        make_photo(root / f"p{i}.jpg", seed=i)
    assert index_json(capsys, library_dir, root)["encoded"] == 5
    other = save_tiny_checkpoint(tmp_path / "other.pth", seed=1)
    export_and_install(str(TINY_CONFIG), pretrained=None, checkpoint=other, tokenizer=None, precision="fp32", name="tiny2", output=None, replace=False)
    capsys.readouterr()
    switched = index_json(capsys, library_dir, root, extra=("--model", "tiny2"))
    assert switched["encoded"] == 5  # every photo encoded again for the new model
    assert index_json(capsys, library_dir, root, extra=("--model", "tiny2"))["encoded"] == 0
    assert index_json(capsys, library_dir, root)["encoded"] == 0  # the first model's vectors are still there
    assert db_rows(library_dir, "SELECT COUNT(*) FROM embeddings")[0][0] == 10
    for model in ("tiny", "tiny2"):
        code, out, err = run_cli(capsys, "search", "--image", root / "p3.jpg", "--json", "--model", model, "--library", library_dir)
        assert code == 0, err
        assert json.loads(out)[0]["path"].endswith("p3.jpg")
