"""The result grid driven like a user would: Enter, weaker matches, date order and sections,
the Min. match slider, justified rows and sharp thumbnails. Real pack, real files, real widgets."""

from __future__ import annotations

import pytest

pytest.importorskip("PySide6")
pytest.importorskip("pytestqt")

from PySide6.QtCore import Qt
from PySide6.QtTest import QTest

from desktop_app.gui import create_app
from desktop_app.gui.date_sections import date_sections
from desktop_app.gui.main_window import MainWindow
from desktop_app.services import LibraryService, SearchRequest
from tests.gui.helpers import REAL
from tests.gui.helpers import index_folder as _indexed
from tests.gui.helpers import settle as _settle


def _type_query(qtbot, w, text, enter=False):
    _activate(qtbot, w)
    w.search.setFocus()
    w.search.selectAll()
    QTest.keyClick(w.search, Qt.Key_Delete)
    QTest.keyClicks(w.search, text)
    if enter:
        QTest.keyClick(w.search, Qt.Key_Return)
    qtbot.waitUntil(
        lambda: w.last_result is not None and w.last_result.request.text == text and not w.searcher.busy, timeout=20000
    )
    _settle(qtbot, w)


def _activate(qtbot, w):
    w.activateWindow()
    qtbot.waitUntil(w.isActiveWindow, timeout=5000)


def _with_good(monkeypatch, good_for):
    """The service's answers with ``good`` set per query (the tiny random model calibrates to nothing useful)."""
    search = LibraryService.search

    def wrapped(self, request, limit=None):
        result = search(self, request, limit)
        if not result.browse:
            result.good = min(len(result.items), good_for(request.text))
        return result

    monkeypatch.setattr(LibraryService, "search", wrapped)


def test_enter_opens_the_first_result_and_the_selection_survives_updates(qtbot, tiny_model, window, photos, monkeypatch):
    monkeypatch.setattr("desktop_app.gui.search_controller.FIRST_PAGE", 3)  # the rest of the list arrives later
    _with_good(monkeypatch, lambda text: 100)  # as a trained model finds the rocket
    w = window
    _indexed(qtbot, w, photos)
    _settle(qtbot, w)
    _activate(qtbot, w)
    w.search.setFocus()
    QTest.keyClicks(w.search, "rocket")
    QTest.keyClick(w.search, Qt.Key_Return)  # before search-as-you-type has answered
    qtbot.waitUntil(
        lambda: w.last_result is not None and w.last_result.request.text == "rocket" and w.last_result.complete, timeout=20000
    )
    _settle(qtbot, w)
    assert w.model.rowCount() == len(REAL) + 1  # the whole list came in behind the first page
    assert w.view.hasFocus()
    assert w.view.currentIndex().row() == 0 and w.view.selectionModel().isSelected(w.model.index(0))
    first = w.model.items[0]
    QTest.keyClick(w.view, Qt.Key_Return)
    assert w.photo_actions.detail is not None and w.photo_actions.detail.isVisible()
    assert w.photo_actions.detail.item is first
    w.photo_actions.detail.close()
    # Space previews the same photo
    QTest.keyClick(w.view, Qt.Key_Space)
    assert w.photo_actions.preview.isVisible() and w.photo_actions.preview.item is first
    w.photo_actions.preview.close()
    # on another photo, a re-index refreshes the results: still there, still selected, still focused
    w.view.setFocus()
    QTest.keyClick(w.view, Qt.Key_Right)
    chosen = w.model.items[w.view.currentIndex().row()]
    assert chosen is not first
    with qtbot.waitSignal(w.index_finished, timeout=60000):
        QTest.keyClick(w, Qt.Key_F5)
    qtbot.waitUntil(lambda: not w.searcher.busy, timeout=20000)
    _settle(qtbot, w)
    assert w.focusWidget() is w.view  # (the offscreen platform may deactivate the window meanwhile)
    assert w.model.item(w.view.currentIndex().row()).id == chosen.id
    assert [w.model.items[i.row()].id for i in w.view.selectionModel().selectedIndexes()] == [chosen.id]
    # Enter again on the same query: straight onto the first result
    _activate(qtbot, w)
    w.search.setFocus()
    QTest.keyClick(w.search, Qt.Key_Return)
    assert w.view.hasFocus() and w.view.currentIndex().row() == 0


