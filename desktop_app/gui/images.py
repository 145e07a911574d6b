"""Image and text helpers shared by the grid, the dialogs and the search bar."""

from __future__ import annotations

import datetime as dt

from PySide6.QtCore import QSize, Qt
from PySide6.QtGui import QImage, QImageReader, QPixmap
from PySide6.QtWidgets import QLabel

from .. import text


def short_side(path: str) -> int:
    """The shorter edge of an image file in pixels, from its header (0 when unreadable)."""
    size = QImageReader(path).size()
    return min(size.width(), size.height()) if size.isValid() else 0


def read_scaled(path: str, side: int, crop: bool = True) -> QImage:
    """An image whose shorter edge is ``side`` device pixels; QImageReader decodes at reduced size.

    ``crop``: the centred square, exactly ``side`` × ``side`` (a smaller source is scaled up,
    so a cell or a dialog's tile is always filled, at an even size). Without it the aspect
    ratio is kept and a smaller source is returned as it is (the caller may look for a
    larger one rather than draw it blurred).
    """
    reader = QImageReader(path)
    reader.setAutoTransform(True)
    size = reader.size()
    if size.isValid() and size.width() > 0 and size.height() > 0:
        scale = side / min(size.width(), size.height())
        if scale < 1:
            reader.setScaledSize(QSize(max(1, round(size.width() * scale)), max(1, round(size.height() * scale))))
    image = reader.read()
    if image.isNull():
        return image
    w, h = image.width(), image.height()
    s = min(w, h)
    if not crop:
        if s > side:
            image = image.scaled(max(1, round(w * side / s)), max(1, round(h * side / s)), Qt.IgnoreAspectRatio, Qt.SmoothTransformation)
        return image.convertToFormat(QImage.Format_RGB32)
    image = image.copy((w - s) // 2, (h - s) // 2, s, s)
    if s != side:
        image = image.scaled(side, side, Qt.IgnoreAspectRatio, Qt.SmoothTransformation)
    return image.convertToFormat(QImage.Format_RGB32)


def set_pixmap(label: QLabel, image: QImage, dpr: float, missing: str | None = "no preview") -> None:
    """Show a thumbnail read on a worker thread; a label deleted meanwhile is left alone."""
    try:
        if image.isNull():
            if missing is not None:
                label.setText(missing)
            return
        pix = QPixmap.fromImage(image)
        pix.setDevicePixelRatio(dpr)  # device pixels: drawn 1:1, neither blurred up nor halved
        label.setPixmap(pix)
    except RuntimeError:  # the dialog closed meanwhile
        pass


def format_date(seconds: float | None) -> str:
    if seconds is None:
        return ""
    try:
        return dt.datetime.fromtimestamp(seconds, dt.timezone.utc).strftime("%d %b %Y, %H:%M")
    except (OverflowError, OSError, ValueError):
        return ""


def human_size(n: int | None) -> str:
    """The app's one size format (as the command line prints it); "" for an unknown size."""
    return text.human_size(n) if n else ""
