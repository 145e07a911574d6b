"""Bad input and faults: each bad file is recorded with its reason and never stops the run."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import hnswlib
import pytest

from desktop_app import model_store
from desktop_app.encoder import Encoder
from desktop_app.library.indexer import Indexer
from desktop_app.library.library_dir import Library

from .library_helpers import (
    db_rows,
    decompression_bomb,
    index_json,
    make_photo,
    pixfind_process,
    run_cli,
)


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


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files whatever their permissions")
def test_unreadable_file_is_skipped(tmp_path, capsys, tiny_model, library_dir):
    root = tmp_path / "photos"
    make_photo(root / "secret.jpg", seed=1).chmod(0)
    make_photo(root / "fine.jpg", seed=2)
    report = index_json(capsys, library_dir, root)
    assert report["encoded"] == 1
    assert report["skipped"] == [{"path": str(root / "secret.jpg"), "reason": "permission denied"}]


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


def _indexing_in_progress(root, total: int, library_dir):
    """A real `pixfind index` subprocess over ``total`` photos, returned once it has committed a few."""
    for i in range(total):
        make_photo(root / f"p{i:03d}.jpg", seed=i, size=(640, 480))
    proc = pixfind_process("index", root, "--library", library_dir, "--batch-size", "2", "--workers", "1")
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            if db_rows(library_dir, "SELECT COUNT(*) FROM embeddings")[0][0] >= 6:
                break
        except Exception:  # noqa: BLE001, S110 - the catalogue may not exist yet
            pass
        time.sleep(0.01)
    assert proc.poll() is None, "the indexer finished before it could be stopped"
    return proc


def test_sigkill_mid_run_then_resume(tmp_path, capsys, tiny_model, library_dir):
    root, total = tmp_path / "photos", 120
    proc = _indexing_in_progress(root, total, library_dir)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    proc.stdout.close(), proc.stderr.close()
    done_before = db_rows(library_dir, "SELECT COUNT(*) FROM embeddings")[0][0]
    assert 0 < done_before < total

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
    proc = _indexing_in_progress(root, total, library_dir)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    err = err.decode() if isinstance(err, bytes) else err
    assert proc.returncode == 130, err
    assert "interrupted" in err and "Traceback" not in err
    done_before = db_rows(library_dir, "SELECT COUNT(*) FROM embeddings")[0][0]
    assert 0 < done_before < total

    report = index_json(capsys, library_dir, root)
    assert report["encoded"] == total - done_before
    assert db_rows(library_dir, "SELECT COUNT(*) FROM embeddings")[0][0] == total


def test_switching_model_re_encodes_and_keeps_vectors_apart(tmp_path, capsys, tiny_model, library_dir):
    """A second model gets its own embeddings; search with either model uses only its own vectors."""
    from model_training.export import export_and_install

    from .conftest import TINY_CONFIG, save_tiny_checkpoint

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
