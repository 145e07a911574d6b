"""The detail view (Enter) and the quick preview (Space) of one result."""

from __future__ import annotations

import os
import sys

from PySide6.QtCore import QPointF, QRectF, QSize, Qt, QUrl, Signal
from PySide6.QtGui import (
    QColor,
    QDesktopServices,
    QGuiApplication,
    QImage,
    QImageReader,
    QKeySequence,
    QPainter,
    QPen,
    QPixmap,
    QPolygonF,
    QShortcut,
)
from PySide6.QtWidgets import (
    QDialog,
    QFormLayout,
    QFrame,
    QGraphicsPixmapItem,
    QGraphicsPolygonItem,
    QGraphicsScene,
    QGraphicsView,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSizePolicy,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from ..services import PhotoItem
from ..services import photos as photo_service
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


MAX_DETAIL = 8192  # the longest side loaded for zooming in (a 64-megapixel photo: 200 MB of pixels)


def location_text(place: str | None, gps: tuple[float, float] | None) -> str:
    """"Town, Region, Country" over the coordinates; the coordinates alone when no place is known."""
    if not gps:
        return ""
    coordinates = f"{gps[0]:.5f}, {gps[1]:.5f}"
    return f"{place}\n{coordinates}" if place else coordinates


def _full_size(full: QSize, image: QImage) -> QSize:
    """The photo's size from the catalogue, unless the loaded image disagrees on its shape."""
    if image.isNull() or not full.isValid() or full.isEmpty():
        return image.size()
    if abs(full.width() / full.height() - image.width() / image.height()) > 0.02 * full.width() / full.height():
        return image.size()
    return full


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


class ImageView(QGraphicsView):
    """The photo, zoomable and pannable. Scene units are pixels of the original photo.

    ``zoom`` counts screen (device) pixels per photo pixel: 1.0 is 1:1. Fitting never goes
    past 1:1, so a small image is shown at its own size, not blurred up; past 1:1 pixels are
    drawn sharp. Wheel: zoom under the pointer; drag: pan; double-click: fit / 1:1.
    """

    zoom_changed = Signal(float)
    needs_detail = Signal()  # zoomed past the resolution of the image loaded so far

    MAX_ZOOM = 16.0
    STEP = 1.25

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setScene(QGraphicsScene(self))
        self.item = QGraphicsPixmapItem()
        self.item.setTransformationMode(Qt.SmoothTransformation)
        self.scene().addItem(self.item)
        self.setFrameShape(QFrame.NoFrame)
        self.setAlignment(Qt.AlignCenter)
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarAlwaysOff)
        self.setVerticalScrollBarPolicy(Qt.ScrollBarAlwaysOff)
        self.setDragMode(QGraphicsView.ScrollHandDrag)
        self.setTransformationAnchor(QGraphicsView.AnchorUnderMouse)
        self.setResizeAnchor(QGraphicsView.AnchorViewCenter)
        self.setRenderHint(QPainter.SmoothPixmapTransform, True)
        self.setFocusPolicy(Qt.NoFocus)
        self.setMinimumSize(240, 180)
        self.setSizePolicy(QSizePolicy.Ignored, QSizePolicy.Ignored)
        self.message = QLabel(self)
        self.message.setAlignment(Qt.AlignCenter)
        self.message.setAttribute(Qt.WA_TransparentForMouseEvents)
        self._image = QImage()
        self.full_size = QSize()
        self.fitting = True
        self.zoom = 1.0
        self.marks: list[QGraphicsPolygonItem] = []  # the words the query found in the photo's text

    # ------------------------------------------------------------------ content

    def setText(self, text: str) -> None:
        self.message.setText(text)
        self.message.setVisible(bool(text))
        self.message.resize(self.viewport().size())

    def text(self) -> str:
        return self.message.text() if self.message.isVisible() else ""

    def set_image(self, image: QImage, full_size: QSize | None = None) -> None:
        """A new photo (or none): shown to fit."""
        self._image = image
        self.full_size = full_size if full_size is not None and full_size.isValid() else image.size()
        self.set_marks([])
        self._show(image)
        self.fit()

    def set_marks(self, boxes) -> None:
        """Outline these boxes (four corners, fractions of the photo's width and height) over the photo."""
        for mark in self.marks:
            self.scene().removeItem(mark)
        self.marks = []
        w, h = self.full_size.width(), self.full_size.height()
        if not w or not h:
            return
        pen = QPen(QColor(255, 196, 0), 2)
        pen.setCosmetic(True)  # two screen pixels at any zoom
        for box in boxes:
            mark = QGraphicsPolygonItem(QPolygonF([QPointF(x * w, y * h) for x, y in box]))
            mark.setPen(pen)
            mark.setBrush(QColor(255, 214, 0, 70))
            mark.setZValue(1)
            self.scene().addItem(mark)
            self.marks.append(mark)

    def replace_image(self, image: QImage) -> None:
        """More pixels of the photo shown: the zoom and the part shown stay."""
        if image.isNull():
            return
        self._image = image
        self._show(image)
        self._apply(self.zoom)

    def _show(self, image: QImage) -> None:
        if image.isNull():
            self.item.setPixmap(QPixmap())
            self.scene().setSceneRect(QRectF())
            return
        self.item.setPixmap(QPixmap.fromImage(image))
        self.item.setScale(self.full_size.width() / image.width())
        self.scene().setSceneRect(QRectF(0, 0, self.full_size.width(), self.full_size.height()))

    def detail(self) -> float:
        """Loaded pixels per photo pixel (1.0: the full resolution is loaded)."""
        if self._image.isNull() or not self.full_size.width():
            return 1.0
        return self._image.width() / self.full_size.width()

    # ------------------------------------------------------------------ zoom

    def fit_zoom(self) -> float:
        """The zoom that shows the whole photo, never past 1:1."""
        if self.full_size.isEmpty():
            return 1.0
        dpr = self.devicePixelRatioF()
        area = self.viewport().size()
        fit = min(area.width() / self.full_size.width(), area.height() / self.full_size.height()) * dpr
        return max(1e-3, min(1.0, fit))

    def fit(self) -> None:
        self.fitting = True
        self._apply(self.fit_zoom())

    def actual_size(self) -> None:
        self.set_zoom(1.0)

    def zoom_in(self) -> None:
        self.set_zoom(self.zoom * self.STEP)

    def zoom_out(self) -> None:
        self.set_zoom(self.zoom / self.STEP)

    def set_zoom(self, zoom: float, anchor_under_mouse: bool = False) -> None:
        zoom = max(min(self.fit_zoom(), 0.05), min(self.MAX_ZOOM, zoom))
        self.fitting = False
        self.setTransformationAnchor(QGraphicsView.AnchorUnderMouse if anchor_under_mouse else QGraphicsView.AnchorViewCenter)
        self._apply(zoom)
        self.setTransformationAnchor(QGraphicsView.AnchorUnderMouse)

    def _apply(self, zoom: float) -> None:
        old = self.transform().m11() or 1.0
        new = zoom / self.devicePixelRatioF()
        self.scale(new / old, new / old)  # scale() keeps the point under the anchor in place
        self.zoom = zoom
        # Past 1:1 each photo pixel is a sharp square; below it, smooth downscaling.
        smooth = zoom * self.detail() < 1.0 + 1e-6
        self.item.setTransformationMode(Qt.SmoothTransformation if smooth else Qt.FastTransformation)
        self.setRenderHint(QPainter.SmoothPixmapTransform, smooth)
        self.zoom_changed.emit(zoom)
        if not self._image.isNull() and self.detail() < 0.999 and zoom > self.detail() * 1.01:
            self.needs_detail.emit()

    # ------------------------------------------------------------------ events

    def wheelEvent(self, event) -> None:
        steps = event.angleDelta().y() / 120
        if not steps or self._image.isNull():
            return
        self.set_zoom(self.zoom * self.STEP**steps, anchor_under_mouse=True)
        event.accept()

    def mouseDoubleClickEvent(self, event) -> None:
        if self._image.isNull():
            return
        if self.fitting and self.fit_zoom() < 1.0:
            self.set_zoom(1.0, anchor_under_mouse=True)
        else:
            self.fit()

    def resizeEvent(self, event) -> None:
        super().resizeEvent(event)
        self.message.resize(self.viewport().size())
        if self.fitting:
            self.fit()


