"""`pixfind app` (and `pixfind` alone): open the desktop window."""

from __future__ import annotations

import click

from ..errors import PixfindError


def open_window(library_dir: str | None = None) -> int:
    import os
    import sys

    if sys.platform.startswith("linux") and not (
        os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY") or os.environ.get("QT_QPA_PLATFORM")
    ):
        raise PixfindError("no display to open the window on (DISPLAY is not set); see `pixfind --help` for the commands")
    try:
        from ..gui import run
    except ImportError as e:  # PySide6 missing or its system libraries (libGL, libxcb...) absent
        raise PixfindError(f"cannot start the window ({e}); the command line still works: pixfind --help") from None
    return run(library_dir)


@click.command("app")
@click.option("--library", "library_dir", type=click.Path(file_okay=False), default=None, help="Library folder to open (default: the last one used).")
def app_command(library_dir):
    """Open the pixfind window (also what `pixfind` with no command does)."""
    return open_window(library_dir)


COMMANDS = [app_command]
