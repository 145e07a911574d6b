"""Where pixfind keeps its files: per-user directories from platformdirs.

``PIXFIND_HOME`` moves everything under one directory (used by tests, portable installs).
"""

from __future__ import annotations

import os
from pathlib import Path

import platformdirs

APP_NAME = "pixfind"


def _home() -> Path | None:
    value = os.environ.get("PIXFIND_HOME")
    return Path(value).expanduser() if value else None


def data_dir() -> Path:
    home = _home()
    return home / "data" if home else Path(platformdirs.user_data_dir(APP_NAME, appauthor=False))


def cache_dir() -> Path:
    home = _home()
    return home / "cache" if home else Path(platformdirs.user_cache_dir(APP_NAME, appauthor=False))


def models_dir() -> Path:
    """Installed model packs, one directory each."""
    return data_dir() / "models"


def downloads_dir() -> Path:
    """Downloaded checkpoints, kept so an interrupted download can resume."""
    return cache_dir() / "checkpoints"


def default_library_dir() -> Path:
    return data_dir() / "library"


def settings_file() -> Path:
    return data_dir() / "settings.json"


def dir_size(path: Path) -> int:
    """Bytes in the files under ``path``."""
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
