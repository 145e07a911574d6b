"""The text tower's optimised-graph cache (encoder.py): a cold search loads the graph ONNX Runtime
optimised on an earlier run, from the user's cache folder, and computes exactly the same numbers;
a damaged entry is rebuilt without the user noticing; a cache that cannot be written costs nothing."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from desktop_app.encoder import DEBUG_SESSIONS_ENV, SESSION_CACHE_DIR, SESSION_CACHE_ENV
from tests.library_helpers import make_photo

TEXTS = ["a photo", "a red car on a long road at night", "東京"]

# The vectors printed as hex: equality means bit for bit the same floats.
ENCODE = (
    "import sys; from desktop_app import model_store; from desktop_app.encoder import Encoder\n"
    "e = Encoder(model_store.resolve().path, verify=False, lazy=True)\n"
    f"print(e.encode_texts({TEXTS!r}).tobytes().hex())"
)


def _run(args: list[str], home: Path, **env) -> subprocess.CompletedProcess:
    run = subprocess.run(
        [sys.executable, *args], capture_output=True, text=True, timeout=180,
        env=dict(os.environ, PIXFIND_HOME=str(home), **{DEBUG_SESSIONS_ENV: "1"}, **env),
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    return run


def _encode(home: Path, **env) -> tuple[str, bool]:
    """(the texts' vectors, whether the text session came from the cache)."""
    run = _run(["-c", ENCODE], home, **env)
    return run.stdout.strip(), "from the optimised-graph cache" in run.stderr


def _entries(home: Path) -> list[Path]:
    root = home / "cache" / SESSION_CACHE_DIR
    return sorted(p for p in root.iterdir() if not p.name.startswith(".")) if root.is_dir() else []


def test_the_cached_graph_gives_the_same_vectors_bit_for_bit(tiny_model, pixfind_home):
    assert _entries(pixfind_home) == []  # installing the pack opened its sessions without the cache
    plain, from_cache = _encode(pixfind_home, **{SESSION_CACHE_ENV: "off"})
    assert not from_cache and _entries(pixfind_home) == []
    first, from_cache = _encode(pixfind_home)  # the app's first text session builds the entry
    [entry] = _entries(pixfind_home)
    record = json.loads((entry / "entry.json").read_text())
    assert set(record["files"]) <= {"graph.onnx", "graph.onnx.data"}
    cached, from_cache = _encode(pixfind_home)
    assert from_cache and cached == first == plain
    shutil.rmtree(pixfind_home / "cache")
    first, from_cache = _encode(pixfind_home)  # builds the entry again while opening the session
    assert not from_cache and first == plain
    again, from_cache = _encode(pixfind_home)
    assert from_cache and again == plain


def test_a_search_uses_it_and_finds_the_same_photos(tiny_model, pixfind_home, tmp_path, library_dir):
    for i in range(4):
        make_photo(tmp_path / "photos" / f"p{i}.jpg", seed=i)
    shutil.rmtree(pixfind_home / "cache", ignore_errors=True)
    _run(["-m", "desktop_app", "index", str(tmp_path / "photos"), "--library", str(library_dir)], pixfind_home)
    assert _entries(pixfind_home) == []  # indexing opens the image tower only, which is not cached
    search = ["-m", "desktop_app", "search", "a photo", "--library", str(library_dir), "--all", "--json"]
    plain = _run(search, pixfind_home, **{SESSION_CACHE_ENV: "off"})
    _run(search, pixfind_home)
    cached = _run(search, pixfind_home)
    assert "from the optimised-graph cache" in cached.stderr
    assert json.loads(cached.stdout) == json.loads(plain.stdout)


@pytest.mark.parametrize("damage", ["flip a byte of the graph", "truncate the weights", "garble the record"])
def test_a_damaged_entry_is_rebuilt(tiny_model, pixfind_home, damage):
    expected, _ = _encode(pixfind_home)
    [entry] = _entries(pixfind_home)
    if damage == "flip a byte of the graph":
        data = bytearray((entry / "graph.onnx").read_bytes())
        data[len(data) // 2] ^= 0xFF
        (entry / "graph.onnx").write_bytes(bytes(data))
    elif damage == "truncate the weights":
        target = entry / "graph.onnx.data" if (entry / "graph.onnx.data").exists() else entry / "graph.onnx"
        target.write_bytes(target.read_bytes()[:100])
    else:
        (entry / "entry.json").write_text('{"format": 1, "key": []}')
    vectors, from_cache = _encode(pixfind_home)
    assert (vectors, from_cache) == (expected, False)  # the pack's own graph, and the entry written again
    vectors, from_cache = _encode(pixfind_home)
    assert (vectors, from_cache) == (expected, True)


def test_a_cache_folder_that_cannot_be_made_costs_nothing_but_speed(tiny_model, pixfind_home):
    expected, _ = _encode(pixfind_home, **{SESSION_CACHE_ENV: "off"})
    shutil.rmtree(pixfind_home / "cache", ignore_errors=True)
    (pixfind_home / "cache").write_text("a file where the cache folder should be")  # refused even to root
    assert _encode(pixfind_home) == (expected, False)
    assert _encode(pixfind_home) == (expected, False)
