"""Shared helpers for the library tests: generated photos, an installed tiny model, the CLI."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import struct
import subprocess
import sys
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
from PIL import Image

from desktop_app.cli import main

REPO = Path(__file__).resolve().parent.parent


@contextmanager
def small_filesystem(mountpoint: Path, size: str, skip_reason: str) -> Iterator[Path]:
    """``mountpoint`` (an existing folder) as a tmpfs of ``size`` ("2m") while the block runs, to fill
    up; mounting needs root with CAP_SYS_ADMIN, and the test is skipped with ``skip_reason`` otherwise."""
    import pytest

    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(mountpoint)], capture_output=True)
    if mounted.returncode != 0:
        pytest.skip(f"{skip_reason} ({mounted.stderr.decode().strip() or 'mount failed'})")
    try:
        yield mountpoint
    finally:
        subprocess.run(["umount", "--lazy", str(mountpoint)], check=False)


def make_photo(path: Path, seed: int, size=(160, 120), exif: dict | None = None) -> Path:
    """A JPEG with smooth, varied content (upsampled noise), optionally with EXIF tags."""
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, (4, 4, 3), dtype=np.uint8)
    image = Image.fromarray(small).resize(size, Image.Resampling.BICUBIC)
    path.parent.mkdir(parents=True, exist_ok=True)
    kwargs = {}
    if exif:
        e = Image.Exif()
        for tag, value in exif.items():
            if isinstance(value, dict):
                e.get_ifd(tag).update(value)
            else:
                e[tag] = value
        kwargs["exif"] = e
    image.save(os.fsencode(path) if isinstance(path, bytes) else path, "JPEG", quality=90, **kwargs)
    return path


def decompression_bomb(path: Path, side: int = 40000) -> Path:
    """A tiny PNG whose header claims side x side pixels: more than twice Pillow's limit."""
    raw = zlib.compress(b"\x00\x00")
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    header = struct.pack(">IIBBBBB", side, side, 8, 0, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", raw) + chunk(b"IEND", b""))
    return path


def run_cli(capsys, *args) -> tuple[int, str, str]:
    capsys.readouterr()
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def index_json(capsys, library: Path, *folders, extra=()) -> dict:
    code, out, err = run_cli(capsys, "index", *folders, "--library", library, "--json", *extra)
    assert code == 0, err
    return json.loads(out)


def _default_sigint() -> None:
    # A shell runs background jobs (`cmd &`) with SIGINT ignored, and children inherit that: Python
    # then installs no KeyboardInterrupt handler. A user's terminal delivers Ctrl-C; so must the tests.
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def pixfind_process(*args, **kwargs) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "desktop_app", *[str(a) for a in args]],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        preexec_fn=_default_sigint,
        **kwargs,
    )


def db_rows(library: Path, sql: str) -> list[tuple]:
    conn = sqlite3.connect(f"file:{library / 'catalogue.db'}?mode=ro", uri=True)
    try:
        return conn.execute(sql).fetchall()
    finally:
        conn.close()
