"""The result list behind the grid, its painter and the thumbnail loader.

Only the cells on screen are painted (``photo_grid.ResultView``); a cell without its
thumbnail asks the loader, which decodes the cached 256-px JPEG on a small QThreadPool,
or the photo itself when the cell needs more device pixels than the cache holds (large
cells, 2x screens): thumbnails are never drawn upscaled. Images keep their aspect ratio;
the painter crops them to the cell (square cells) or fills the cell (justified rows).
Requests are served newest first, so after a fast scroll the cells now on screen load first.
"""

from __future__ import annotations

import threading
from collections import OrderedDict

from PySide6.QtCore import (
    QAbstractListModel,
    QMimeData,
    QModelIndex,
    QObject,
    QPointF,
    QRectF,
    QRunnable,
    QSize,
    Qt,
    QThreadPool,
    QUrl,
    Signal,
)
from PySide6.QtGui import QColor, QImage, QPainter, QPainterPath, QPalette, QPen, QPolygonF
from PySide6.QtWidgets import QStyle, QStyledItemDelegate

from ..services import PhotoItem
from .images import format_date, human_size, read_scaled, short_side
from .photo_grid import ResultView  # noqa: F401 - the grid, with the rest of the results

ItemRole = Qt.UserRole + 1
CACHE_BYTES = 96 << 20  # decoded thumbnails kept in memory


# ---------------------------------------------------------------------- thumbnails


class _LoaderSignals(QObject):
    loaded = Signal(object, QImage)  # key, image (null when it could not be read)


class _LoadJob(QRunnable):
    def __init__(self, loader: ThumbnailLoader):
        super().__init__()
        self.loader = loader
        self.setAutoDelete(True)

    def run(self) -> None:
        loader = self.loader
        while True:
            request = loader._next()
            if request is None:
                return
            key, path, original, side = request
            image = QImage()
            # The 256-px cache when it has the pixels the cell needs, else the photo itself.
            if path and (not original or short_side(path) >= side):
                image = read_scaled(path, side, crop=False)
            if image.isNull() and original:
                image = read_scaled(original, side, crop=False)
            if image.isNull() and path:
                image = read_scaled(path, side, crop=False)
            try:
                loader.signals.loaded.emit(key, image)
            except RuntimeError:
                return


class ThumbnailLoader(QObject):
    """Loads thumbnails off the GUI thread; keeps a byte-bounded LRU of decoded images."""

    ready = Signal(object)  # key

    def __init__(self, thumbnails_dir, parent=None, threads: int = 2):
        super().__init__(parent)
        self.thumbnails_dir = str(thumbnails_dir)
        self.cache: OrderedDict[object, QImage] = OrderedDict()
        self.cache_bytes = 0
        self.failed: set = set()
        self.pending: dict = {}  # key -> request, newest last
        self.lock = threading.Lock()
        self.pool = QThreadPool(self)
        self.pool.setMaxThreadCount(threads)
        self.running = 0
        self.side = 256
        self.signals = _LoaderSignals()
        self.signals.loaded.connect(self._loaded)

    def set_side(self, side: int) -> None:
        if side != self.side:
            self.side = side
            self.clear()

    def clear(self) -> None:
        with self.lock:
            self.pending.clear()
        self.cache.clear()
        self.cache_bytes = 0
        self.failed.clear()

    def get(self, item: PhotoItem) -> QImage | None:
        key = (item.id, item.thumbnail)
        image = self.cache.get(key)
        if image is not None:
            self.cache.move_to_end(key)
            return image
        if key in self.failed:
            return None
        thumb = f"{self.thumbnails_dir}/{item.thumbnail}" if item.thumbnail else None
        with self.lock:
            if key in self.pending:
                self.pending[key] = self.pending.pop(key)  # make it the newest
            else:
                self.pending[key] = (key, thumb, item.path, self.side)
                while len(self.pending) > 400:  # scrolled far past these
                    self.pending.pop(next(iter(self.pending)))
            start = self.running < self.pool.maxThreadCount()
            if start:
                self.running += 1
        if start:
            self.pool.start(_LoadJob(self))
        return None

    def _next(self):
        with self.lock:
            if not self.pending:
                self.running -= 1
                return None
            return self.pending.popitem()[1]  # newest first

    def _loaded(self, key, image: QImage) -> None:
        if image.isNull():
            self.failed.add(key)
        else:
            self.cache[key] = image
            self.cache_bytes += image.sizeInBytes()
            while self.cache_bytes > CACHE_BYTES and len(self.cache) > 1:
                _, old = self.cache.popitem(last=False)
                self.cache_bytes -= old.sizeInBytes()
        self.ready.emit(key)

    def wait(self, msecs: int = 5000) -> bool:
        return self.pool.waitForDone(msecs)


# ---------------------------------------------------------------------- model


