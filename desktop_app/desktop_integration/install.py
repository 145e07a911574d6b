"""`pixfind desktop install` / `uninstall`: write the desktop's files for this installation and take them away again.

Every file written is listed, with its sha256, in a manifest in pixfind's data folder.
Install rewrites only files that it wrote itself and that are unchanged since (or that already
hold what it would write), so running it twice changes nothing; uninstall removes exactly those
files, keeps any that were changed since, and removes the folders install created once empty.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from .. import paths
from ..errors import PixfindError
from ..text import printable

MANIFEST_NAME = "desktop-install.json"
MANIFEST_LIMIT = 1 << 20


@dataclass
class DesktopReport:
    platform: str
    written: list[Path] = field(default_factory=list)
    unchanged: list[Path] = field(default_factory=list)
    removed: list[Path] = field(default_factory=list)
    kept: list[Path] = field(default_factory=list)  # changed since install wrote them: the user's now
    cache_problems: list[str] = field(default_factory=list)  # one line per cache tool that failed


def manifest_path() -> Path:
    return paths.data_dir() / MANIFEST_NAME


def platform_name() -> str:
    if sys.platform == "win32":
        return "windows"
    if sys.platform == "darwin":
        return "macos"
    return "freedesktop"


def pixfind_program() -> str:
    """The absolute path of this installation's `pixfind` (the bundle's own executable when frozen)."""
    if getattr(sys, "frozen", False):
        return os.path.abspath(sys.executable)
    scripts = Path(os.path.abspath(sys.executable)).parent  # a virtualenv's bin/ or Scripts/, not resolved
    for name in ("pixfind", "pixfind.exe"):
        if (scripts / name).is_file():
            return str(scripts / name)
    found = shutil.which("pixfind")
    if found:
        return os.path.abspath(found)
    raise PixfindError(f"cannot find the pixfind program beside {printable(sys.executable)} nor on PATH; install pixfind first")


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _file_sha256(path: Path) -> str | None:
    try:
        return _sha256(path.read_bytes())
    except OSError:
        return None


def _load_manifest() -> dict:
    path = manifest_path()
    try:
        if path.stat().st_size > MANIFEST_LIMIT:
            raise PixfindError(f"{path}: larger than {MANIFEST_LIMIT} bytes; not a pixfind install record")
        data = json.loads(path.read_text(encoding="utf-8", errors="surrogateescape"))
    except FileNotFoundError:
        return {"files": {}, "dirs": [], "caches": []}
    except (OSError, ValueError) as e:
        raise PixfindError(f"{path}: unreadable install record ({e})") from None
    try:
        files = {str(p): str(h) for p, h in dict(data["files"]).items()}
        dirs = [str(d) for d in data.get("dirs", [])]
        caches = [str(c) for c in data.get("caches", [])]
    except (KeyError, TypeError, ValueError):
        raise PixfindError(f"{path}: not a pixfind install record") from None
    if not all(os.path.isabs(p) for p in [*files, *dirs, *caches]):
        raise PixfindError(f"{path}: not a pixfind install record (relative paths)")
    return {"files": files, "dirs": dirs, "caches": caches}


def _save_manifest(manifest: dict) -> None:
    path = manifest_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps({"format": 1, "platform": platform_name(), **manifest}, indent=1), encoding="utf-8", errors="surrogateescape")
    os.replace(tmp, path)


def _make_dirs(folder: Path, created: list[str]) -> None:
    missing = []
    while not folder.exists():
        missing.append(folder)
        folder = folder.parent
    for d in reversed(missing):
        d.mkdir()
        created.append(str(d))


def _write(path: Path, content: bytes, mode: int) -> None:
    tmp = path.with_name(f".{path.name}.pixfind-tmp")
    tmp.write_bytes(content)
    os.chmod(tmp, mode)
    os.replace(tmp, path)


def _planned(program: str) -> list[tuple[Path, bytes, int]]:
    if platform_name() == "freedesktop":
        from .freedesktop import planned_files

        return planned_files(program)
    if platform_name() == "macos":
        from .other_platforms import mac_app_files

        return mac_app_files(program)
    return []


def _cache_files() -> list[str]:
    """The desktop's cache files that exist now (install records those it brought into being)."""
    if platform_name() != "freedesktop":
        return []
    from .freedesktop import data_home

    candidates = [data_home() / "applications" / "mimeinfo.cache", data_home() / "icons" / "hicolor" / "icon-theme.cache"]
    return [str(c) for c in candidates if c.exists()]


