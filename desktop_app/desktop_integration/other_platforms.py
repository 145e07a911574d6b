"""The Start-menu shortcut on Windows and the small .app wrapper on macOS.

Neither can be tried on the Linux machines pixfind is built on; both are kept minimal.
"""

from __future__ import annotations

import plistlib
import shlex
from pathlib import Path

from .. import __version__
from ..errors import PixfindError
from .icons import icns_path, ico_path


def mac_app_files(program: str) -> list[tuple[Path, bytes, int]]:
    """~/Applications/pixfind.app: Info.plist, a launcher script and the icon (what Finder and the Dock need)."""
    app = Path.home() / "Applications" / "pixfind.app" / "Contents"
    info = {
        "CFBundleName": "pixfind",
        "CFBundleDisplayName": "pixfind",
        "CFBundleIdentifier": "org.pixfind.pixfind",
        "CFBundleExecutable": "pixfind",
        "CFBundleIconFile": "pixfind.icns",
        "CFBundlePackageType": "APPL",
        "CFBundleShortVersionString": __version__,
        "NSHighResolutionCapable": True,
    }
    launcher = f'#!/bin/sh\n# Written by `pixfind desktop install`.\nexec {shlex.quote(program)} app "$@"\n'
    return [
        (app / "Info.plist", plistlib.dumps(info), 0o644),
        (app / "MacOS" / "pixfind", launcher.encode(), 0o755),
        (app / "Resources" / "pixfind.icns", icns_path().read_bytes(), 0o644),
    ]


def windows_start_menu_shortcut(program: str) -> Path:
    """A Start-menu shortcut to ``pixfind app`` through pyshortcuts (a .lnk needs the Windows shell's COM objects)."""
    try:
        from pyshortcuts import make_shortcut
    except ImportError:
        raise PixfindError("the Start-menu shortcut needs the pyshortcuts package: pip install pyshortcuts") from None
    # the script is "app" run by pixfind.exe: pyshortcuts splits its script at the first space, the executable it quotes
    shortcut = make_shortcut(
        "app", name="pixfind", description="Photo search", icon=str(ico_path()),
        executable=program, terminal=False, desktop=False, startmenu=True,
    )  # fmt: skip
    return Path(shortcut.startmenu_dir) / shortcut.target
