"""The detail view (Enter) and the quick preview (Space) of one result."""

from __future__ import annotations

import os
import sys

from PySide6.QtCore import QSize, Qt, QUrl, Signal
from PySide6.QtGui import (
    QDesktopServices,
    QGuiApplication,
    QImage,
    QImageReader,
    QKeySequence,
    QPixmap,
    QShortcut,
)
from PySide6.QtWidgets import (
    QDialog,
    QFormLayout,
    QFrame,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSizePolicy,
    QVBoxLayout,
    QWidget,
)

from ..services import PhotoItem
from . import tasks
from .images import format_date, human_size


def load_preview(path: str, longest: int) -> QImage:
    """The photo upright and at most ``longest`` device pixels on its long side (worker thread)."""
    reader = QImageReader(path)
    reader.setAutoTransform(True)
    size = reader.size()
    if size.isValid() and max(size.width(), size.height()) > longest:
        s = longest / max(size.width(), size.height())
        reader.setScaledSize(QSize(max(1, int(size.width() * s)), max(1, int(size.height() * s))))
    image = reader.read()
    if image.isNull():  # formats Qt cannot read (HEIC, RAW): through the engine's decoder
        try:
            from PIL.ImageQt import ImageQt

            from ..library.decode import open_upright

            pil = open_upright(path, draft_size=longest)
            pil.thumbnail((longest, longest))
            image = QImage(ImageQt(pil))
        except Exception:  # noqa: BLE001 - no preview is shown as such, not as an error
            return QImage()
    return image


def reveal_in_file_manager(path: str) -> None:
    if sys.platform == "darwin":
        import subprocess

        subprocess.Popen(["open", "-R", path])
    elif os.name == "nt":
        import subprocess

        subprocess.Popen(["explorer", "/select,", os.path.normpath(path)])
    else:
        try:
            from PySide6.QtDBus import QDBusConnection, QDBusMessage

            msg = QDBusMessage.createMethodCall(
                "org.freedesktop.FileManager1", "/org/freedesktop/FileManager1", "org.freedesktop.FileManager1", "ShowItems"
            )
            msg.setArguments([[QUrl.fromLocalFile(path).toString()], ""])
            reply = QDBusConnection.sessionBus().call(msg)
            if reply.type() != QDBusMessage.ErrorMessage:
                return
        except ImportError:
            pass
        QDesktopServices.openUrl(QUrl.fromLocalFile(os.path.dirname(path)))


def put_image_on_clipboard(image: QImage) -> None:
    if not image.isNull():
        QGuiApplication.clipboard().setImage(image)