class ResultModel(QAbstractListModel):
    """The photos shown: good matches first (``good`` of them), then the weaker ones."""

    sections_changed = Signal()  # the good count or the date sections changed, the rows did not

    def __init__(self, loader: ThumbnailLoader, parent=None):
        super().__init__(parent)
        self.items: list[PhotoItem] = []
        self.loader = loader
        self.row_of: dict[object, int] = {}
        self.show_scores = False
        self.good = 0  # the leading items that are good matches
        self.date_sections = False  # headers per day or month (sorted by date, browsing)
        self.query = ""  # the words searched for, for "No good matches for …"
        loader.ready.connect(self._thumbnail_ready)

    def set_sections(self, good: int, date_sections: bool, query: str) -> None:
        if (good, date_sections, query) != (self.good, self.date_sections, self.query):
            self.good, self.date_sections, self.query = good, date_sections, query
            self.sections_changed.emit()

    def rowCount(self, parent: QModelIndex | None = None) -> int:
        return 0 if parent is not None and parent.isValid() else len(self.items)

    # Never return None from data(): with PySide6 6.12 on CPython 3.11 each None returned
    # through QVariant loses a reference to None, and the process aborts ("none_dealloc")
    # after a few thousand calls. An int converts to no QBrush/QFont/QSize/QIcon, so the
    # roles the view asks about and this model does not serve read as unset.
    _STRING_ROLES = frozenset({Qt.StatusTipRole, Qt.WhatsThisRole, Qt.AccessibleDescriptionRole})

    def data(self, index: QModelIndex, role=Qt.DisplayRole):
        if not index.isValid() or index.row() >= len(self.items):
            return "" if role in self._STRING_ROLES or role in (Qt.DisplayRole, Qt.ToolTipRole) else 0
        item = self.items[index.row()]
        if role == ItemRole:
            return item
        if role == Qt.DisplayRole:
            return item.name
        if role == Qt.ToolTipRole:
            lines = [f"<b>{_html(item.name)}</b>", format_date(item.date)]
            if item.width:
                lines.append(f"{item.width} × {item.height} · {human_size(item.size)}")
            if item.camera:
                lines.append(_html(item.camera))
            if self.show_scores:
                lines.append(f"match {item.score:.3f}")
            lines += [f"“{_marked_html(m.text, m.spans)}”" for m in item.text_matches[:3]]
            return "<br>".join(line for line in lines if line)
        if role == Qt.AccessibleTextRole:
            return f"{item.name}, {format_date(item.date)}"
        if role in self._STRING_ROLES:
            return ""
        return 0

    def flags(self, index):
        base = super().flags(index)
        return base | Qt.ItemIsDragEnabled if index.isValid() else base

    def mimeTypes(self):
        return ["text/uri-list"]

    def mimeData(self, indexes):
        data = QMimeData()
        data.setUrls([QUrl.fromLocalFile(self.items[i.row()].path) for i in indexes if i.isValid()])
        return data

    def set_items(self, items: list[PhotoItem], good: int | None = None) -> None:
        self.beginResetModel()
        self.items = items
        self.good = len(items) if good is None else good
        self.row_of = {}
        self.endResetModel()

    def extend(self, items: list[PhotoItem]) -> None:
        """Append the rest of a result list whose first page is on screen, without a reset."""
        if not items:
            return
        first = len(self.items)
        self.beginInsertRows(QModelIndex(), first, first + len(items) - 1)
        all_good = self.good >= first
        self.items.extend(items)
        if all_good:
            self.good = len(self.items)
        self.endInsertRows()

    def reorder(self, order) -> None:
        self.layoutAboutToBeChanged.emit()
        self.items = [self.items[i] for i in order]
        self.row_of = {}
        self.layoutChanged.emit()

    def item(self, row: int) -> PhotoItem | None:
        return self.items[row] if 0 <= row < len(self.items) else None

    def _thumbnail_ready(self, key) -> None:
        if not self.row_of and self.items:
            self.row_of = {(it.id, it.thumbnail): r for r, it in enumerate(self.items)}
        row = self.row_of.get(key)
        if row is not None:
            index = self.index(row)
            self.dataChanged.emit(index, index, [Qt.DecorationRole])


def _crop(image: QImage, cell: QRectF) -> QRectF:
    """The centred part of ``image`` with the cell's aspect ratio (the whole image in a justified row)."""
    w, h = image.width(), image.height()
    if cell.height() <= 0 or h <= 0:
        return QRectF(0, 0, w, h)
    want = cell.width() / cell.height()
    if w / h > want:
        cw = h * want
        return QRectF((w - cw) / 2, 0, cw, h)
    ch = w / want
    return QRectF(0, (h - ch) / 2, w, ch)


