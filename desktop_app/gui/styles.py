"""The application style sheet and the colours the palette has no role for (errors)."""

from __future__ import annotations

from PySide6.QtGui import QColor, QPalette

CHECK_SVG = (
    '<svg xmlns="http://www.w3.org/2000/svg" width="16" height="16" viewBox="0 0 16 16">'
    '<path d="M3.5 8.5 L6.5 11.5 L12.5 4.5" fill="none" stroke="white" stroke-width="2.2" '
    'stroke-linecap="round" stroke-linejoin="round"/></svg>'
)


def is_dark(palette: QPalette) -> bool:
    return palette.color(QPalette.Window).lightness() < 128


def error_colour(palette: QPalette) -> QColor:
    """A red that reads on the palette's window colour (light and dark)."""
    return QColor("#ff7b72") if is_dark(palette) else QColor("#c62828")


def _check_mark() -> str:
    """The tick of a checked box, as a file the style sheet can name ("" if it cannot be written)."""
    from .. import paths

    try:
        path = paths.cache_dir() / "style" / "check.svg"
        if not path.exists() or path.read_text() != CHECK_SVG:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(CHECK_SVG)
        return path.as_posix()
    except OSError:
        return ""


def app_stylesheet() -> str:
    """Only palette roles: the look follows the system's light or dark palette.

    Slider grooves and unticked boxes get an outline in the palette's text colour at
    reduced strength (``palette(placeholder-text)``): the styles' own, drawn from the
    window colour, nearly vanish on dark palettes.
    """
    tick = _check_mark()
    tick_rule = f"image: url({tick});" if tick else ""
    return f"""
    QLineEdit#search {{ border: 1px solid palette(mid); border-radius: 19px; padding: 4px 16px; background: palette(base); }}
    QLineEdit#search:focus {{ border: 2px solid palette(highlight); padding: 3px 15px; }}
    QFrame#chip {{ border: 1px solid palette(mid); border-radius: 8px; background: palette(alternate-base); }}
    QFrame#headerLine {{ color: palette(midlight); max-height: 1px; }}
    QAbstractItemView#results {{ background: palette(window); }}
    QListWidget#folders {{ background: transparent; }}
    QListWidget#folders::item {{ padding: 4px 6px; border-radius: 6px; }}
    QListWidget#folders::item:selected {{ background: palette(highlight); color: palette(highlighted-text); }}
    QStatusBar QLabel {{ padding: 0 6px; }}
    QPushButton#weakMatches {{ border: 1px solid palette(mid); border-radius: 14px; padding: 5px 14px;
        background: palette(alternate-base); color: palette(text); text-align: left; }}
    QPushButton#weakMatches:hover {{ border-color: palette(highlight); }}
    QPushButton#weakMatches:focus {{ border: 2px solid palette(highlight); padding: 4px 13px; }}
    QSlider::groove:horizontal {{ height: 4px; border-radius: 2px; background: palette(placeholder-text); }}
    QSlider::sub-page:horizontal {{ height: 4px; border-radius: 2px; background: palette(highlight); }}
    QSlider::handle:horizontal {{ width: 14px; height: 14px; margin: -6px 0; border-radius: 8px;
        background: palette(button); border: 1px solid palette(placeholder-text); }}
    QSlider::handle:horizontal:hover {{ border-color: palette(highlight); }}
    QSlider::sub-page:horizontal:disabled {{ background: palette(mid); }}
    QCheckBox::indicator {{ width: 14px; height: 14px; border-radius: 3px;
        border: 1px solid palette(placeholder-text); background: palette(base); }}
    QCheckBox::indicator:hover {{ border-color: palette(highlight); }}
    QCheckBox::indicator:checked {{ background: palette(highlight); border-color: palette(highlight); {tick_rule} }}
    """