class PreviewLabel(QLabel):
    """Shows an image scaled to fit, crisp on high-DPI screens."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setAlignment(Qt.AlignCenter)
        self.setSizePolicy(QSizePolicy.Ignored, QSizePolicy.Ignored)
        self.setMinimumSize(240, 180)
        self._image = QImage()

    def set_image(self, image: QImage) -> None:
        self._image = image
        self._update()

    def resizeEvent(self, event) -> None:  # noqa: N802
        super().resizeEvent(event)
        self._update()

    def _update(self) -> None:
        if self._image.isNull():
            self.setPixmap(QPixmap())
            return
        dpr = self.devicePixelRatioF()
        target = self.size() * dpr
        pix = QPixmap.fromImage(self._image.scaled(target, Qt.KeepAspectRatio, Qt.SmoothTransformation))
        pix.setDevicePixelRatio(dpr)
        self.setPixmap(pix)


class DetailDialog(tasks.TaskOwner, QDialog):
    """Larger preview, facts, and what a user does with a photo. Left/Right walk the results."""

    find_similar = Signal(object)  # PhotoItem
    navigate = Signal(int)  # -1 / +1

    def __init__(self, parent=None, preview_only: bool = False):
        super().__init__(parent)
        self.preview_only = preview_only
        self.item: PhotoItem | None = None
        self._generation = 0
        self.setWindowTitle("Preview" if preview_only else "Photo")
        self.image = PreviewLabel()
        self.image.setObjectName("detailImage")
        layout = QHBoxLayout(self) if not preview_only else QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0) if preview_only else layout.setContentsMargins(16, 16, 16, 16)
        layout.addWidget(self.image, 1)
        self.name = QLabel()
        if preview_only:
            self.name.setAlignment(Qt.AlignCenter)
            self.name.setContentsMargins(8, 4, 8, 8)
            layout.addWidget(self.name)
            self.resize(900, 680)
        else:
            side = QWidget()
            side.setFixedWidth(300)
            col = QVBoxLayout(side)
            col.setContentsMargins(16, 0, 0, 0)
            col.setSpacing(10)
            self.name.setWordWrap(True)
            f = self.name.font()
            f.setPointSizeF(f.pointSizeF() * 1.25)
            f.setBold(True)
            self.name.setFont(f)
            self.name.setTextInteractionFlags(Qt.TextSelectableByMouse)
            col.addWidget(self.name)
            self.facts = QFormLayout()
            self.facts.setLabelAlignment(Qt.AlignLeft)
            self.facts.setHorizontalSpacing(12)
            self.facts.setVerticalSpacing(6)
            self.fields = {}
            for key in ("Folder", "Date", "Size", "Dimensions", "Camera", "Location", "Match"):
                value = QLabel()
                value.setWordWrap(True)
                value.setTextInteractionFlags(Qt.TextSelectableByMouse)
                label = QLabel(key)
                label.setForegroundRole(label.foregroundRole())
                label.setEnabled(False)
                self.facts.addRow(label, value)
                self.fields[key] = (label, value)
            col.addLayout(self.facts)
            line = QFrame()
            line.setFrameShape(QFrame.HLine)
            line.setFrameShadow(QFrame.Sunken)
            col.addWidget(line)
            buttons = [
                ("Open", "Open in the default viewer (Ctrl+O)", self.open_external),
                ("Show in folder", "Reveal the file in the file manager", self.reveal),
                ("Find similar", "Search for photos like this one (Ctrl+Shift+F)", self._similar),
                ("Copy path", "Copy the file's path", self.copy_path),
                ("Copy image", "Copy the picture to the clipboard", self.copy_image),
            ]
            for text, tip, slot in buttons:
                b = QPushButton(text)
                b.setToolTip(tip)
                b.clicked.connect(slot)
                col.addWidget(b)
            col.addStretch(1)
            hint = QLabel("← → previous / next · Esc closes")
            hint.setEnabled(False)
            col.addWidget(hint)
            layout.addWidget(side)
            self.resize(1100, 720)
        QShortcut(QKeySequence(Qt.Key_Left), self, lambda: self.navigate.emit(-1))
        QShortcut(QKeySequence(Qt.Key_Right), self, lambda: self.navigate.emit(1))
        QShortcut(QKeySequence("Ctrl+O"), self, self.open_external)
        QShortcut(QKeySequence("Ctrl+Shift+F"), self, self._similar)
        if preview_only:
            QShortcut(QKeySequence(Qt.Key_Space), self, self.close)

    def show_item(self, item: PhotoItem, show_score: bool) -> None:
        self.item = item
        self._generation += 1
        gen = self._generation
        self.setWindowTitle(item.name)
        if self.preview_only:
            self.name.setText(f"{item.name}  ·  {format_date(item.date)}")
        else:
            self.name.setText(item.name)
            values = {
                "Folder": os.path.dirname(item.path),
                "Date": format_date(item.date),
                "Size": human_size(item.size),
                "Dimensions": f"{item.width} × {item.height}" if item.width else "",
                "Camera": item.camera or "",
                "Location": f"{item.gps[0]:.5f}, {item.gps[1]:.5f}" if item.gps else "",
                "Match": f"{item.score:.3f}" if show_score else "",
            }
            for key, (label, value) in self.fields.items():
                value.setText(values[key])
                label.setVisible(bool(values[key]))
                value.setVisible(bool(values[key]))
        self.image.set_image(QImage())
        self.image.setText("Loading…")
        longest = int(max(self.width(), self.height()) * self.devicePixelRatioF() * 1.2)

        def shown(image):
            if gen != self._generation:
                return
            self.image.setText("" if not image.isNull() else "This file cannot be shown")
            self.image.set_image(image)

        self._run_task(load_preview, item.path, longest, done=shown, failed=lambda msg: self.image.setText(msg))

    def open_external(self) -> None:
        if self.item:
            QDesktopServices.openUrl(QUrl.fromLocalFile(self.item.path))

    def reveal(self) -> None:
        if self.item:
            reveal_in_file_manager(self.item.path)

    def copy_path(self) -> None:
        if self.item:
            QGuiApplication.clipboard().setText(self.item.path)

    def copy_image(self) -> None:
        if self.item:
            self._run_task(load_preview, self.item.path, 4096, done=put_image_on_clipboard)

    def _similar(self) -> None:
        if self.item:
            self.find_similar.emit(self.item)
            self.close()
