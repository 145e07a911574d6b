"""Walks photo folders: every image file found, and every problem met on the way."""

from __future__ import annotations

import errno
import os
import stat
from dataclasses import dataclass, field

PHOTO_EXTENSIONS = frozenset(
    ".jpg .jpeg .jpe .png .webp .gif .bmp .tif .tiff .heic .heif .avif".split()
)
RAW_EXTENSIONS = frozenset(".dng .cr2 .cr3 .nef .nrw .arw .orf .rw2 .raf .pef .srw .x3f".split())
EXTENSIONS = PHOTO_EXTENSIONS | RAW_EXTENSIONS


def is_photo_name(name: str) -> bool:
    return os.path.splitext(name)[1].lower() in EXTENSIONS


@dataclass
class FoundFile:
    path: str
    size: int
    mtime_ns: int


@dataclass
class ScanResult:
    files: list[FoundFile] = field(default_factory=list)
    problems: list[tuple[str, str]] = field(default_factory=list)  # (path, reason)
    # Folders that could not be read completely: photos catalogued under them are not
    # treated as deleted, since we could not see whether they are still there.
    incomplete: list[str] = field(default_factory=list)


def os_error_reason(e: OSError) -> str:
    """The reason recorded for a file or folder that could not be read (the indexer words its own
    OSErrors with it too, so one problem reads the same whichever step met it)."""
    if e.errno == errno.ELOOP:
        return "symbolic link loop"
    if e.errno in (errno.EACCES, errno.EPERM):
        return "permission denied"
    if e.errno == errno.ENOENT:
        return "disappeared during the scan"
    if e.errno == errno.ENAMETOOLONG:
        return "file name too long"
    return e.strerror or str(e)


def scan(root: str, skip: set[str] | None = None) -> ScanResult:
    """Find photos under root, recursively. Hidden files and folders (dot names) are skipped.

    Symbolic links are followed; a link to a folder already on the current path is a loop
    and is reported, a broken link with a photo name is reported, other links to places
    already scanned are ignored.
    """
    result = ScanResult()
    skip = {os.path.realpath(p) for p in (skip or ())}
    seen_dirs: set[tuple[int, int]] = set()

    def walk(directory: str, ancestors: frozenset[tuple[int, int]]) -> None:
        try:
            st = os.stat(directory)
            key = (st.st_dev, st.st_ino)
            if key in ancestors:
                result.problems.append((directory, "symbolic link loop"))
                return
            if key in seen_dirs or os.path.realpath(directory) in skip:
                return
            seen_dirs.add(key)
            with os.scandir(directory) as it:
                entries = list(it)
        except OSError as e:
            result.problems.append((directory, os_error_reason(e)))
            result.incomplete.append(directory)
            return
        inner = ancestors | {key}
        subdirs = []
        for entry in sorted(entries, key=lambda e: e.name):
            if entry.name.startswith("."):
                continue
            try:
                is_link = entry.is_symlink()
                if is_link:
                    st = os.stat(entry.path)  # raises for a broken link or a link loop
                    if stat.S_ISDIR(st.st_mode):
                        subdirs.append(entry.path)
                        continue
                elif entry.is_dir(follow_symlinks=False):
                    subdirs.append(entry.path)
                    continue
                if not is_photo_name(entry.name):
                    continue
                st = entry.stat()
                if not stat.S_ISREG(st.st_mode):
                    continue
                result.files.append(FoundFile(entry.path, st.st_size, st.st_mtime_ns))
            except OSError as e:
                if is_photo_name(entry.name) or e.errno == errno.ELOOP:
                    reason = "broken symbolic link" if is_link and e.errno == errno.ENOENT else os_error_reason(e)
                    result.problems.append((entry.path, reason))
        for sub in subdirs:
            walk(sub, inner)

    walk(os.path.abspath(root), frozenset())
    return result
