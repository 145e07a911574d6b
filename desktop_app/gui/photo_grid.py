"""The result grid: square cells or justified rows, in sections (dates, "N weaker matches").

A QAbstractItemView of its own (QListView has neither headers nor rows of varying
height). The layout is a list of rows, each (y, height, first item, count, cells), so
finding what is on screen, under the mouse or above the current photo is a bisection;
square rows store no cells (their geometry is arithmetic), so 100,000 photos lay out
in milliseconds. Weaker matches sit after the good ones, collapsed behind a real button.
"""

from __future__ import annotations

from bisect import bisect_right

from PySide6.QtCore import QItemSelection, QModelIndex, QPoint, QRect, QSize, Qt, Signal
from PySide6.QtGui import QFont, QPainter, QPalette, QRegion
from PySide6.QtWidgets import QAbstractItemView, QPushButton, QStyle, QStyleOptionViewItem

from .date_sections import date_sections

HEADER_H = 40
MIN_ASPECT, MAX_ASPECT = 0.3, 3.5


def aspect_of(item) -> float:
    if item.width and item.height:
        return min(MAX_ASPECT, max(MIN_ASPECT, item.width / item.height))
    return 1.0


class SectionButton(QPushButton):
    """The "N weaker matches" bar: click, Space or Enter opens and closes the section."""

    def keyPressEvent(self, event) -> None:
        if event.key() in (Qt.Key_Return, Qt.Key_Enter):
            self.click()
            return
        super().keyPressEvent(event)


