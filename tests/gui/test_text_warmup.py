"""Opening a library warms the text tower in the background, never the image tower; a query typed
meanwhile waits for it and gets its results. Real window (offscreen), real pack, real photos."""

from __future__ import annotations

import pytest

pytest.importorskip("PySide6")
pytest.importorskip("pytestqt")

from PySide6.QtCore import Qt
from PySide6.QtGui import QGuiApplication
from PySide6.QtTest import QTest

from desktop_app.gui import create_app
from desktop_app.gui.main_window import MainWindow
from tests.library_helpers import index_json, make_photo


@pytest.fixture
def library(tmp_path, capsys, tiny_model, library_dir):
    for i in range(6):
        make_photo(tmp_path / "photos" / f"p{i}.jpg", seed=i)
    index_json(capsys, library_dir, tmp_path / "photos")
    return library_dir


@pytest.fixture
def open_window(qtbot):
    windows = []

    def opener(library_dir):
        create_app()
        w = MainWindow(str(library_dir), watch=False)
        qtbot.addWidget(w)
        w.show()
        windows.append(w)
        return w

    yield opener
    for w in windows:
        w.close()
    QGuiApplication.clipboard().clear()


def test_opening_a_library_warms_the_text_tower_only(qtbot, library, open_window):
    w = open_window(library)
    with qtbot.waitSignal(w.text_search_ready, timeout=60000):
        pass
    assert w.text_ready and w.service.encoder.loaded_sessions() == {"text"}  # no query typed yet
    w.search.setFocus()
    with qtbot.waitSignal(w.search_finished, timeout=30000):
        QTest.keyClicks(w.search, "a red car")
        QTest.keyClick(w.search, Qt.Key_Return)
    assert w.last_result.request.text == "a red car" and len(w.last_result.items) == 6
    assert w.service.encoder.loaded_sessions() == {"text"}


def test_a_query_typed_while_the_text_tower_opens_waits_for_it(qtbot, library, open_window):
    w = open_window(library)
    qtbot.waitUntil(lambda: w.model_ready, timeout=30000)  # the search field takes words from here on
    w.search.setFocus()
    QTest.keyClicks(w.search, "a dog")
    QTest.keyClick(w.search, Qt.Key_Return)
    qtbot.waitUntil(lambda: w.last_result is not None and w.last_result.request.text == "a dog", timeout=60000)
    assert len(w.last_result.items) == 6
    qtbot.waitUntil(lambda: w.text_ready, timeout=60000)
    assert w.service.encoder.loaded_sessions() == {"text"}