def _html(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _marked_html(text: str, spans) -> str:
    """A line of the photo's text with the words the query found in bold."""
    out, at = [], 0
    for start, end in spans:
        out += [_html(text[at:start]), f"<b>{_html(text[start:end])}</b>"]
        at = end
    return "".join(out) + _html(text[at:])


def _on_cell(box, image: QImage, source: QRectF, cell: QRectF) -> QPolygonF:
    """A box in fractions of the photo, on a cell showing ``source`` (image pixels) of its thumbnail."""
    sx, sy = cell.width() / max(source.width(), 1e-6), cell.height() / max(source.height(), 1e-6)
    return QPolygonF(
        [QPointF(cell.x() + (x * image.width() - source.x()) * sx, cell.y() + (y * image.height() - source.y()) * sy) for x, y in box]
    )


# ---------------------------------------------------------------------- painting


class ResultDelegate(QStyledItemDelegate):
    """A thumbnail cropped to its cell, rounded corners; selection as an accent ring, hover as a soft tint."""

    PAD = 4

    def __init__(self, loader: ThumbnailLoader, parent=None):
        super().__init__(parent)
        self.loader = loader
        self.side = 168  # logical pixels
        self.painted_with_image = 0  # for the benchmark: cells drawn with their thumbnail
        self.painted_text_marks = 0  # cells drawn with the words their text matched marked

    def sizeHint(self, option, index) -> QSize:
        return QSize(self.side + 2 * self.PAD, self.side + 2 * self.PAD)

    def paint(self, painter: QPainter, option, index) -> None:
        item = index.model().item(index.row())  # not index.data(): no QVariant round trip per cell
        if item is None:
            return
        painter.save()
        painter.setRenderHint(QPainter.Antialiasing, True)
        painter.setRenderHint(QPainter.SmoothPixmapTransform, True)
        palette = option.palette
        cell = QRectF(option.rect).adjusted(self.PAD, self.PAD, -self.PAD, -self.PAD)
        path = QPainterPath()
        path.addRoundedRect(cell, 6, 6)
        image = self.loader.get(item)
        if image is not None:
            painter.setClipPath(path)
            source = _crop(image, cell)
            painter.drawImage(cell, image, source)
            if item.text_matches:
                self._mark_text(painter, item, image, source, cell, palette)
            painter.setClipping(False)
            self.painted_with_image += 1
        else:
            base = palette.color(QPalette.Base)
            placeholder = palette.color(QPalette.AlternateBase) if base.lightness() > 128 else base.lighter(130)
            painter.fillPath(path, placeholder)
            if (item.id, item.thumbnail) in self.loader.failed:
                painter.setPen(palette.color(QPalette.PlaceholderText))
                painter.drawText(cell, Qt.AlignCenter | Qt.TextWordWrap, "no preview")
        selected = option.state & QStyle.State_Selected
        hovered = option.state & QStyle.State_MouseOver
        if hovered and not selected:
            painter.fillPath(path, QColor(255, 255, 255, 28))
        if selected:
            accent = palette.color(QPalette.Highlight)
            painter.setPen(QPen(accent, 3))
            painter.drawRoundedRect(cell.adjusted(1.5, 1.5, -1.5, -1.5), 5, 5)
            tint = QColor(accent)
            tint.setAlpha(40)
            painter.fillPath(path, tint)
        if item.text_matches and image is None:
            painter.setClipPath(path)
            self._caption(painter, item, cell)
            painter.setClipping(False)
        if option.state & QStyle.State_HasFocus and option.widget is not None and option.widget.hasFocus():
            pen = QPen(palette.color(QPalette.Highlight), 1, Qt.DashLine)
            painter.setPen(pen)
            painter.drawRoundedRect(QRectF(option.rect).adjusted(1, 1, -1, -1), 7, 7)
        painter.restore()

    def _mark_text(self, painter: QPainter, item: PhotoItem, image: QImage, source: QRectF, cell: QRectF, palette) -> None:
        """The words the query found in the photo's text, under a highlighter-yellow marker, and the
        first matching line as a caption along the bottom: a word box alone is often a few pixels."""
        marker = QColor(255, 214, 0, 110)
        painter.setPen(QPen(QColor(255, 196, 0, 220), 1.5))
        for m in item.text_matches:
            for box in m.word_boxes:
                painter.setBrush(marker)
                painter.drawPolygon(_on_cell(box, image, source, cell))
        painter.setBrush(Qt.NoBrush)
        self._caption(painter, item, cell)
        self.painted_text_marks += 1

    def _caption(self, painter: QPainter, item: PhotoItem, cell: QRectF) -> None:
        m = item.text_matches[0]
        metrics = painter.fontMetrics()
        band = QRectF(cell.x(), cell.bottom() - metrics.height() - 6, cell.width(), metrics.height() + 6)
        painter.fillRect(band, QColor(0, 0, 0, 150))
        text = metrics.elidedText(f"“{m.text}”", Qt.ElideRight, int(band.width() - 10))
        painter.setPen(QColor(255, 236, 140))
        painter.drawText(band.adjusted(5, 0, -5, 0), Qt.AlignVCenter | Qt.AlignLeft, text)