class ResultView(QAbstractItemView):
    activated_item = Signal(int)  # row
    preview_requested = Signal()
    layout_changed = Signal()

    def __init__(self, model, delegate, parent=None):
        super().__init__(parent)
        self.delegate = delegate
        self._ready = False
        self.target_side = delegate.side
        self.justified = False
        self.weak_open = False
        self._rows: list[tuple] = []  # (y, h, first, count, cells or None)
        self._row_y: list[int] = []
        self._row_first: list[int] = []
        self._headers: list[tuple[int, str]] = []  # (y, title) of the date headers
        self._weak_y: int | None = None
        self._height = 0
        self._cell = delegate.side + 2 * delegate.PAD
        self._hover = -1
        self.setSelectionMode(QAbstractItemView.ExtendedSelection)
        self.setSelectionBehavior(QAbstractItemView.SelectItems)
        self.setVerticalScrollMode(QAbstractItemView.ScrollPerPixel)
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarAlwaysOff)
        self.verticalScrollBar().setSingleStep(24)
        self.setMouseTracking(True)
        self.setFrameShape(QAbstractItemView.NoFrame)
        self.setDragEnabled(True)
        self.setDragDropMode(QAbstractItemView.DragOnly)
        self.setAttribute(Qt.WA_MacShowFocusRect, False)
        self.setAccessibleName("Results")
        self.weak_button = SectionButton(self.viewport())
        self.weak_button.setObjectName("weakMatches")
        self.weak_button.setCheckable(True)
        self.weak_button.setCursor(Qt.PointingHandCursor)
        self.weak_button.toggled.connect(self._weak_toggled)
        self.weak_button.hide()
        self.setModel(model)
        self.setItemDelegate(delegate)
        model.sections_changed.connect(self.relayout)
        self._ready = True

    # ------------------------------------------------------------------ settings

    def set_thumbnail_side(self, side: int) -> None:
        self.target_side = side
        self.relayout()

    def set_justified(self, on: bool) -> None:
        if on != self.justified:
            self.justified = on
            self.relayout()
            current = self.currentIndex()
            if current.isValid():
                self.scrollTo(current)

    def columns(self) -> int:
        return max(1, self._width() // self._cell)

    def _width(self) -> int:
        # As if the scroll bar were shown, so that it coming and going never reflows the grid.
        bar = 0 if self.verticalScrollBar().isVisible() else self.style().pixelMetric(QStyle.PM_ScrollBarExtent, None, self)
        return max(60, self.viewport().width() - bar)

    # ------------------------------------------------------------------ layout

    def sections(self) -> list[tuple[int, int, str]]:
        """(first, end, title) of each run of visible items; "" for a section without a header."""
        model = self.model()
        n = model.rowCount()
        good = min(model.good, n)
        out = []

        def add(start, end):
            if end <= start:
                return
            if model.date_sections:
                bounds = date_sections([it.date for it in model.items[start:end]])
                for k, (first, title) in enumerate(bounds):
                    last = bounds[k + 1][0] if k + 1 < len(bounds) else end - start
                    out.append((start + first, start + last, title))
            else:
                out.append((start, end, ""))

        add(0, good)
        if good < n and self.weak_open:
            add(good, n)
        return out

    def section_titles(self) -> list[str]:
        return [title for _, title in self._headers]

    def relayout(self) -> None:
        if not self._ready:
            return
        model = self.model()
        pad2 = 2 * self.delegate.PAD
        width = self._width()
        columns = max(1, round(width / (self.target_side + pad2)))
        side = max(48, width // columns - pad2)
        self._cell = side + pad2
        if side != self.delegate.side:
            self.delegate.side = side
        image_side = side if not self.justified else round(self.target_side * 1.4)
        model.loader.set_side(round(image_side * self.devicePixelRatioF()))
        rows, headers = [], []
        y = 0
        good = min(model.good, model.rowCount())
        sections = self.sections()
        weak_y = None
        for first, end, title in sections:
            if first == good and good < model.rowCount():
                weak_y, y = y, y + HEADER_H
            if title:
                headers.append((y, title))
                y += HEADER_H
            y = self._layout_items(rows, y, first, end, width, columns)
        if good < model.rowCount() and weak_y is None:
            weak_y, y = y, y + HEADER_H
        self._rows, self._headers, self._weak_y, self._height = rows, headers, weak_y, y
        self._row_y = [r[0] for r in rows]
        self._row_first = [r[2] for r in rows]
        self._place_weak_button(good)
        self.updateGeometries()
        self.viewport().update()
        self.layout_changed.emit()

    def _layout_items(self, rows, y, first, end, width, columns) -> int:
        cell = self._cell
        if not self.justified:
            for start in range(first, end, columns):
                rows.append((y, cell, start, min(columns, end - start), None))
                y += cell
            return y
        pad2 = 2 * self.delegate.PAD
        items = self.model().items
        target = self.target_side
        start, aspects = first, []
        for i in range(first, end):
            aspects.append(aspect_of(items[i]))
            total = sum(aspects)
            if total * target + len(aspects) * pad2 >= width or i == end - 1:
                full = total * target + len(aspects) * pad2 >= width
                h = (width - len(aspects) * pad2) / total if full else target
                h = max(24.0, h)
                cells, x = [], 0.0
                for a in aspects:
                    x1 = x + a * h + pad2
                    cells.append((round(x), round(x1) - round(x)))
                    x = x1
                if full:  # the row ends exactly at the right edge
                    cx, _ = cells[-1]
                    cells[-1] = (cx, width - cx)
                rows.append((y, round(h) + pad2, start, len(aspects), cells))
                y += round(h) + pad2
                start, aspects = i + 1, []
        return y

    def _place_weak_button(self, good: int) -> None:
        model = self.model()
        weak = model.rowCount() - good
        if self._weak_y is None or weak <= 0:
            self.weak_button.hide()
            return
        noun = "weaker match" if weak == 1 else "weaker matches"
        arrow = "▾" if self.weak_open else "▸"
        if good == 0:
            fm = self.weak_button.fontMetrics()
            rest = f"{arrow}  No good matches for “” — {weak:,} {noun}"
            room = max(40, self._width() - fm.horizontalAdvance(rest) - 60)
            query = fm.elidedText(model.query or "this search", Qt.ElideRight, room)
            text = f"{arrow}  No good matches for “{query}” — {weak:,} {noun}"
        else:
            text = f"{arrow}  {weak:,} {noun}"
        self.weak_button.blockSignals(True)
        self.weak_button.setChecked(self.weak_open)
        self.weak_button.blockSignals(False)
        self.weak_button.setText(text)
        self.weak_button.setToolTip("Hide the weaker matches" if self.weak_open else "Show the photos that match less well")
        hint = self.weak_button.sizeHint()
        self.weak_button.setGeometry(
            self.delegate.PAD, self._weak_y - self.verticalOffset() + (HEADER_H - hint.height()) // 2, hint.width(), hint.height()
        )
        self.weak_button.show()

    def _weak_toggled(self, on: bool) -> None:
        self.weak_open = on
        self.relayout()
        good = self.model().good
        if on and good < self.model().rowCount() and self.hasFocus() is False and self.weak_button.hasFocus():
            self.setFocus()
            self.setCurrentIndex(self.model().index(good, 0))

    def reset_sections(self) -> None:
        """A new result: the weaker matches start collapsed."""
        self.weak_open = False

    # ------------------------------------------------------------------ geometry (QAbstractItemView)

    def _row_of(self, row: int) -> int:
        if self.isRowHidden(row):
            return -1
        k = bisect_right(self._row_first, row) - 1
        if k < 0:
            return -1
        r = self._rows[k]
        return k if r[2] <= row < r[2] + r[3] else -1

    def _item_rect(self, row: int) -> QRect:
        k = self._row_of(row)
        if k < 0:
            return QRect()
        y, h, first, _, cells = self._rows[k]
        if cells is None:
            return QRect((row - first) * self._cell, y, self._cell, h)
        x, w = cells[row - first]
        return QRect(x, y, w, h)

    def isRowHidden(self, row: int) -> bool:
        model = self.model()
        return not self.weak_open and model.good <= row < model.rowCount()

    def visualRect(self, index) -> QRect:
        if not index.isValid():
            return QRect()
        rect = self._item_rect(index.row())
        return rect.translated(0, -self.verticalOffset()) if rect.isValid() else rect

    def isIndexHidden(self, index) -> bool:
        return self.isRowHidden(index.row())

    def indexAt(self, point: QPoint) -> QModelIndex:
        y = point.y() + self.verticalOffset()
        k = bisect_right(self._row_y, y) - 1
        if k < 0:
            return QModelIndex()
        ry, h, first, count, cells = self._rows[k]
        if y >= ry + h:
            return QModelIndex()
        x = point.x()
        if cells is None:
            col = x // self._cell
            return self.model().index(first + col, 0) if 0 <= col < count else QModelIndex()
        for j, (cx, w) in enumerate(cells):
            if cx <= x < cx + w:
                return self.model().index(first + j, 0)
        return QModelIndex()

    def horizontalOffset(self) -> int:
        return 0

    def verticalOffset(self) -> int:
        return self.verticalScrollBar().value()

    def scrollTo(self, index, hint=QAbstractItemView.EnsureVisible) -> None:
        rect = self._item_rect(index.row()) if index.isValid() else QRect()
        if not rect.isValid():
            return
        top, height = self.verticalOffset(), self.viewport().height()
        bar = self.verticalScrollBar()
        if hint == QAbstractItemView.PositionAtTop:
            bar.setValue(rect.top())
        elif hint == QAbstractItemView.PositionAtCenter:
            bar.setValue(rect.center().y() - height // 2)
        elif rect.top() < top:
            bar.setValue(rect.top())
        elif rect.bottom() > top + height:
            bar.setValue(rect.bottom() - height + 1)

    def updateGeometries(self) -> None:
        bar = self.verticalScrollBar()
        bar.setPageStep(self.viewport().height())
        bar.setRange(0, max(0, self._height - self.viewport().height()))
        super().updateGeometries()

    def scrollContentsBy(self, dx: int, dy: int) -> None:
        self.viewport().scroll(dx, dy)  # moves the weaker-matches button with the content

    def setSelection(self, rect: QRect, flags) -> None:
        rect = rect.normalized().translated(0, self.verticalOffset())
        selection = QItemSelection()
        model = self.model()
        k = max(0, bisect_right(self._row_y, rect.top()) - 1)
        run = None
        while k < len(self._rows) and self._rows[k][0] <= rect.bottom():
            _, _, first, count, _ = self._rows[k]
            for row in range(first, first + count):
                if self._item_rect(row).intersects(rect):
                    if run is not None and run[1] == row - 1:
                        run[1] = row
                    else:
                        if run is not None:
                            selection.select(model.index(run[0], 0), model.index(run[1], 0))
                        run = [row, row]
            k += 1
        if run is not None:
            selection.select(model.index(run[0], 0), model.index(run[1], 0))
        self.selectionModel().select(selection, flags)

    def visualRegionForSelection(self, selection) -> QRegion:
        return QRegion(self.viewport().rect())

    def moveCursor(self, action, modifiers) -> QModelIndex:
        model = self.model()
        if not self._rows:
            return QModelIndex()
        current = self.currentIndex()
        last_row = self._rows[-1][2] + self._rows[-1][3] - 1
        if not current.isValid() or self._row_of(current.row()) < 0:
            return model.index(self._rows[0][2], 0)
        row = current.row()
        k = self._row_of(row)
        A = QAbstractItemView.CursorAction
        if action in (A.MoveLeft, A.MovePrevious):
            target = row - 1 if row > 0 and not self.isRowHidden(row - 1) else row
        elif action in (A.MoveRight, A.MoveNext):
            target = row + 1 if row < last_row and not self.isRowHidden(row + 1) else row
        elif action == A.MoveHome:
            target = self._rows[0][2]
        elif action == A.MoveEnd:
            target = last_row
        else:
            rect = self._item_rect(row)
            if action == A.MoveUp:
                k2 = k - 1
            elif action == A.MoveDown:
                k2 = k + 1
            elif action == A.MovePageUp:
                k2 = bisect_right(self._row_y, rect.top() - self.viewport().height()) - 1
            elif action == A.MovePageDown:
                k2 = bisect_right(self._row_y, rect.top() + self.viewport().height()) - 1
            else:
                return current
            k2 = max(0, min(len(self._rows) - 1, k2))
            y, h, first, count, _ = self._rows[k2]
            cx = rect.center().x()
            target = min(range(first, first + count), key=lambda r: abs(self._item_rect(r).center().x() - cx))
        return model.index(target, 0)

    # ------------------------------------------------------------------ painting and events

    def paintEvent(self, event) -> None:
        painter = QPainter(self.viewport())
        offset = self.verticalOffset()
        area = event.rect().translated(0, offset)
        palette = self.palette()
        font = QFont(self.font())
        font.setBold(True)
        font.setPointSizeF(font.pointSizeF() * 1.05)
        painter.setFont(font)
        painter.setPen(palette.color(QPalette.WindowText))
        for y, title in self._headers:
            if area.top() - HEADER_H <= y <= area.bottom():
                painter.drawText(
                    QRect(self.delegate.PAD + 2, y - offset, self._width(), HEADER_H), Qt.AlignLeft | Qt.AlignVCenter, title
                )
        k = max(0, bisect_right(self._row_y, area.top()) - 1)
        selection = self.selectionModel()
        current = self.currentIndex()
        model = self.model()
        option = QStyleOptionViewItem()
        self.initViewItemOption(option)
        base_state = option.state & ~(QStyle.State_Selected | QStyle.State_MouseOver | QStyle.State_HasFocus)
        while k < len(self._rows) and self._rows[k][0] <= area.bottom():
            _, _, first, count, _ = self._rows[k]
            for row in range(first, first + count):
                index = model.index(row, 0)
                option.rect = self._item_rect(row).translated(0, -offset)
                state = base_state
                if selection.isSelected(index):
                    state |= QStyle.State_Selected
                if row == self._hover:
                    state |= QStyle.State_MouseOver
                if index == current:
                    state |= QStyle.State_HasFocus
                option.state = state
                self.delegate.paint(painter, option, index)
            k += 1
        painter.end()

    def visible_rows(self) -> range:
        top = self.verticalOffset()
        k0 = max(0, bisect_right(self._row_y, top) - 1)
        k1 = max(0, bisect_right(self._row_y, top + self.viewport().height()) - 1)
        if not self._rows:
            return range(0)
        return range(self._rows[k0][2], self._rows[k1][2] + self._rows[k1][3])

    def resizeEvent(self, event) -> None:
        super().resizeEvent(event)
        self.relayout()

    def showEvent(self, event) -> None:
        super().showEvent(event)
        self.relayout()

    def reset(self) -> None:
        super().reset()
        self._hover = -1
        self.relayout()

    def rowsInserted(self, parent, start: int, end: int) -> None:
        super().rowsInserted(parent, start, end)
        self.relayout()

    def doItemsLayout(self) -> None:
        super().doItemsLayout()
        self.relayout()

    def mouseMoveEvent(self, event) -> None:
        row = self.indexAt(event.position().toPoint()).row()
        if row != self._hover:
            self._hover = row
            self.viewport().update()
        super().mouseMoveEvent(event)

    def leaveEvent(self, event) -> None:
        self._hover = -1
        self.viewport().update()
        super().leaveEvent(event)

    def keyPressEvent(self, event) -> None:
        if event.key() in (Qt.Key_Return, Qt.Key_Enter) and self.currentIndex().isValid():
            self.activated_item.emit(self.currentIndex().row())
            return
        if event.key() == Qt.Key_Space and not event.modifiers():
            self.preview_requested.emit()
            return
        super().keyPressEvent(event)

    def mouseDoubleClickEvent(self, event) -> None:
        index = self.indexAt(event.position().toPoint())
        if index.isValid():
            self.activated_item.emit(index.row())
            return
        super().mouseDoubleClickEvent(event)

    def sizeHint(self) -> QSize:
        return QSize(400, 300)
