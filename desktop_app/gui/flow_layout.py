"""A layout that places widgets left to right and wraps to a new line when the width runs out.

The filter row uses it: at the window's minimum size its combos, the match slider and the
order controls wrap instead of being squeezed until their texts are cut ("All fo", "Any c"),
and it never asks for more width than its widest widget, so a control appearing in it (the
custom date range) cannot narrow the library panel.
"""

from __future__ import annotations

from PySide6.QtCore import QPoint, QRect, QSize, Qt
from PySide6.QtWidgets import QLayout, QWidgetItem


class FlowLayout(QLayout):
    def __init__(self, parent=None, spacing: int = 8):
        super().__init__(parent)
        self._items: list = []
        self.setSpacing(spacing)
        self.setContentsMargins(0, 0, 0, 0)

    def addItem(self, item) -> None:
        self._items.append(item)

    def addWidget(self, widget) -> None:
        self.addChildWidget(widget)
        self.addItem(QWidgetItem(widget))

    def count(self) -> int:
        return len(self._items)

    def itemAt(self, index: int):
        return self._items[index] if 0 <= index < len(self._items) else None

    def takeAt(self, index: int):
        return self._items.pop(index) if 0 <= index < len(self._items) else None

    def expandingDirections(self):
        return Qt.Orientation(0)

    def hasHeightForWidth(self) -> bool:
        return True

    def heightForWidth(self, width: int) -> int:
        return self._arrange(QRect(0, 0, width, 0), move=False)

    def setGeometry(self, rect: QRect) -> None:
        super().setGeometry(rect)
        self._arrange(rect, move=True)

    def sizeHint(self) -> QSize:
        visible = [i.sizeHint() for i in self._items if not i.isEmpty()]
        if not visible:
            return QSize(0, 0)
        width = sum(s.width() for s in visible) + self.spacing() * (len(visible) - 1)
        return QSize(width, max(s.height() for s in visible))

    def minimumSize(self) -> QSize:
        size = QSize(0, 0)
        for item in self._items:
            if not item.isEmpty():
                size = size.expandedTo(item.minimumSize()).expandedTo(QSize(item.sizeHint().width(), 0))
        m = self.contentsMargins()
        return size + QSize(m.left() + m.right(), m.top() + m.bottom())

    def _arrange(self, rect: QRect, move: bool) -> int:
        m = self.contentsMargins()
        area = rect.adjusted(m.left(), m.top(), -m.right(), -m.bottom())
        x, y, line_height = area.x(), area.y(), 0
        line: list = []

        def place(line, y, height):
            for item, px in line:
                hint = item.sizeHint()
                item.setGeometry(QRect(QPoint(px, y + (height - hint.height()) // 2), hint))

        for item in self._items:
            if item.isEmpty():
                continue
            hint = item.sizeHint()
            if line and x + hint.width() > area.right() + 1:
                if move:
                    place(line, y, line_height)
                y += line_height + self.spacing()
                x, line_height, line = area.x(), 0, []
            line.append((item, x))
            x += hint.width() + self.spacing()
            line_height = max(line_height, hint.height())
        if move and line:
            place(line, y, line_height)
        return y + line_height - rect.y() + m.bottom()
