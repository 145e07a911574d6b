"""Image and text helpers shared by the grid, the dialogs and the search bar."""

from __future__ import annotations

import datetime as dt

from PySide6.QtCore import QSize, Qt
from PySide6.QtGui import QImage, QImageReader, QPixmap
from PySide6.QtWidgets import QLabel

from .. import text


def read_scaled(path: str, side: int) -> QImage:
    """A square-cropped thumbnail ``side`` device pixels wide; QImageReader decodes at reduced size."""
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
    image = image.copy((w - s) // 2, (h - s) // 2, s, s)
    if s > side:
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
        pix.setDevicePixelRatio(dpr)
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
