"""The window's settings store, importable without the window (a second launch reads the last library)."""

from __future__ import annotations

import os

from PySide6.QtCore import QSettings

from .. import paths


def settings() -> QSettings:
    """Window settings; under PIXFIND_HOME (tests, portable installs) they live in an ini file there."""
    if os.environ.get("PIXFIND_HOME"):
        return QSettings(str(paths.data_dir() / "gui.ini"), QSettings.IniFormat)
    return QSettings("pixfind", "pixfind")
