"""Heavy imports are deferred: `pixfind status` and a re-index with nothing new import no NumPy,
Pillow or model runtime (the style of test_lazy_loading.py: what is in ``sys.modules``, never timing)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.library_helpers import index_json, make_photo

HEAVY = ("numpy", "PIL", "onnxruntime", "tokenizers", "hnswlib")


def _imported(args: list[str], home: Path, modules=HEAVY) -> list[str]:
    """The heavy modules a run of `pixfind ARGS` (in a fresh interpreter) has imported."""
    code = (
        "import sys; from desktop_app.cli import main\n"
        "try:\n    rc = main(sys.argv[1:])\nexcept SystemExit as e:\n    rc = e.code\n"
        f"print('RC', rc, 'LOADED', *sorted(m for m in {modules!r} if m in sys.modules))"
    )
    run = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=120,
                         env=dict(os.environ, PIXFIND_HOME=str(home)))  # fmt: skip
    assert run.returncode == 0 and "LOADED" in run.stdout, run.stderr
    rc, loaded = run.stdout.rsplit("RC", 1)[1].split("LOADED")
    assert rc.strip() in ("0", "None"), run.stdout + run.stderr
    return loaded.split()


def test_the_service_layer_imports_no_numpy():
    """Every command imports the library service and its records: they defer NumPy to the calls that need it."""
    code = (
        "import sys; import desktop_app.services, desktop_app.services.library, desktop_app.library.search, "
        "desktop_app.commands.library; print(*sorted(m for m in ('numpy', 'onnxruntime', 'tokenizers', 'hnswlib') if m in sys.modules))"
    )
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    assert run.stdout.split() == []


def _indexed_library(tmp_path, capsys, library_dir, n=3) -> Path:
    for i in range(n):
        make_photo(tmp_path / "photos" / f"p{i}.jpg", seed=i)
    index_json(capsys, library_dir, tmp_path / "photos")
    return tmp_path / "photos"


def test_status_imports_no_numpy_pillow_or_model_runtime(tmp_path, capsys, tiny_model, pixfind_home, library_dir):
    _indexed_library(tmp_path, capsys, library_dir)
    assert _imported(["status", "--library", str(library_dir)], pixfind_home) == []


def test_a_quiet_reindex_imports_no_numpy_pillow_model_runtime_or_hnswlib(tmp_path, capsys, tiny_model, pixfind_home, library_dir):
    _indexed_library(tmp_path, capsys, library_dir)
    assert _imported(["index", "--library", str(library_dir)], pixfind_home) == []


def test_the_indexer_opens_nothing_heavy_when_nothing_changed(tmp_path, capsys, tiny_model, pixfind_home, library_dir):
    """The indexing engine on its own (`pixfind index` runs the OCR pass after it): no decoder, no model
    session and no vector index when nothing is new and the saved index already reflects the catalogue."""
    _indexed_library(tmp_path, capsys, library_dir)
    code = (
        "import sys\n"
        "from desktop_app import model_store\n"
        "from desktop_app.encoder import Encoder\n"
        "from desktop_app.library.indexer import Indexer\n"
        "from desktop_app.library.library_dir import Library\n"
        f"with Library({str(library_dir)!r}) as library:\n"
        "    report = Indexer(library, Encoder(model_store.resolve().path, verify=False, lazy=True)).run()\n"
        f"print('UNCHANGED', report.unchanged, 'LOADED', *sorted(m for m in {HEAVY!r} if m in sys.modules))"
    )
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                         env=dict(os.environ, PIXFIND_HOME=str(pixfind_home)))  # fmt: skip
    assert run.returncode == 0, run.stderr
    assert run.stdout.split() == ["UNCHANGED", "3", "LOADED"], run.stdout


def test_a_quiet_reindex_still_applies_removals_to_the_vector_index(tmp_path, capsys, tiny_model, pixfind_home, library_dir):
    """Nothing to encode, but a photo was removed: the deferred vector index is opened, caught up and saved."""
    photos = _indexed_library(tmp_path, capsys, library_dir, n=4)
    (photos / "p0.jpg").unlink()
    report = index_json(capsys, library_dir)
    assert (report["encoded"], report["removed"]) == (0, 1)
    code = subprocess.run([sys.executable, "-m", "desktop_app", "status", "--library", str(library_dir), "--json"],
                          capture_output=True, text=True, timeout=120, env=dict(os.environ, PIXFIND_HOME=str(pixfind_home)))  # fmt: skip
    assert code.returncode == 0, code.stderr
    assert json.loads(code.stdout)["active_model"]["index"].startswith("ok, 3 vectors"), code.stdout


def test_a_quiet_reindex_records_the_index_files_mtime_in_an_older_marker(tmp_path, capsys, tiny_model, pixfind_home, library_dir):
    """Markers written before they recorded the file's mtime made every open hash the whole index file
    (0.3 s at 100,000 photos); the first quiet re-index hashes it once and records the mtime."""
    _indexed_library(tmp_path, capsys, library_dir)
    [marker_path] = (library_dir / "vectors").glob("*.json")
    marker = json.loads(marker_path.read_text())
    hashed_at = marker.pop("file_mtime_ns")
    assert hashed_at == (library_dir / "vectors" / marker["file"]).stat().st_mtime_ns
    marker_path.write_text(json.dumps(marker))
    assert index_json(capsys, library_dir)["unchanged"] == 3
    assert json.loads(marker_path.read_text()) == {**marker, "file_mtime_ns": hashed_at}
