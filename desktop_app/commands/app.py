"""`pixfind app` (and `pixfind` alone): open the desktop window, or hand the request to the one already open."""

from __future__ import annotations

import os

import click

from ..errors import PixfindError
from ..text import printable


def open_window(library_dir: str | None = None, request=None) -> int:
    import sys

    if sys.platform.startswith("linux") and not (
        os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY") or os.environ.get("QT_QPA_PLATFORM")
    ):
        raise PixfindError("no display to open the window on (DISPLAY is not set); see `pixfind --help` for the commands")
    try:
        from ..gui import run
    except ImportError as e:  # PySide6 missing or its system libraries (libGL, libxcb...) absent
        raise PixfindError(f"cannot start the window ({e}); the command line still works: pixfind --help") from None
    return run(library_dir, request)


def launch_request(path: str | None, similar: str | None, query: str | None, folder: str | None):
    """The request for the window, checked here so that a mistake is one line in the terminal."""
    from ..desktop_integration.launch_request import LaunchRequest
    from ..library.scanner import is_photo_name

    pick_image = similar == ""  # `--similar` without a file (a menu action run with no file): ask for one
    if path:  # a file manager's "Open with": an image to find similar photos to, or a folder to add
        if os.path.isdir(path):
            folder = folder or path
        else:
            similar = similar or path
    if similar:
        similar = os.path.abspath(similar)
        if not os.path.isfile(similar) or not is_photo_name(similar):
            raise PixfindError(f"{printable(similar)}: not an image file pixfind reads")
    if folder:
        folder = os.path.abspath(folder)
        if not os.path.isdir(folder):
            raise PixfindError(f"{printable(folder)}: not a folder")
    request = LaunchRequest(
        query=(query or "").strip(), similar=similar or "", folder=folder or "", pick_image=pick_image,
        activation_token=os.environ.get("XDG_ACTIVATION_TOKEN", ""),
    )  # fmt: skip
    try:
        return request.validated()
    except ValueError as e:
        raise PixfindError(str(e)) from None


@click.command("app")
@click.argument("path", required=False, type=click.Path())
@click.option("--library", "library_dir", type=click.Path(file_okay=False), default=None, help="Library folder to open (default: the last one used).")
@click.option("--query", default=None, help="Search for these words.")
@click.option(
    "--similar", default=None, is_flag=False, flag_value="", metavar="IMAGE",
    help="Find photos that look like IMAGE (without IMAGE: choose one).",
)  # fmt: skip
@click.option("--add-folder", "folder", type=click.Path(file_okay=False), default=None, help="Add this folder of photos to the library.")
def app_command(path, library_dir, query, similar, folder):
    """Open the pixfind window (also what `pixfind` with no command does).

    PATH, from a file manager: an image finds similar photos, a folder is added. When a window is
    already open on the library, it gets the request and comes to the front.
    """
    return open_window(library_dir, launch_request(path, similar, query, folder))


COMMANDS = [app_command]
