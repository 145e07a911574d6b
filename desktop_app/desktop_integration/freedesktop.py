"""The files pixfind puts on a freedesktop (Linux, BSD) desktop: the menu entry, the icon in the
hicolor theme, a Nautilus script and a Dolphin service menu, all opening `pixfind app`.

Written by hand rather than with pyshortcuts: its Linux entry has no MimeType, no actions, no
TryExec or StartupWMClass, ignores XDG_DATA_HOME and installs no themed icon.
"""

from __future__ import annotations

import os
import shlex
from pathlib import Path

from ..errors import PixfindError
from ..library.scanner import EXTENSIONS
from .icons import ICON_NAME, PNG_SIZES, png_path, svg_path

DESKTOP_FILE = "pixfind.desktop"  # matches QGuiApplication.setDesktopFileName("pixfind") and StartupWMClass
NAUTILUS_SCRIPT = "Find similar in pixfind"
DOLPHIN_MENU = "pixfind-find-similar.desktop"

# What each extension the scanner reads is called in shared-mime-info.
MIME_TYPES = {
    ".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".jpe": "image/jpeg",
    ".png": "image/png", ".webp": "image/webp", ".gif": "image/gif", ".bmp": "image/bmp",
    ".tif": "image/tiff", ".tiff": "image/tiff",
    ".heic": "image/heic", ".heif": "image/heif", ".avif": "image/avif",
    ".dng": "image/x-adobe-dng", ".cr2": "image/x-canon-cr2", ".cr3": "image/x-canon-cr3",
    ".nef": "image/x-nikon-nef", ".nrw": "image/x-nikon-nrw", ".arw": "image/x-sony-arw",
    ".orf": "image/x-olympus-orf", ".rw2": "image/x-panasonic-rw2", ".raf": "image/x-fuji-raf",
    ".pef": "image/x-pentax-pef", ".srw": "image/x-samsung-srw", ".x3f": "image/x-sigma-x3f",
}  # fmt: skip


def mime_types() -> list[str]:
    missing = sorted(EXTENSIONS - MIME_TYPES.keys())
    if missing:  # a new extension in the scanner needs its MIME type here
        raise PixfindError(f"no MIME type known for {', '.join(missing)}")
    return sorted({MIME_TYPES[e] for e in EXTENSIONS})


def data_home() -> Path:
    """$XDG_DATA_HOME, or ~/.local/share when it is unset, empty or relative (the spec says to ignore those)."""
    value = os.environ.get("XDG_DATA_HOME", "")
    return Path(value) if os.path.isabs(value) else Path.home() / ".local" / "share"


_RESERVED = set(" \t\n\"'\\><~|&;$*?#()`")


def _exec_arg(arg: str) -> str:
    """One argument of an Exec key: quoted when needed (the Desktop Entry spec's rules), then escaped as a string value."""
    if any(ord(c) < 0x20 or c == "\x7f" for c in arg):
        raise PixfindError(f"{arg!r}: a control character in the path of pixfind; it cannot go into a desktop entry")
    if any(c in _RESERVED for c in arg):
        arg = '"' + "".join("\\" + c if c in '"`$\\' else c for c in arg) + '"'
    return arg.replace("\\", "\\\\").replace("%", "%%")


def exec_line(program: str, *args: str) -> str:
    """``program args`` for Exec=; args that are field codes (%f) pass through unquoted."""
    return " ".join([_exec_arg(program), *(a if a.startswith("%") else _exec_arg(a) for a in args)])


def _value(text: str) -> str:
    return text.replace("\\", "\\\\").replace("\n", "\\n").replace("\t", "\\t")


def desktop_entry(program: str) -> str:
    mimes = "".join(m + ";" for m in mime_types())
    return f"""[Desktop Entry]
Type=Application
Version=1.4
Name=pixfind
GenericName=Photo search
Comment=Find photos on your own disk by describing them or by example
Exec={exec_line(program, "app", "%f")}
TryExec={_value(program)}
Icon={ICON_NAME}
Terminal=false
Categories=Graphics;Photography;
Keywords=photo;picture;image;search;find;similar;duplicates;
MimeType={mimes}
StartupNotify=true
StartupWMClass=pixfind
Actions=search-photos;find-similar;

[Desktop Action search-photos]
Name=Search photos
Exec={exec_line(program, "app")}

[Desktop Action find-similar]
Name=Find similar…
Exec={exec_line(program, "app", "--similar", "%f")}
"""


def dolphin_service_menu(program: str) -> str:
    mimes = "".join(m + ";" for m in mime_types())
    return f"""[Desktop Entry]
Type=Service
MimeType={mimes}
Actions=pixfindFindSimilar;
X-KDE-Priority=TopLevel

[Desktop Action pixfindFindSimilar]
Name=Find similar in pixfind
Icon={ICON_NAME}
Exec={exec_line(program, "app", "--similar", "%f")}
"""


def nautilus_script(program: str) -> str:
    # Nautilus passes the selected local files as arguments; the first one is the example.
    return f"""#!/bin/sh
# Written by `pixfind desktop install`; `pixfind desktop uninstall` removes it.
[ -n "$1" ] || exit 0
exec {shlex.quote(program)} app --similar "$1"
"""


def planned_files(program: str) -> list[tuple[Path, bytes, int]]:
    """(where, content, mode) of every file install writes on this desktop."""
    home = data_home()
    files = [
        (home / "applications" / DESKTOP_FILE, desktop_entry(program).encode(), 0o644),
        (home / "icons" / "hicolor" / "scalable" / "apps" / f"{ICON_NAME}.svg", svg_path().read_bytes(), 0o644),
    ]
    for size in PNG_SIZES:
        files.append((home / "icons" / "hicolor" / f"{size}x{size}" / "apps" / f"{ICON_NAME}.png", png_path(size).read_bytes(), 0o644))
    # Dolphin (KDE Frameworks >= 5.85) runs only service menus that are executable.
    files.append((home / "kio" / "servicemenus" / DOLPHIN_MENU, dolphin_service_menu(program).encode(), 0o755))
    files.append((home / "nautilus" / "scripts" / NAUTILUS_SCRIPT, nautilus_script(program).encode(), 0o755))
    return files


def cache_commands() -> list[list[str]]:
    """The caches a desktop reads the menu and icons from, refreshed after install and uninstall."""
    home = data_home()
    hicolor = home / "icons" / "hicolor"
    commands = [["update-desktop-database", "-q", str(home / "applications")]]
    if (hicolor / "icon-theme.cache").exists():
        # only an existing cache: a new one would hide icons that later installs drop in without updating it
        commands.append(["gtk-update-icon-cache", "-q", "-f", "-t", str(hicolor)])
    commands.append(["xdg-desktop-menu", "forceupdate"])
    return commands
