"""The download cache on disk: finished files with their ``.sha256`` sidecar and ``.source``
record (the URL and expected sha256 their bytes came from), and ``.part`` files of partial
downloads, keyed by URL + expected sha256 so that a file from another URL is never reused.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from urllib.parse import unquote, urlsplit

from ..errors import PixfindError
from ..pack import sha256_file
from .errors import _local_error

_SHA256_RE = re.compile(r"^[0-9a-f]{64}$")


def filename_from_url(url: str, default: str = "download") -> str:
    """The file name a URL names: the last segment of its path (no query, no fragment), decoded.

    ``https://host/a/x.pth?token=1`` -> ``x.pth``; a name that cannot be a file name gives ``default``.
    """
    try:
        path = urlsplit(url).path
    except ValueError:
        return default
    name = unquote(path.rstrip("/").rsplit("/", 1)[-1])
    if not name or name in (".", "..") or any(c in name for c in '/\\\x00') or any(ord(c) < 32 for c in name):
        return default
    return name[:200]


def _source_of(path: Path) -> Path:
    """Where the URL (and expected sha256) that ``path``'s bytes came from is recorded."""
    return path.with_name(path.name + ".source")


def _write_source(record: Path, url: str, expected: str | None) -> None:
    tmp = record.with_name(record.name + ".tmp")
    tmp.write_text(f"{url}\n{expected or '-'}\n", encoding="utf-8", newline="\n")
    os.replace(tmp, record)


def _read_source(record: Path) -> tuple[str, str | None] | None:
    """(url, expected sha256 or None) from a source record; None when there is none or it is unreadable."""
    try:
        lines = record.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError):
        return None
    if len(lines) < 2:
        return None
    return lines[0], (lines[1] if _SHA256_RE.match(lines[1]) else None)


def _forget_foreign_part(part: Path, url: str, expected: str | None) -> None:
    """Delete a .part whose bytes came from another URL, or were meant to have another sha256.

    A .part without a record (left by an older pixfind) is resumed as before.
    """
    record = _read_source(_source_of(part))
    if record is None:
        return
    url_then, expected_then = record
    if url_then != url or (expected is not None and expected_then is not None and expected_then != expected):
        try:
            part.unlink(missing_ok=True)
            _source_of(part).unlink(missing_ok=True)
        except OSError as e:
            raise _local_error(e, part, part) from None


def is_cached(url: str, dest: Path, *, expected_sha256: str | None = None) -> bool:
    """Whether :func:`download` would return ``dest`` as it is, without a request."""
    dest = Path(dest)
    expected = _normalise_sha256(expected_sha256)
    return _already_downloaded(dest, dest.with_name(dest.name + ".sha256"), expected, url, touch=False) is not None


def forget(dest: Path) -> None:
    """Delete a downloaded file with its records and any partial download of it, e.g. a cached
    file that turned out unusable, so the next :func:`download` fetches it afresh."""
    dest = Path(dest)
    part = dest.with_name(dest.name + ".part")
    for path in (dest, dest.with_name(dest.name + ".sha256"), _source_of(dest), part, _source_of(part)):
        try:
            path.unlink(missing_ok=True)
        except OSError as e:
            raise _local_error(e, path, dest) from None


# --------------------------------------------------------------------------- finishing


def _install(part: Path, dest: Path, sidecar: Path, digest: str, url: str, expected: str | None) -> None:
    """fsync the complete .part, rename it over ``dest`` atomically, then write the sidecar and
    the source record (the URL it came from); a file without them is downloaded again."""
    try:
        with open(part, "r+b") as f:
            os.fsync(f.fileno())
        sidecar.unlink(missing_ok=True)  # it described an older dest, if any
        _source_of(dest).unlink(missing_ok=True)
        os.replace(part, dest)
        _fsync_dir(dest.parent)
        tmp = sidecar.with_name(sidecar.name + ".tmp")
        with open(tmp, "w", encoding="ascii", newline="\n") as f:
            f.write(f"{digest}  {dest.name}\n")
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, sidecar)
        _write_source(_source_of(dest), url, expected)
        _source_of(part).unlink(missing_ok=True)
        _fsync_dir(dest.parent)
    except OSError as e:
        raise _local_error(e, Path(e.filename) if e.filename else dest, dest) from None


def _already_downloaded(
    dest: Path, sidecar: Path, expected: str | None, url: str, *, touch: bool = True
) -> str | None:
    """The sha256 of ``dest`` if it is already there and good, else None (download it again).

    With an expected sha256 the content decides, wherever it came from. Without one, only a
    file downloaded from this same URL is reused: a file from another URL (a wrong mirror,
    an older --url) or of unknown origin is fetched again rather than trusted.
    """
    try:
        if not dest.is_file():
            return None
        recorded = _read_sidecar(sidecar)
        if expected is None:
            source = _read_source(_source_of(dest))
            if source is None or source[0] != url:
                return None
        if recorded is not None and (expected is None or recorded == expected):
            if dest.stat().st_mtime_ns <= sidecar.stat().st_mtime_ns:
                return recorded  # the sidecar was written after the file: trust it
            if sha256_file(dest) == recorded:  # file touched later, e.g. copied: check it
                if touch:
                    _write_sidecar(sidecar, recorded, dest.name)
                return recorded
            return None
        if expected is not None and sha256_file(dest) == expected:
            if touch:
                _write_sidecar(sidecar, expected, dest.name)
            return expected
    except OSError:
        return None  # unreadable: download it again, which reports real problems clearly
    return None


def _read_sidecar(sidecar: Path) -> str | None:
    try:
        words = sidecar.read_text(encoding="ascii", errors="replace").split()
    except OSError:
        return None
    if words and _SHA256_RE.match(words[0].lower()):
        return words[0].lower()
    return None


def _write_sidecar(sidecar: Path, digest: str, name: str) -> None:
    tmp = sidecar.with_name(sidecar.name + ".tmp")
    tmp.write_text(f"{digest}  {name}\n", encoding="ascii", newline="\n")
    os.replace(tmp, sidecar)


def _fsync_dir(directory: Path) -> None:
    """Make a rename durable on POSIX; a no-op where directories cannot be opened (Windows)."""
    if os.name == "nt":
        return
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _normalise_sha256(value: str | None) -> str | None:
    if value is None:
        return None
    value = value.strip().lower()
    if not _SHA256_RE.match(value):
        raise PixfindError(f"expected sha256 {value!r} is not 64 hexadecimal digits")
    return value