def _refresh_caches(report: DesktopReport) -> None:
    """Run the cache tools that exist; a failure is one line in the report, never an error."""
    if platform_name() != "freedesktop":
        return
    from .freedesktop import cache_commands

    for command in cache_commands():
        if shutil.which(command[0]) is None:
            continue
        try:
            run = subprocess.run(command, capture_output=True, text=True, timeout=60)
            if run.returncode != 0:
                last = (run.stderr.strip().splitlines() or [f"exit status {run.returncode}"])[-1]
                report.cache_problems.append(f"{command[0]}: {printable(last)}")
        except (OSError, subprocess.SubprocessError) as e:
            report.cache_problems.append(f"{command[0]}: {printable(str(e))}")


def install() -> DesktopReport:
    report = DesktopReport(platform_name())
    program = pixfind_program()
    manifest = _load_manifest()
    known: dict[str, str] = manifest["files"]
    planned = _planned(program)
    # Check every target before writing any: a file install did not write is never overwritten.
    for path, content, _ in planned:
        current = _file_sha256(path) if path.exists() or path.is_symlink() else None
        if path.is_symlink() or path.is_dir() or (current is not None and current != _sha256(content) and known.get(str(path)) != current):
            raise PixfindError(f"{printable(path)}: already there and not written by `pixfind desktop install`; move it away first")
    caches_before = set(_cache_files())
    dirs = list(manifest["dirs"])
    files: dict[str, str] = {}
    for path, content, mode in planned:
        files[str(path)] = _sha256(content)
        if _file_sha256(path) == _sha256(content) and (path.stat().st_mode & 0o777) == mode:
            report.unchanged.append(path)
            continue
        _make_dirs(path.parent, dirs)
        _write(path, content, mode)
        report.written.append(path)
    if platform_name() == "windows":
        link = Path(_windows_shortcut(program))
        files[str(link)] = _file_sha256(link) or ""
        report.written.append(link)
    # files an earlier install wrote that this one does not (another version of pixfind): taken away if untouched
    for old, digest in known.items():
        if old not in files:
            _remove_if_ours(Path(old), digest, report)
    if report.written or report.removed:  # nothing changed: the caches are left alone too
        _refresh_caches(report)
    caches = set(manifest["caches"]) | (set(_cache_files()) - caches_before)
    _save_manifest({"files": files, "dirs": dirs, "caches": sorted(caches)})
    return report


def _windows_shortcut(program: str) -> Path:
    from .other_platforms import windows_start_menu_shortcut

    return windows_start_menu_shortcut(program)


def _remove_if_ours(path: Path, digest: str, report: DesktopReport) -> None:
    if not path.exists() and not path.is_symlink():
        return
    if path.is_symlink() or _file_sha256(path) != digest:
        report.kept.append(path)
        return
    path.unlink()
    report.removed.append(path)


def uninstall() -> DesktopReport:
    report = DesktopReport(platform_name())
    record = manifest_path()
    if not record.exists():
        return report
    manifest = _load_manifest()
    for path, digest in manifest["files"].items():
        _remove_if_ours(Path(path), digest, report)
    _refresh_caches(report)  # the menu and the icon theme forget pixfind
    for cache in map(Path, manifest["caches"]):
        # a cache file that install brought into being goes too, once it is all that is left in its folder
        if cache.is_file() and not cache.is_symlink() and [p.name for p in cache.parent.iterdir()] == [cache.name]:
            cache.unlink()
    for folder in sorted(manifest["dirs"], key=len, reverse=True):
        try:
            os.rmdir(folder)
        except OSError:
            pass  # not empty (something else lives there) or already gone
    record.unlink()
    return report
