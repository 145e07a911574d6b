"""The skipped-files list as a dialog with actions, driven by clicks: show a file in its folder,
retry it once fixed (it gets indexed), hide one (remembered) and list it again."""

from __future__ import annotations

import pytest

pytest.importorskip("PySide6")
pytest.importorskip("pytestqt")

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QCheckBox, QPushButton, QTreeWidget

from tests.gui.helpers import index_folder as _indexed
from tests.gui.helpers import settle as _settle
from tests.library_helpers import make_photo


def _click_row(qtbot, tree: QTreeWidget, name: str) -> None:
    for i in range(tree.topLevelItemCount()):
        item = tree.topLevelItem(i)
        if item.text(0).endswith(name):
            rect = tree.visualItemRect(item)
            qtbot.mouseClick(tree.viewport(), Qt.LeftButton, pos=rect.center())
            return
    raise AssertionError(f"{name} not listed")


def _button(dialog, text: str) -> QPushButton:
    return next(b for b in dialog.findChildren(QPushButton) if b.text() == text)


def _rows(tree: QTreeWidget) -> list[str]:
    return sorted(tree.topLevelItem(i).text(0).rsplit("/", 1)[-1] for i in range(tree.topLevelItemCount()))


def test_skipped_files_show_retry_and_hide(qtbot, tiny_model, window, tmp_path, monkeypatch):
    folder = tmp_path / "Mixed"
    make_photo(folder / "good.jpg", seed=1)
    (folder / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    (folder / "junk.png").write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    revealed = []
    monkeypatch.setattr("desktop_app.gui.skipped_dialog.reveal_in_file_manager", revealed.append)  # the file manager

    w = window
    _indexed(qtbot, w, folder)
    _settle(qtbot, w)
    panel = w.panel
    assert panel.errors_button.isVisible() and "2 files could not be read" in panel.errors_button.text()
    assert "pixfind" not in panel.errors_button.text()

    qtbot.mouseClick(panel.errors_button, Qt.LeftButton)
    dialog = panel.errors_dialog
    assert dialog is not None and dialog.isVisible()
    tree = dialog.findChild(QTreeWidget, "errors")
    assert _rows(tree) == ["broken.jpg", "junk.png"]
    assert "pixfind " not in dialog.findChild(QTreeWidget, "errors").topLevelItem(0).text(1)

    # Show in folder: the file manager is asked for that file
    _click_row(qtbot, tree, "broken.jpg")
    qtbot.mouseClick(_button(dialog, "Show in folder"), Qt.LeftButton)
    assert revealed == [str(folder / "broken.jpg")]

    # Retry after fixing the file: it is indexed and leaves the list
    make_photo(folder / "broken.jpg", seed=7)
    _click_row(qtbot, tree, "broken.jpg")
    with qtbot.waitSignal(w.index_finished, timeout=60000):
        qtbot.mouseClick(_button(dialog, "Retry"), Qt.LeftButton)
        assert "Retrying 1 file" in dialog.status.text()
    qtbot.waitUntil(lambda: _rows(tree) == ["junk.png"], timeout=10000)
    qtbot.waitUntil(lambda: "Indexed: broken.jpg" in dialog.status.text(), timeout=10000)
    qtbot.waitUntil(lambda: w.overview.photos == 2, timeout=10000)
    assert "1 file could not be read" in panel.errors_button.text()

    # Hide: gone from the list and from the panel's count, remembered in the settings
    _click_row(qtbot, tree, "junk.png")
    qtbot.mouseClick(_button(dialog, "Hide"), Qt.LeftButton)
    assert _rows(tree) == []
    assert "hidden" in panel.errors_button.text() and "could not be read" not in panel.errors_button.text()
    from desktop_app.gui.skipped_dialog import hidden_paths

    assert hidden_paths() == {str(folder / "junk.png")}  # read back from the settings file
    # still hidden after the next index run
    with qtbot.waitSignal(w.index_finished, timeout=60000):
        qtbot.mouseClick(panel.reindex_button, Qt.LeftButton)
    _settle(qtbot, w)
    assert _rows(tree) == [] and "hidden" in panel.errors_button.text()

    # Show hidden files lists it again, marked; Unhide puts it back in the count
    show = dialog.findChild(QCheckBox)
    qtbot.mouseClick(show, Qt.LeftButton)
    assert _rows(tree) == ["junk.png"] and "(hidden)" in tree.topLevelItem(0).text(1)
    _click_row(qtbot, tree, "junk.png")
    qtbot.mouseClick(_button(dialog, "Unhide"), Qt.LeftButton)
    assert hidden_paths() == set()
    assert "1 file could not be read" in panel.errors_button.text()
    dialog.close()
