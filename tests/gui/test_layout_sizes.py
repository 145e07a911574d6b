"""The window at small, medium and large sizes: no control's text cut, no panel that moves."""

from __future__ import annotations

import pytest

pytest.importorskip("PySide6")
pytest.importorskip("pytestqt")

from PySide6.QtCore import Qt
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QAbstractButton, QComboBox, QLabel

from tests.gui.helpers import index_folder as _indexed
from tests.gui.helpers import settle as _settle
from tests.library_helpers import make_photo

SIZES = [(720, 480), (1024, 700), (1920, 1080)]


def _cut_texts(w) -> list[str]:
    """Every visible button, label and combo whose text does not fit, or that sticks out of its parent."""
    bad = []
    for kind in (QAbstractButton, QLabel, QComboBox):
        for c in w.findChildren(kind):
            if not c.isVisible() or c.window() is not w:
                continue
            text = c.currentText() if isinstance(c, QComboBox) else c.text()
            parent = c.parentWidget()
            if parent is not None and not parent.rect().contains(c.geometry()) and c.width() > 0:
                bad.append(f"{type(c).__name__} {text!r} sticks out of its parent")
            if not text or (isinstance(c, QLabel) and c.pixmap() is not None and not c.pixmap().isNull()):
                continue
            if isinstance(c, QLabel) and c.wordWrap():
                if c.heightForWidth(c.width()) > c.height():
                    bad.append(f"QLabel {text!r}: {c.height()} px high, needs {c.heightForWidth(c.width())}")
                continue
            fits = c.sizeHint().width() <= c.width()
            if not fits and not (isinstance(c, QLabel) and c.textFormat() == Qt.RichText):
                extra = 30 if isinstance(c, (QComboBox, QAbstractButton)) else 0
                fits = c.fontMetrics().horizontalAdvance(text.replace("&", "")) + extra <= c.width()
            if not fits:
                bad.append(f"{type(c).__name__} {text!r}: {c.width()} px wide, needs {c.sizeHint().width()}")
    return bad


def test_no_text_is_cut_at_any_size_and_the_panel_keeps_its_width(qtbot, tiny_model, window, photos, tmp_path):
    w = window
    other = tmp_path / "Holidays"
    make_photo(other / "h0.jpg", seed=1)
    _indexed(qtbot, w, photos)
    with qtbot.waitSignal(w.index_finished, timeout=60000):
        w.add_folder(str(other))
    qtbot.waitUntil(lambda: len(w.overview.folders) == 2, timeout=10000)
    _settle(qtbot, w)
    # every filter shown (folders, cameras), an example image and words: the fullest header there is
    with qtbot.waitSignal(w.search_finished, timeout=20000):
        w.set_example(str(photos / "chelsea.jpg"))
    _settle(qtbot, w)
    assert w.bar.folder_filter.isVisible() and w.bar.camera_filter.isVisible() and w.bar.balance_row.isVisible()
    widths = []
    for size in SIZES:
        w.resize(*size)
        qtbot.waitUntil(lambda size=size: (w.width(), w.height()) == size, timeout=5000)
        qtbot.wait(100)
        assert _cut_texts(w) == [], size
        assert w.search.width() >= 220, size
        widths.append(w.dock.width())
        # the custom date range appearing and going again leaves the panel alone
        with qtbot.waitSignal(w.search_finished, timeout=20000):
            w.bar.date_filter.setCurrentIndex(w.bar.date_filter.count() - 1)
        qtbot.wait(100)
        assert w.bar.date_from.isVisible() and _cut_texts(w) == [], size
        assert w.dock.width() == widths[-1], size
        with qtbot.waitSignal(w.search_finished, timeout=20000):
            w.bar.date_filter.setCurrentIndex(0)
        qtbot.wait(100)
        assert w.dock.width() == widths[-1], size
    assert widths == [widths[0]] * len(SIZES)
    # typing words next to the example does not move the grid (no row appearing on the first letter)
    _settle(qtbot, w)
    top = w.view.mapTo(w, w.view.rect().topLeft()).y()
    w.search.setFocus()
    QTest.keyClicks(w.search, "on a sofa")
    qtbot.wait(50)
    assert w.view.mapTo(w, w.view.rect().topLeft()).y() == top
