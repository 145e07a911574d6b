"""Text in photos in the window: the library panel's OCR switch, the "Reading text" phase of
indexing, quoted words found and marked on the thumbnail and in the detail view, Copy text
from the context menu and from the detail view. Real rapidocr models on real photos."""

from __future__ import annotations

import pytest

pytest.importorskip("PySide6")
pytest.importorskip("pytestqt")

from PySide6.QtCore import QPoint, Qt
from PySide6.QtGui import QContextMenuEvent, QGuiApplication
from PySide6.QtWidgets import QApplication

from tests.gui.helpers import index_folder as _indexed
from tests.gui.helpers import search_words as _search
from tests.gui.helpers import settle as _settle
from tests.integration.test_ocr import latin_font, render


@pytest.fixture
def text_photos(tmp_path):
    folder = tmp_path / "Scans"
    render("coffee.jpg", folder / "receipt.jpg", "HORNBACH Baumarkt", latin_font())
    render("temple.jpg", folder / "sign.jpg", "budget meeting", latin_font())
    return folder


def test_read_text_find_quoted_words_mark_them_and_copy_the_text(qtbot, tiny_model, window, text_photos):
    w = window
    qtbot.waitUntil(lambda: w.overview is not None and w.model_ready, timeout=20000)
    box = w.panel.ocr_box
    assert not box.isChecked()  # the window tests' libraries start with it off (see _no_ocr)
    qtbot.mouseClick(box, Qt.LeftButton, pos=QPoint(8, box.height() // 2))  # on the tick box
    qtbot.waitUntil(w.service.ocr_enabled, timeout=5000)  # the switch is the library's

    phases = []
    w.indexer.progressed.connect(lambda p: phases.append((p.phase, w.panel.progress_title.text())))
    _indexed(qtbot, w, text_photos, timeout=180000, ocr=True)
    assert any(phase == "text" and title.startswith("Reading text in photos") for phase, title in phases)
    assert phases[-1][0] == "text"  # after the photos were encoded
    assert "text read in 2 of 2 photos" in w.panel.last_run.text()

    assert _search(qtbot, w, '"hornbach"') == ["receipt.jpg"]
    item = w.model.items[0]
    (match,) = item.text_matches
    assert "HORNBACH" in match.text.upper() and len(match.word_boxes) == 1
    assert "<b>HORNBACH</b>" in w.model.data(w.model.index(0), Qt.ToolTipRole).upper().replace("<B>", "<b>").replace("</B>", "</b>")
    # the thumbnail is drawn with the word marked (once it has loaded)
    qtbot.waitUntil(lambda: (w.view.viewport().repaint(), w.delegate.painted_text_marks > 0)[1], timeout=10000)

    # Copy Text from the context menu (a right-click as the platform delivers it)
    QGuiApplication.clipboard().clear()
    center = w.view.visualRect(w.model.index(0)).center()
    QApplication.sendEvent(
        w.view.viewport(), QContextMenuEvent(QContextMenuEvent.Mouse, center, w.view.viewport().mapToGlobal(center))
    )
    menu = w.photo_actions.context_menu
    (copy_text,) = [a for a in menu.actions() if a.text() == "Copy Text"]
    copy_text.trigger()
    menu.close()
    qtbot.waitUntil(lambda: "HORNBACH" in QGuiApplication.clipboard().text().upper(), timeout=5000)

    # the detail view outlines the word over the photo, and copies the text too
    QGuiApplication.clipboard().clear()
    qtbot.mouseDClick(w.view.viewport(), Qt.LeftButton, pos=center)
    dialog = w.photo_actions.detail
    qtbot.waitUntil(lambda: dialog is not None and len(dialog.image.marks) == 1, timeout=10000)
    mark = dialog.image.marks[0].sceneBoundingRect()
    full = dialog.image.full_size
    assert 0 <= mark.left() < mark.right() <= full.width() and 0 <= mark.top() < mark.bottom() <= full.height() / 2
    qtbot.mouseClick(dialog.buttons["Copy text"], Qt.LeftButton)
    qtbot.waitUntil(lambda: "HORNBACH" in QGuiApplication.clipboard().text().upper(), timeout=5000)
    assert dialog.copy_note.text() == "Copied 1 line of text"
    dialog.close()
    _settle(qtbot, w)

    # a photo without the word is not in the results; words and meaning together work in the window too
    assert _search(qtbot, w, 'a sign "budget"') == ["sign.jpg"]