PreviewLabel = ImageView  # the name earlier versions used


class DetailDialog(tasks.TaskOwner, QDialog):
    """Larger preview, facts, and what a user does with a photo. Left/Right walk the results."""

    find_similar = Signal(object)  # PhotoItem
    navigate = Signal(int)  # -1 / +1

    def __init__(self, parent=None, preview_only: bool = False):
        super().__init__(parent)
        self.preview_only = preview_only
        self.item: PhotoItem | None = None
        self.text_of = None  # photo id -> the text read in it (the library service's photo_text), set by the owner
        self._generation = 0
        self._detail_requested = False
        self.setWindowTitle("Preview" if preview_only else "Photo")
        self.image = ImageView()
        self.image.setObjectName("detailImage")
        self.image.needs_detail.connect(self._load_detail)
        layout = QHBoxLayout(self) if not preview_only else QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0) if preview_only else layout.setContentsMargins(16, 16, 16, 16)
        if preview_only:
            layout.addWidget(self.image, 1)
        else:
            left = QVBoxLayout()
            left.setSpacing(6)
            left.addWidget(self.image, 1)
            left.addLayout(self._zoom_bar())
            layout.addLayout(left, 1)
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
                ("Copy text", "Copy the text read in the photo", self.copy_text),
            ]
            self.buttons = {}
            for text, tip, slot in buttons:
                b = QPushButton(text)
                b.setToolTip(tip)
                b.clicked.connect(slot)
                col.addWidget(b)
                self.buttons[text] = b
            self.copy_note = QLabel()  # what Copy text found
            self.copy_note.setWordWrap(True)
            self.copy_note.setEnabled(False)
            col.addWidget(self.copy_note)
            col.addStretch(1)
            hint = QLabel("← → previous / next · wheel or + − zoom · drag pans · Esc closes")
            hint.setWordWrap(True)
            hint.setEnabled(False)
            col.addWidget(hint)
            layout.addWidget(side)
            self.resize(1100, 720)
        QShortcut(QKeySequence(Qt.Key_Left), self, lambda: self.navigate.emit(-1))
        QShortcut(QKeySequence(Qt.Key_Right), self, lambda: self.navigate.emit(1))
        QShortcut(QKeySequence("Ctrl+O"), self, self.open_external)
        QShortcut(QKeySequence("Ctrl+Shift+F"), self, self._similar)
        for keys, slot in (
            (("+", "=", "Ctrl++", "Ctrl+="), self.image.zoom_in),
            (("-", "Ctrl+-"), self.image.zoom_out),
            (("1", "Ctrl+1"), self.image.actual_size),
            (("0", "Ctrl+0"), self.image.fit),
        ):
            for key in keys:
                QShortcut(QKeySequence(key), self, slot)
        if preview_only:
            QShortcut(QKeySequence(Qt.Key_Space), self, self.close)

    def _zoom_bar(self) -> QHBoxLayout:
        row = QHBoxLayout()
        row.setSpacing(4)
        row.addStretch(1)
        self.zoom_buttons = {}
        for key, text, tip, slot in (
            ("out", "−", "Zoom out (−, or the mouse wheel)", self.image.zoom_out),
            ("in", "+", "Zoom in (+, or the mouse wheel)", self.image.zoom_in),
            ("1:1", "1:1", "One photo pixel per screen pixel (1)", self.image.actual_size),
            ("fit", "Fit", "The whole photo (0)", self.image.fit),
        ):
            b = QToolButton()
            b.setText(text)
            b.setToolTip(tip)
            b.setAutoRaise(True)
            b.clicked.connect(slot)
            b.setObjectName(f"zoom-{key}")
            self.zoom_buttons[key] = b
            row.addWidget(b)
            if key == "out":
                self.zoom_label = QLabel("100 %")
                self.zoom_label.setObjectName("zoomLabel")
                self.zoom_label.setAlignment(Qt.AlignCenter)
                self.zoom_label.setMinimumWidth(self.zoom_label.fontMetrics().horizontalAdvance("1600 %") + 8)
                row.addWidget(self.zoom_label)
        row.addStretch(1)
        self.image.zoom_changed.connect(lambda z: self.zoom_label.setText(f"{z * 100:.0f} %"))
        return row

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
                "Location": location_text(item.place, item.gps),
                "Match": f"{item.score:.3f}" if show_score else "",
            }
            for key, (label, value) in self.fields.items():
                value.setText(values[key])
                label.setVisible(bool(values[key]))
                value.setVisible(bool(values[key]))
            if item.gps and not item.place:  # indexed before places were kept: look it up now

                def named(place):
                    if gen == self._generation and place:
                        self.fields["Location"][1].setText(location_text(place, item.gps))

                self._run_task(photo_service.place_name, item.gps, done=named, failed=lambda _: None)
        self._detail_requested = False
        if not self.preview_only:
            self.copy_note.setText("")
        self.image.set_image(QImage())
        self.image.setText("Loading…")
        full = QSize(item.width or 0, item.height or 0)
        screen = int(max(self.width(), self.height()) * self.devicePixelRatioF() * 1.2)
        longest = min(screen, max(full.width(), full.height())) if full.isValid() and not full.isEmpty() else screen

        def shown(image):
            if gen != self._generation:
                return
            self.image.setText("" if not image.isNull() else "This file cannot be shown")
            self.image.set_image(image, _full_size(full, image))
            if not image.isNull():
                self.image.set_marks([box for m in item.text_matches for box in m.word_boxes])

        self._run_task(load_preview, item.path, longest, done=shown, failed=lambda msg: self.image.setText(msg))

    def _load_detail(self) -> None:
        """Zoomed past the pixels loaded: load the photo at full resolution (at most MAX_DETAIL)."""
        if self._detail_requested or self.item is None:
            return
        self._detail_requested = True
        gen = self._generation
        full = self.image.full_size

        def shown(image):
            if gen == self._generation and not image.isNull():
                self.image.replace_image(image)

        self._run_task(load_preview, self.item.path, min(MAX_DETAIL, max(full.width(), full.height())), done=shown, failed=lambda _: None)

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

    def copy_text(self) -> None:
        if self.item is None or self.text_of is None:
            return
        gen = self._generation

        def copied(text: str) -> None:
            if text:
                QGuiApplication.clipboard().setText(text)
            if gen == self._generation and not self.preview_only:
                lines = text.count("\n") + 1 if text else 0
                self.copy_note.setText(f"Copied {lines} line{'s' if lines != 1 else ''} of text" if text else "No text was read in this photo")

        self._run_task(self.text_of, self.item.id, done=copied, failed=lambda msg: self.copy_note.setText(msg))

    def _similar(self) -> None:
        if self.item:
            self.find_similar.emit(self.item)
            self.close()
