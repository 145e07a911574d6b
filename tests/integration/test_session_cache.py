"""The towers' optimised-graph cache (encoder.py): a cold search or an indexing run loads the graph
ONNX Runtime optimised on an earlier run, from the user's cache folder, and computes exactly the
same numbers; a damaged entry is rebuilt without the user noticing; a cache that cannot be written
costs nothing; the cache stays within its bounds."""

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


# The image tower's vectors of real photos, as hex.
ENCODE_IMAGES = (
    "import sys; from desktop_app import model_store; from desktop_app.encoder import Encoder\n"
    "e = Encoder(model_store.resolve().path, verify=False, lazy=True)\n"
    "print(e.encode_images(sys.argv[1:]).tobytes().hex())"
)
SAMPLES = Path(__file__).resolve().parents[2] / "desktop_app" / "resources" / "sample-photos"


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


def test_the_image_tower_too_bit_for_bit(tiny_model, pixfind_home):
    """The image tower's cached graph gets ONNX Runtime's CPU-specific layout passes as it loads
    (its convolution): still exactly the numbers of the pack's own graph."""
    photos = [str(p) for p in sorted(SAMPLES.glob("*.jpg"))[:4]]
    plain = _run(["-c", ENCODE_IMAGES, *photos], pixfind_home, **{SESSION_CACHE_ENV: "off"})
    first = _run(["-c", ENCODE_IMAGES, *photos], pixfind_home)
    cached = _run(["-c", ENCODE_IMAGES, *photos], pixfind_home)
    # The first run builds the entry, then opens it with the layout passes as every later run does.
    assert "image session of tiny from the optimised-graph cache" in cached.stderr and len(_entries(pixfind_home)) == 1
    assert cached.stdout == first.stdout == plain.stdout


def test_a_search_uses_it_and_finds_the_same_photos(tiny_model, pixfind_home, tmp_path, library_dir):
    for i in range(4):
        make_photo(tmp_path / "photos" / f"p{i}.jpg", seed=i)
    shutil.rmtree(pixfind_home / "cache", ignore_errors=True)
    index = ["-m", "desktop_app", "index", str(tmp_path / "photos"), "--library", str(library_dir)]
    _run(index, pixfind_home)
    assert len(_entries(pixfind_home)) == 1  # indexing opens the image tower only
    search = ["-m", "desktop_app", "search", "a photo", "--library", str(library_dir), "--all", "--json"]
    plain = _run(search, pixfind_home, **{SESSION_CACHE_ENV: "off"})
    _run(search, pixfind_home)
    cached = _run(search, pixfind_home)
    assert "from the optimised-graph cache" in cached.stderr and len(_entries(pixfind_home)) == 2
    assert json.loads(cached.stdout) == json.loads(plain.stdout)
    make_photo(tmp_path / "photos" / "p4.jpg", seed=4)  # something new to encode: the image tower opens
    again = _run(index, pixfind_home)
    assert "opened the image session of tiny from the optimised-graph cache" in again.stderr
    assert json.loads(_run(search, pixfind_home).stdout)[:4] == json.loads(plain.stdout)


def test_the_cache_stays_within_its_bounds(tiny_model, pixfind_home, monkeypatch):
    """Each entry is a second copy of a tower's weights: the least recently used go once there are
    more than SESSION_CACHE_KEEP or they take more than SESSION_CACHE_BYTES; the newest always stays."""
    from desktop_app import encoder as encoder_module
    from desktop_app import model_store
    from desktop_app.encoder import Encoder

    root = pixfind_home / "cache" / SESSION_CACHE_DIR
    stale = []
    for age in range(4):  # entries of other models, used 1 to 4 hours ago
        entry = root / f"{age:032x}"
        entry.mkdir(parents=True)
        (entry / "graph.onnx").write_bytes(b"x" * 1000)
        os.utime(entry, (os.path.getmtime(entry) - 3600 * (age + 1),) * 2)
        stale.append(entry)
    monkeypatch.setattr(encoder_module, "SESSION_CACHE_KEEP", 4)
    monkeypatch.setattr(encoder_module, "SESSION_CACHE_BYTES", 10**12)
    Encoder(model_store.resolve().path, verify=False, lazy=True).encode_texts(["a photo"])
    [text_entry] = [e for e in _entries(pixfind_home) if e not in stale]
    assert _entries(pixfind_home) == sorted([text_entry, *stale[:3]])  # four kept: the oldest went
    size = sum(f.stat().st_size for f in (root / text_entry).iterdir())
    monkeypatch.setattr(encoder_module, "SESSION_CACHE_BYTES", 1)  # smaller than any entry
    Encoder(model_store.resolve().path, verify=False, lazy=True).encode_images([next(SAMPLES.glob("*.jpg"))])
    [image_entry] = [e for e in _entries(pixfind_home) if e not in (*stale, text_entry)]
    assert _entries(pixfind_home) == [image_entry] and size > 1000  # the newest stays, whatever its size


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