def test_weaker_matches_are_collapsed_behind_a_header(qtbot, tiny_model, window, photos, monkeypatch):
    _with_good(monkeypatch, lambda text: 0 if text == "zzzz" else 3)
    w = window
    _indexed(qtbot, w, photos)
    n = len(REAL) + 1
    _type_query(qtbot, w, "a photo of a cat")
    button = w.view.weak_button
    assert w.model.rowCount() == n
    assert button.isVisible() and button.text().endswith(f"{n - 3} weaker matches")
    shown = [r for r in range(n) if w.view.visualRect(w.model.index(r)).isValid()]
    assert shown == [0, 1, 2]
    assert "3 good matches" in w.count_label.text()
    QTest.mouseClick(button, Qt.LeftButton)
    assert all(w.view.visualRect(w.model.index(r)).isValid() for r in range(n))
    # the weaker ones below their header, in score order
    assert w.view.visualRect(w.model.index(3)).top() > button.geometry().bottom()
    QTest.mouseClick(button, Qt.LeftButton)
    assert not w.view.visualRect(w.model.index(3)).isValid()
    # no good match: said so, and the weaker ones are still offered
    _type_query(qtbot, w, "zzzz", enter=True)
    assert button.isVisible() and button.text() == f"▸  No good matches for “zzzz” — {n} weaker matches"
    assert w.pages.currentWidget() is w.results_page
    assert button.hasFocus()  # Enter led to the only thing there is
    QTest.keyClick(button, Qt.Key_Space)
    assert all(w.view.visualRect(w.model.index(r)).isValid() for r in range(n))
    assert w.view.hasFocus() and w.view.currentIndex().row() == 0


def test_newest_first_sorts_the_query_matches_in_date_sections(qtbot, tiny_model, window, photos, monkeypatch):
    _with_good(monkeypatch, lambda text: 4)
    w = window
    _indexed(qtbot, w, photos)
    _type_query(qtbot, w, "a photo of an animal")
    assert w.view.section_titles() == []
    w.bar.sort.setFocus()
    with qtbot.waitSignal(w.search_finished, timeout=20000):
        QTest.keyClick(w.bar.sort, Qt.Key_Down)  # "Newest first"
    _settle(qtbot, w)
    result = w.last_result
    assert w.bar.sort.currentData() == "date"
    assert result.request.text == "a photo of an animal" and result.request.sort == "date" and not result.browse
    dates = [it.date for it in w.model.items[:4]]
    assert dates == sorted(dates, reverse=True)
    expected = [title for _, title in date_sections(dates)]
    assert w.view.section_titles() == expected and len(expected) >= 2
    # the headers sit above their photos
    assert w.view.visualRect(w.model.index(0)).top() >= 40
    # browsing: the library by date, in sections too
    w.search.setFocus()
    with qtbot.waitSignal(w.search_finished, timeout=20000):
        QTest.keyClick(w.search, Qt.Key_Escape)
    _settle(qtbot, w)
    assert w.last_result.browse
    assert w.view.section_titles() == [t for _, t in date_sections([it.date for it in w.model.items])]
    assert "June 2027" in w.view.section_titles()  # the span is years: a header per month


