"""Removing a folder from the library panel, as a user does it: select it, click Remove, answer the
question. Cancel keeps the folder and its photos; "Remove folder" forgets them; the files stay."""

from __future__ import annotations

import pytest

pytest.importorskip("PySide6")
pytest.importorskip("pytestqt")

from PySide6.QtCore import Qt
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QMessageBox

from tests.gui.helpers import REAL
from tests.gui.helpers import click as _click
from tests.gui.helpers import index_folder as _indexed
from tests.gui.helpers import settle as _settle
from tests.library_helpers import make_photo


def _open_questions(w) -> list[QMessageBox]:
    return [box for box in w.findChildren(QMessageBox) if box.isVisible()]


def _select_folder(qtbot, w, name: str) -> None:
    """Click the folder's row in the panel's list."""
    folders = w.panel.folders
    item = next(folders.item(i) for i in range(folders.count()) if folders.item(i).text().startswith(name))
    folders.scrollToItem(item)
    QTest.mouseClick(folders.viewport(), Qt.LeftButton, pos=folders.visualItemRect(item).center())
    assert folders.currentItem() is item and item.isSelected()


def _ask_to_remove(qtbot, w) -> QMessageBox:
    _click(qtbot, w.panel.remove_button)
    qtbot.waitUntil(lambda: len(_open_questions(w)) == 1, timeout=5000)
    return _open_questions(w)[0]


def test_remove_asks_first_cancel_keeps_the_folder_and_remove_forgets_it(qtbot, tiny_model, window, photos, tmp_path):
    w = window
    holidays = tmp_path / "Holidays"
    for i in range(3):
        make_photo(holidays / f"h{i}.jpg", seed=100 + i)
    originals = {p.name: p.read_bytes() for p in holidays.iterdir()}
    _indexed(qtbot, w, photos)
    with qtbot.waitSignal(w.index_finished, timeout=60000):
        w.add_folder(str(holidays))
    everything = len(REAL) + 1 + 3
    qtbot.waitUntil(lambda: len(w.overview.folders) == 2 and w.overview.photos == everything, timeout=10000)
    assert not w.panel.remove_button.isEnabled()  # nothing selected: nothing to remove

    _select_folder(qtbot, w, "Holidays")
    assert w.panel.remove_button.isEnabled()
    qtbot.waitUntil(lambda: sorted(it.name for it in w.model.items) == ["h0.jpg", "h1.jpg", "h2.jpg"], timeout=20000)

    # the question names the folder and says the files stay; Cancel is the default
    box = _ask_to_remove(qtbot, w)
    assert str(holidays) in box.text() and "not touched" in box.text()
    assert box.defaultButton() is box.button(QMessageBox.Cancel)
    _click(qtbot, box.button(QMessageBox.Cancel))
    qtbot.waitUntil(lambda: not _open_questions(w), timeout=5000)
    _settle(qtbot, w)  # a removal started anyway would be a task in flight: let it land before looking
    assert len(w.service.overview().folders) == 2 and w.service.overview().photos == everything
    assert w.panel.folders.count() == 2 and w.overview.photos == everything
    assert sorted(it.name for it in w.model.items) == ["h0.jpg", "h1.jpg", "h2.jpg"]

    # asked again, and confirmed this time
    box = _ask_to_remove(qtbot, w)
    (confirm,) = [b for b in box.buttons() if box.buttonRole(b) == QMessageBox.DestructiveRole]
    assert confirm.text() == "Remove folder"
    _click(qtbot, confirm)
    qtbot.waitUntil(lambda: len(w.overview.folders) == 1 and w.overview.photos == len(REAL) + 1, timeout=10000)
    assert [f.path for f in w.service.overview().folders] == [str(photos)]
    assert w.panel.folders.count() == 1
    qtbot.waitUntil(lambda: w.model.rowCount() == len(REAL) + 1, timeout=10000)  # back to all folders
    assert all(not it.path.startswith(str(holidays)) for it in w.model.items)
    # the files themselves are untouched
    assert {p.name: p.read_bytes() for p in holidays.iterdir()} == originals


def test_the_question_is_asked_even_from_the_keyboard(qtbot, tiny_model, window, photos):
    """Space on the focused Remove button goes the same way as a click: the question, then nothing on Escape."""
    w = window
    _indexed(qtbot, w, photos)
    _select_folder(qtbot, w, "Photos")
    w.panel.remove_button.setFocus()
    QTest.keyClick(w.panel.remove_button, Qt.Key_Space)
    qtbot.waitUntil(lambda: len(_open_questions(w)) == 1, timeout=5000)
    box = _open_questions(w)[0]
    QTest.keyClick(box, Qt.Key_Escape)
    qtbot.waitUntil(lambda: not _open_questions(w), timeout=5000)
    _settle(qtbot, w)
    assert len(w.service.overview().folders) == 1 and w.service.overview().photos == len(REAL) + 1
