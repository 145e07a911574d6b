"""The icon files shipped in the package (drawn in pixfind.svg, rendered by packaging/render_icons.py)."""

from __future__ import annotations

from pathlib import Path

ICON_DIR = Path(__file__).resolve().parent.parent / "resources" / "icons"
ICON_NAME = "pixfind"  # the name in the icon theme and the desktop entry's Icon=
PNG_SIZES = (16, 24, 32, 48, 64, 128, 256, 512)
ICO_SIZES = (16, 24, 32, 48, 64, 128, 256)  # the .ico format stops at 256


def png_path(size: int) -> Path:
    return ICON_DIR / f"{ICON_NAME}-{size}.png"


def svg_path() -> Path:
    return ICON_DIR / f"{ICON_NAME}.svg"


def ico_path() -> Path:
    return ICON_DIR / f"{ICON_NAME}.ico"


def icns_path() -> Path:
    return ICON_DIR / f"{ICON_NAME}.icns"
