"""Moving photos to the platform's trash, never deleting them, and putting them back.

send2trash does the move on every platform. Undo needs to know where a file went: on
Linux and the BSDs (the freedesktop.org trash), each trashed file has an ``info/NAME.trashinfo``
beside ``files/NAME`` that records its original path, so it can be moved back exactly.
Elsewhere (Windows recycle bin, macOS Trash) there is no portable way back, and the user
is told to restore the photos from the Trash.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote_to_bytes

INFO_SUFFIX = ".trashinfo"


@dataclass(frozen=True)
class TrashedFile:
    original: str
    files_entry: str | None = None  # where it lies in the trash, when the platform lets us find it
    info_entry: str | None = None

    @property
    def restorable(self) -> bool:
        return self.files_entry is not None


@dataclass
class TrashOutcome:
    moved: list[TrashedFile] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    bytes: int = 0

    @property
    def restorable(self) -> bool:
        return bool(self.moved) and all(f.restorable for f in self.moved)


@dataclass
class RestoreOutcome:
    restored: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


def total_size(paths: list[str]) -> int:
    size = 0
    for p in paths:
        try:
            size += os.stat(p).st_size
        except OSError:
            pass
    return size


def move_to_trash(paths: list[str]) -> TrashOutcome:
    from send2trash import send2trash

    outcome = TrashOutcome()
    for path in paths:
        path = os.path.abspath(path)
        try:
            size = os.stat(path).st_size
            before = _info_entries(path)
            send2trash(path)
        except Exception as e:  # noqa: BLE001 - send2trash raises OSError or its own TrashPermissionError
            outcome.problems.append(f"{path}: {getattr(e, 'strerror', None) or e}")
            continue
        outcome.bytes += size
        outcome.moved.append(_locate(path, before))
    return outcome


def restore(files: list[TrashedFile]) -> RestoreOutcome:
    """Move trashed files back to where they were; a place taken meanwhile is not overwritten."""
    outcome = RestoreOutcome()
    for f in files:
        if not f.restorable:
            outcome.problems.append(f"{f.original}: restore it from the Trash")
            continue
        if os.path.lexists(f.original):
            outcome.problems.append(f"{f.original}: a file of that name exists again; the trashed copy is kept")
            continue
        try:
            os.makedirs(os.path.dirname(f.original), exist_ok=True)
            os.rename(f.files_entry, f.original)
        except OSError as e:
            outcome.problems.append(f"{f.original}: cannot restore ({e.strerror or e})")
            continue
        if f.info_entry:
            try:
                os.unlink(f.info_entry)
            except OSError:
                pass
        outcome.restored.append(f.original)
    return outcome


# ------------------------------------------------------------------ freedesktop.org trash


def _trash_dirs(path: str) -> list[Path]:
    """The trash folders a file may go to: the home trash, and those of the file's volume."""
    if sys.platform in ("win32", "darwin"):
        return []
    data_home = os.environ.get("XDG_DATA_HOME") or os.path.expanduser("~/.local/share")
    dirs = [Path(data_home) / "Trash"]
    try:  # send2trash fixes the home trash when it is imported; look there too
        from send2trash import plat_other

        dirs.append(Path(os.fsdecode(plat_other.HOMETRASH_B)))
    except Exception:  # noqa: BLE001 - another backend; the default locations remain
        pass
    top = _mount_point(path)
    uid = os.getuid()
    dirs += [top / ".Trash" / str(uid), top / f".Trash-{uid}"]
    seen, unique = set(), []
    for d in dirs:
        if d not in seen:
            seen.add(d)
            unique.append(d)
    return unique


def _mount_point(path: str) -> Path:
    p = Path(path).resolve().parent
    while not os.path.ismount(p) and p != p.parent:
        p = p.parent
    return p


def _info_entries(path: str) -> set[Path]:
    entries = set()
    for d in _trash_dirs(path):
        try:
            entries.update(e for e in (d / "info").iterdir() if e.name.endswith(INFO_SUFFIX))
        except OSError:
            pass
    return entries


def _locate(original: str, before: set[Path]) -> TrashedFile:
    """The trash entry written for ``original`` by the move that just happened."""
    target = os.fsencode(original)
    for info in sorted(_info_entries(original) - before):
        recorded = _recorded_path(info)
        if recorded is None:
            continue
        trash_dir = info.parent.parent
        absolute = recorded if os.path.isabs(recorded) else os.path.join(os.fsencode(_mount_point(original)), recorded)
        if os.path.normpath(absolute) != os.path.normpath(target):
            continue
        entry = trash_dir / "files" / info.name[: -len(INFO_SUFFIX)]
        if os.path.lexists(entry):
            return TrashedFile(original, str(entry), str(info))
    return TrashedFile(original)


def _recorded_path(info: Path) -> bytes | None:
    try:
        text = info.read_text("utf-8", "replace")
    except OSError:
        return None
    for line in text.splitlines():
        if line.startswith("Path="):
            return unquote_to_bytes(line[len("Path=") :].strip())
    return None
