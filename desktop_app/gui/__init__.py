"""The desktop app: a PySide6 window over the library and search engine.

``run()`` opens it; ``pixfind`` with no subcommand and ``pixfind app`` call it. One window per
library: a second launch hands its request to the first one (``single_instance``) and exits.
"""

from __future__ import annotations

import os
import sys


def app_icon():
    """pixfind's icon at every size it ships (the window, its dialogs, the task bar)."""
    from PySide6.QtGui import QIcon

    from ..desktop_integration.icons import PNG_SIZES, png_path

    icon = QIcon()
    for size in PNG_SIZES:
        icon.addFile(str(png_path(size)))
    return icon


def create_app(argv: list[str] | None = None):
    """The QApplication, created once, with high-DPI rounding that keeps thumbnails crisp."""
    from PySide6.QtCore import Qt
    from PySide6.QtGui import QGuiApplication
    from PySide6.QtWidgets import QApplication

    app = QApplication.instance()
    if app is None:
        QGuiApplication.setHighDpiScaleFactorRoundingPolicy(Qt.HighDpiScaleFactorRoundingPolicy.PassThrough)
        app = QApplication(argv or [sys.argv[0]])
        app.setApplicationName("pixfind")
        app.setOrganizationName("pixfind")
        app.setApplicationDisplayName("pixfind")
        app.setDesktopFileName("pixfind")  # the installed pixfind.desktop (its icon, its StartupWMClass)
    if app.windowIcon().isNull():
        app.setWindowIcon(app_icon())  # every window and dialog inherits it
    from .styles import app_stylesheet

    app.setStyleSheet(app_stylesheet())
    return app


def library_folder(library_dir: str | None) -> str:
    """The library the window will open: the one asked for, else the last one used, else the default."""
    from .. import paths
    from .settings import settings

    return library_dir or settings().value("library") or str(paths.default_library_dir())


def open_window(library_dir: str | None = None, request=None):
    """The window on ``library_dir`` showing ``request`` (a ``single_instance.LaunchRequest``), or None
    when a pixfind window already runs on that library: it got the request and came to the front."""
    from .single_instance import LaunchRequest, apply, claim, server_name

    request = request or LaunchRequest(activation_token=os.environ.get("XDG_ACTIVATION_TOKEN", ""))
    app = create_app()
    library = library_folder(library_dir)
    server = claim(server_name(library), request)
    if server is None:
        return None
    from .main_window import MainWindow

    window = MainWindow(library)
    server.setParent(window)
    window.instance_server = server
    server.requested.connect(lambda r: apply(window, r))
    server.close_with(window)
    app.aboutToQuit.connect(server.close)
    apply(window, request)
    return window


def run(library_dir: str | None = None, request=None) -> int:
    app = create_app()
    window = open_window(library_dir, request)
    if window is None:
        return 0
    return app.exec()
