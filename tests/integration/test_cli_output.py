"""What reaches the terminal: file names cannot drive it (F7), queries cannot blow up (F15)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from desktop_app.text import printable
from tests.library_helpers import make_photo

PIXFIND = str(Path(sys.executable).parent / "pixfind")
OSC_TITLE = "\x1b]0;pwned\x07"


def pixfind(*args, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([PIXFIND, *map(str, args)], capture_output=True, timeout=timeout, check=False)


def test_printable_escapes_controls_and_undecodable_bytes_only():
    assert printable("a\nb\tc\rd") == "a\\nb\\tc\\rd"
    assert printable(f"x{OSC_TITLE}y\x9b31m\x7f") == "x\\x1b]0;pwned\\x07y\\x9b31m\\x7f"
    assert printable(os.fsdecode(b"caf\xe9.jpg")) == "caf\\xe9.jpg"
    assert printable("café 日本 🌅.jpg") == "café 日本 🌅.jpg"


@pytest.fixture
def hostile_library(tmp_path, tiny_model, library_dir):
    root = tmp_path / "photos"
    make_photo(root / f"title{OSC_TITLE}.jpg", seed=1)
    make_photo(root / "plain.jpg", seed=2)
    (root / "broken\nforged.jpg: fake line.jpg").write_bytes(b"not a jpeg")
    result = pixfind("index", root, "--library", library_dir)
    assert result.returncode == 0, result.stderr
    return root


def _lines(data: bytes) -> list[str]:
    return data.decode("utf-8").splitlines()


def test_names_with_controls_are_escaped_in_text_and_exact_in_json(hostile_library, library_dir):
    status = pixfind("status", "--errors", "--library", library_dir)
    assert status.returncode == 0, status.stderr
    lines = _lines(status.stdout)
    assert not any(line.startswith("forged.jpg") for line in lines)  # no line forged by a file name
    assert any("broken\\nforged.jpg: fake line.jpg" in line for line in lines)

    search = pixfind("search", "a photo", "--library", library_dir)
    assert search.returncode == 0, search.stderr
    assert b"\x1b" not in search.stdout and b"\x07" not in search.stdout
    assert "title\\x1b]0;pwned\\x07.jpg" in search.stdout.decode()

    exact = pixfind("search", "a photo", "--json", "--library", library_dir)
    names = {os.path.basename(r["path"]) for r in json.loads(exact.stdout)}
    assert f"title{OSC_TITLE}.jpg" in names
    errors = json.loads(pixfind("status", "--errors", "--json", "--library", library_dir).stdout)["errors"]
    assert [os.path.basename(e["path"]) for e in errors] == ["broken\nforged.jpg: fake line.jpg"]


def test_error_messages_are_escaped_too(tmp_path, tiny_model, library_dir):
    result = pixfind("search", "--image", tmp_path / f"gone{OSC_TITLE}.jpg", "--library", library_dir)
    assert result.returncode == 1
    assert b"\x1b" not in result.stderr and len(_lines(result.stderr)) == 1


@pytest.mark.parametrize(
    "args, message",
    [
        (["1000000000000000000000000000000000000000000:cat"], "weight"),
        (["9" * 39 + ":cat"], "weight"),
        (["cat", "--add", "missing.jpg"], "missing.jpg: no such image file"),
        (["not a rocket"], "at least one positive term"),
    ],
)
def test_bad_queries_are_one_line_errors(tmp_path, tiny_model, library_dir, args, message):
    make_photo(tmp_path / "photos" / "p.jpg", seed=1)
    assert pixfind("index", tmp_path / "photos", "--library", library_dir).returncode == 0
    result = pixfind("search", *args, "--library", library_dir)
    err = result.stderr.decode()
    assert result.returncode == 1 and message in err, (result.stdout, err)
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_a_huge_query_is_refused_at_once(tiny_model, library_dir):
    huge = " + ".join(["cat"] * 16600)  # ~100 KB: once 235 s and 1 GB
    start = time.monotonic()
    result = pixfind("search", huge, "--library", library_dir, timeout=60)
    assert result.returncode == 1 and b"characters long" in result.stderr
    many = [a for _ in range(65) for a in ("--add", "cat")]
    result = pixfind("search", "cat", *many, "--library", library_dir, timeout=60)
    assert result.returncode == 1 and b"at most 64" in result.stderr
    assert time.monotonic() - start < 30
