"""Loose ends a daily user meets: indexing feedback, pasted images' names, errors, the dark palette."""

from __future__ import annotations

import re

import pytest

pytest.importorskip("PySide6")
pytest.importorskip("pytestqt")

from PIL import Image
from PySide6.QtCore import Qt
from PySide6.QtGui import QColor, QGuiApplication, QImage, QPalette
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication, QCheckBox, QSlider

from desktop_app.gui import create_app
from tests.gui.helpers import index_folder as _indexed
from tests.gui.helpers import settle as _settle
from tests.library_helpers import make_photo


def test_indexing_shows_the_folder_a_message_and_honest_counts(qtbot, tiny_model, window, tmp_path):
    w = window
    folder = tmp_path / "many"
    total = 150
    for i in range(total):
        make_photo(folder / f"p{i:03d}.jpg", seed=i, size=(64, 48))
    qtbot.waitUntil(lambda: w.model_ready, timeout=20000)
    seen = {}

    def watch(p):  # what the user sees as the pass goes on
        if p.total and "folder" not in seen and w.panel.folders.count():
            seen["folder"] = (p.done, w.panel.folders.item(0).text())
        if not w.model.rowCount() and "message" not in seen and w.pages.currentWidget() is w.message:
            seen["message"] = w.message.title.text()
        if p.done >= 40 and not w.panel.pause_button.isChecked():
            w.panel.pause_button.click()

    w.indexer.progressed.connect(watch)
    w.add_folder(str(folder))
    # paused, and the batch being written when the button was clicked is written: the pass holds
    qtbot.waitUntil(lambda: w.indexer.last_progress is not None and w.indexer.last_progress.held, timeout=60000)
    w.indexer.progressed.disconnect(watch)
    assert seen["message"] == "Indexing…"  # not a blank grid
    qtbot.waitUntil(lambda: w.panel.folders.count() == 1 and w.model.rowCount() > 0, timeout=10000)
    assert "folder" in seen and seen["folder"][0] < total  # the new folder shows while the pass runs
    qtbot.wait(500)
    _settle(qtbot, w)
    w.searcher.refresh_count()
    assert "indexing paused" in w.count_label.text() and "goes on" not in w.count_label.text()
    # the panel's count and the grid's agree
    panel_count = int(re.search(r"·\s+([\d,]+)", w.panel.folders.item(0).text()).group(1).replace(",", ""))
    assert panel_count == w.model.rowCount() == w.overview.photos
    with qtbot.waitSignal(w.index_finished, timeout=60000):
        w.panel.cancel_button.click()


def test_a_pasted_image_gets_a_readable_name(qtbot, tiny_model, window, photos):
    w = window
    _indexed(qtbot, w, photos)
    _settle(qtbot, w)
    QGuiApplication.clipboard().setImage(QImage(str(photos / "rocket.jpg")))
    w.search.setFocus()
    with qtbot.waitSignal(w.search_finished, timeout=20000):
        QTest.keyClick(w.search, Qt.Key_V, Qt.ControlModifier)
    name = w.bar.examples[0].rsplit("/", 1)[-1]
    assert re.fullmatch(r"Pasted image \d{4}-\d\d-\d\d \d\d-\d\d-\d\d\.png", name), name
    assert Image.open(w.bar.examples[0]).size == Image.open(photos / "rocket.jpg").size


def test_errors_read_as_errors(qtbot, tiny_model, window, photos):
    w = window
    _indexed(qtbot, w, photos)
    w.search.setFocus()
    QTest.keyClicks(w.search, "/no/such/folder/photo.jpg")
    QTest.keyClick(w.search, Qt.Key_Return)
    label = w.status_area.error_label
    qtbot.waitUntil(label.isVisible, timeout=20000)
    assert "photo.jpg" in label.text() and label.isEnabled()
    assert w.status_area.error_icon.pixmap() is not None and not w.status_area.error_icon.pixmap().isNull()
    colour = QColor(re.search(r"color: (#[0-9a-f]{6})", label.styleSheet()).group(1))
    assert colour.red() > colour.green() + 80 and colour.red() > colour.blue() + 80


def _dark() -> QPalette:
    p = QPalette()
    for role, c in ((QPalette.Window, "#2b2b2b"), (QPalette.WindowText, "#e6e6e6"), (QPalette.Base, "#1e1e1e"),
                    (QPalette.Text, "#e6e6e6"), (QPalette.Button, "#353535"), (QPalette.ButtonText, "#e6e6e6"),
                    (QPalette.Mid, "#303030"), (QPalette.Midlight, "#333333"), (QPalette.Dark, "#232323"),
                    (QPalette.Highlight, "#3d7ee0"), (QPalette.PlaceholderText, "#9a9a9a")):  # fmt: skip
        p.setColor(role, QColor(c))
    return p


def _contrast(image: QImage, background: QColor) -> int:
    """The largest difference in lightness between any pixel and the background."""
    return max(
        abs(QColor(image.pixel(x, y)).lightness() - background.lightness())
        for x in range(image.width())
        for y in range(image.height())
    )


def test_dark_palette_slider_track_and_unticked_boxes_are_visible(qtbot):
    app = create_app()
    old = app.palette()
    app.setPalette(_dark())
    try:
        slider = QSlider(Qt.Horizontal)
        slider.setRange(0, 100)
        slider.setValue(0)
        slider.resize(160, 24)
        box = QCheckBox("")
        box.resize(24, 24)
        for widget in (slider, box):
            qtbot.addWidget(widget)
            widget.show()
        qtbot.wait(50)
        window = _dark().color(QPalette.Window)
        track = slider.grab().toImage().copy(60, 0, 100, 24)  # right of the handle: the bare track
        assert _contrast(track, window) >= 60
        assert _contrast(box.grab().toImage(), window) >= 60
    finally:
        app.setPalette(old)
        QApplication.processEvents()
