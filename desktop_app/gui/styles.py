"""The application style sheet."""

from __future__ import annotations


def app_stylesheet() -> str:
    """Only palette roles: the look follows the system's light or dark palette."""
    return """
    QLineEdit#search { border: 1px solid palette(mid); border-radius: 19px; padding: 4px 16px; background: palette(base); }
    QLineEdit#search:focus { border: 2px solid palette(highlight); padding: 3px 15px; }
    QFrame#chip { border: 1px solid palette(mid); border-radius: 8px; background: palette(alternate-base); }
    QFrame#headerLine { color: palette(midlight); max-height: 1px; }
    QListView#results { background: palette(window); }
    QListWidget#folders { background: transparent; }
    QListWidget#folders::item { padding: 4px 6px; border-radius: 6px; }
    QListWidget#folders::item:selected { background: palette(highlight); color: palette(highlighted-text); }
    QStatusBar QLabel { padding: 0 6px; }
    """
