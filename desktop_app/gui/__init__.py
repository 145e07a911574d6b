"""The desktop app: a PySide6 window over the library and search engine.

``run()`` opens it; ``pixfind`` with no subcommand and ``pixfind app`` call it.
"""

from __future__ import annotations

import sys


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
        app.setDesktopFileName("pixfind")
    from .styles import app_stylesheet

    app.setStyleSheet(app_stylesheet())
    return app


def run(library_dir: str | None = None) -> int:
    app = create_app()
    from .main_window import MainWindow

    window = MainWindow(library_dir)
    window.show()
    return app.exec()
