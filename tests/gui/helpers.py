"""Plain helpers shared by the window tests (fixtures live in conftest.py): the real photos'
names, and waiting for the window as a user would (indexing done, searches and thumbnails settled)."""

from __future__ import annotations

from tests.photo_fixtures import camera_exif  # noqa: F401 - the EXIF the real photos carry

REAL = ["astronaut", "coffee", "chelsea", "rocket", "horse", "camera", "coins", "moon"]


def index_folder(qtbot, w, folder, timeout=60000, ocr=False):
    qtbot.waitUntil(lambda: w.model_ready or w.model_problem is not None, timeout=20000)
    assert w.model_ready, w.model_problem
    w.service.set_ocr_enabled(ocr)
    with qtbot.waitSignal(w.index_finished, timeout=timeout):
        w.add_folder(str(folder))
    # The window refreshes its overview after the pass: wait for the one with every photo of the pass
    # (a live refresh from mid-pass may still be on screen when index_finished fires).
    expected = w.service.overview()
    qtbot.waitUntil(
        lambda: w.overview is not None and (w.overview.photos, w.overview.embedded) == (expected.photos, expected.embedded),
        timeout=10000,
    )


def search_words(qtbot, w, text):
    with qtbot.waitSignal(w.search_finished, timeout=20000):
        w.search.clear()
        qtbot.keyClicks(w.search, text)
    qtbot.waitUntil(lambda: w.last_result is not None and w.last_result.request.text == text, timeout=10000)
    return [it.name for it in w.model.items]


def settle(qtbot, w):
    """Wait for searches and thumbnails in flight."""
    from desktop_app.gui import tasks

    qtbot.waitUntil(lambda: tasks.pool().activeThreadCount() == 0, timeout=20000)
    qtbot.wait(50)


def click(qtbot, button):
    from PySide6.QtCore import Qt
    from PySide6.QtTest import QTest

    qtbot.waitUntil(lambda: button.isVisible() and button.isEnabled(), timeout=20000)
    QTest.mouseClick(button, Qt.LeftButton)