def test_min_match_slider_spans_the_model_range_and_shows_its_value(qtbot, tiny_model, library_dir, photos, monkeypatch):
    create_app()
    first = MainWindow(str(library_dir), watch=False)
    qtbot.addWidget(first)
    first.show()
    _indexed(qtbot, first, photos)
    scores = sorted(it.score for it in first.service.search(SearchRequest("a horse")).items)
    first.close()
    # the model's calibrated range, as the service reports it (here: around the tiny model's scores)
    low, high = scores[0] - 0.05, scores[-1] + 0.05
    monkeypatch.setattr(LibraryService, "score_range", lambda self: (low, high), raising=False)
    w = MainWindow(str(library_dir), watch=False)
    qtbot.addWidget(w)
    w.resize(1200, 800)
    w.show()
    qtbot.waitUntil(lambda: w.model_ready, timeout=20000)
    _type_query(qtbot, w, "a horse")
    assert w.bar.strict_value.text() == "off" and w.last_result.request.min_score is None
    slider = w.bar.strictness
    slider.setFocus()
    target = (scores[len(scores) // 2] - low) / (high - low) * 100  # the median score, on the slider's scale
    with qtbot.waitSignal(w.search_finished, timeout=20000):
        while slider.value() < target:
            QTest.keyClick(slider, Qt.Key_Right)
    qtbot.waitUntil(lambda: not w.searcher.busy and w.last_result.request.min_score is not None, timeout=20000)
    _settle(qtbot, w)
    cut = low + (high - low) * slider.value() / 100
    assert w.last_result.request.min_score == pytest.approx(cut, abs=1e-4)
    assert w.bar.strict_value.text() == f"{cut:.2f}"
    assert 0 < w.model.rowCount() < len(scores)
    assert all(it.score >= cut - 1e-6 for it in w.model.items)
    w.close()


def _rect_of(w, name):
    row = next(i for i, it in enumerate(w.model.items) if it.name == name)
    return w.view.visualRect(w.model.index(row))


def test_justified_rows_keep_each_photo_shape_and_are_remembered(qtbot, tiny_model, window, photos, library_dir, monkeypatch):
    _with_good(monkeypatch, lambda text: 100)
    w = window
    _indexed(qtbot, w, photos)
    _type_query(qtbot, w, "a photo")  # best first: one section
    rocket = _rect_of(w, "rocket.jpg")
    assert rocket.width() == rocket.height()  # square cells first
    QTest.keyClick(w, Qt.Key_J, Qt.ControlModifier)  # View ▸ Justified Rows
    assert w.menu_actions["Justified Rows"].isChecked()
    pad = 2 * w.delegate.PAD
    for name in ("rocket.jpg", "coffee.jpg", "astronaut.jpg"):
        item = next(it for it in w.model.items if it.name == name)
        rect = _rect_of(w, name)
        assert (rect.width() - pad) / (rect.height() - pad) == pytest.approx(item.width / item.height, rel=0.08), name
    # every row but the last ends at the right edge
    rows = {}
    for r in range(w.model.rowCount()):
        rect = w.view.visualRect(w.model.index(r))
        rows.setdefault(rect.top(), []).append(rect)
    tops = sorted(rows)
    assert len(tops) >= 2
    right = max(r.right() for r in rows[tops[0]])
    assert all(max(r.right() for r in rows[t]) == right for t in tops[:-1])
    w.close()
    again = MainWindow(str(library_dir), watch=False)
    qtbot.addWidget(again)
    assert again.view.justified and again.menu_actions["Justified Rows"].isChecked()
    again.close()


def test_large_cells_get_sharp_thumbnails_not_an_upscaled_cache(qtbot, tiny_model, window, photos):
    w = window
    _indexed(qtbot, w, photos)
    _settle(qtbot, w)
    w.view.setFocus()
    while w.view.target_side < 330:
        QTest.keyClick(w, Qt.Key_Plus, Qt.ControlModifier)  # View ▸ Larger Thumbnails
    qtbot.waitUntil(lambda: w.delegate.side > 256, timeout=5000)
    need = round(w.delegate.side * w.view.devicePixelRatioF())
    w.view.viewport().repaint()
    visible = [w.model.items[r] for r in w.view.visible_rows()]
    qtbot.waitUntil(lambda: all((it.id, it.thumbnail) in w.loader.cache for it in visible), timeout=20000)
    for it in visible:
        image = w.loader.cache[(it.id, it.thumbnail)]
        assert min(image.width(), image.height()) >= min(need, it.width, it.height), it.name
