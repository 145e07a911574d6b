"""Render pixfind's icon (desktop_app/resources/icons/pixfind.svg) to the PNG, ICO and ICNS files shipped beside it.

Run after changing the SVG:  python packaging/render_icons.py
Qt's SVG renderer draws each size from the vector source (no downscaling of one big bitmap,
so 16 px stays sharp); Pillow packs the Windows .ico and the macOS .icns from those PNGs.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

ICONS = Path(__file__).resolve().parent.parent / "desktop_app" / "resources" / "icons"
sys.path.insert(0, str(ICONS.parent.parent.parent))

from desktop_app.desktop_integration.icons import ICO_SIZES, PNG_SIZES, png_path  # noqa: E402


def render(svg: Path, size: int, out: Path) -> None:
    from PySide6.QtCore import Qt
    from PySide6.QtGui import QImage, QPainter
    from PySide6.QtSvg import QSvgRenderer

    renderer = QSvgRenderer(str(svg))
    if not renderer.isValid():
        raise SystemExit(f"{svg}: not a valid SVG")
    image = QImage(size, size, QImage.Format_ARGB32_Premultiplied)
    image.fill(Qt.transparent)
    painter = QPainter(image)
    painter.setRenderHint(QPainter.Antialiasing)
    painter.setRenderHint(QPainter.SmoothPixmapTransform)
    renderer.render(painter)
    painter.end()
    if not image.save(str(out), "PNG"):
        raise SystemExit(f"{out}: could not write")


def main() -> int:
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PIL import Image
    from PySide6.QtGui import QGuiApplication

    app = QGuiApplication.instance() or QGuiApplication([sys.argv[0]])  # noqa: F841 - QPainter needs one
    svg = ICONS / "pixfind.svg"
    for size in PNG_SIZES:
        render(svg, size, png_path(size))
    largest = Image.open(png_path(max(PNG_SIZES)))
    largest.save(ICONS / "pixfind.ico", sizes=[(s, s) for s in ICO_SIZES])
    largest.save(ICONS / "pixfind.icns")
    total = sum(p.stat().st_size for p in ICONS.iterdir())
    print(f"wrote {len(PNG_SIZES)} PNGs, pixfind.ico and pixfind.icns in {ICONS} ({total / 1024:.0f} KiB in all)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
