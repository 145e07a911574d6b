"""The filter row and the words/image balance through the real widgets: the date presets, the custom
date range picked in its calendars, and the balance slider moved with the keyboard to each end."""

from __future__ import annotations

import datetime as dt
import itertools

import pytest

pytest.importorskip("PySide6")
pytest.importorskip("pytestqt")

from PySide6.QtCore import QDate, QPoint, Qt
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QFileDialog, QTableView

from tests.gui.helpers import camera_exif as _exif
from tests.gui.helpers import index_folder as _indexed
from tests.gui.helpers import settle as _settle
from tests.library_helpers import make_photo


def _settled(qtbot, w) -> None:
    """The search for what the widgets say now has come back in full (none pending, none in flight)."""

    def done():
        s = w.searcher
        return not s.debounce.isActive() and not s.busy and w.last_result is not None and w.last_result.complete

    qtbot.waitUntil(done, timeout=20000)
    _settle(qtbot, w)
    qtbot.waitUntil(done, timeout=20000)


def _shown(w) -> set[str]:
    return {it.name for it in w.model.items}


def _choose_with_keys(qtbot, w, combo, text: str) -> None:
    """Focus the combo and press Up/Down until it shows ``text``, as a keyboard user does."""
    target = combo.findText(text)
    assert target >= 0, text
    combo.setFocus()
    for _ in range(combo.count()):
        if combo.currentIndex() == target:
            break
        QTest.keyClick(combo, Qt.Key_Down if combo.currentIndex() < target else Qt.Key_Up)
    assert combo.currentText() == text
    _settled(qtbot, w)


def _dated_photo(folder, name: str, when: dt.datetime, seed: int) -> None:
    make_photo(folder / name, seed=seed, exif=_exif("Alpha 1", when))


# ---------------------------------------------------------------------- the date presets


def test_last_30_days_and_last_7_days_presets(qtbot, tiny_model, window, tmp_path):
    w = window
    now = dt.datetime.now().replace(microsecond=0)
    folder = tmp_path / "Dated"
    for i, days in enumerate((5, 20, 40, 200)):
        _dated_photo(folder, f"{days}-days-ago.jpg", now - dt.timedelta(days=days), seed=i)
    _indexed(qtbot, w, folder)
    _settled(qtbot, w)
    assert w.last_result.browse and len(_shown(w)) == 4

    _choose_with_keys(qtbot, w, w.bar.date_filter, "Last 30 days")
    assert _shown(w) == {"5-days-ago.jpg", "20-days-ago.jpg"}
    _choose_with_keys(qtbot, w, w.bar.date_filter, "Last 7 days")
    assert _shown(w) == {"5-days-ago.jpg"}
    _choose_with_keys(qtbot, w, w.bar.date_filter, "Last 12 months")
    assert _shown(w) == {"5-days-ago.jpg", "20-days-ago.jpg", "40-days-ago.jpg", "200-days-ago.jpg"}
    _choose_with_keys(qtbot, w, w.bar.date_filter, "Last 30 days")  # back up the list
    assert _shown(w) == {"5-days-ago.jpg", "20-days-ago.jpg"}
    # with a query too, not only while browsing
    w.search.setFocus()
    QTest.keyClicks(w.search, "a photo")
    QTest.keyClick(w.search, Qt.Key_Return)
    _settled(qtbot, w)
    assert not w.last_result.browse and _shown(w) == {"5-days-ago.jpg", "20-days-ago.jpg"}


# ---------------------------------------------------------------------- the custom range


def _pick_in_calendar(qtbot, edit, day: QDate) -> None:
    """Open the date field's calendar with a click on its arrow, walk to ``day`` with the keys, press Enter."""
    QTest.mouseClick(edit, Qt.LeftButton, pos=QPoint(edit.width() - 6, edit.height() // 2))
    calendar = edit.calendarWidget()
    qtbot.waitUntil(calendar.isVisible, timeout=5000)
    grid = calendar.findChild(QTableView)
    for _ in range(400):
        at = calendar.selectedDate()
        if at == day:
            break
        months = (day.year() - at.year()) * 12 + day.month() - at.month()
        if months:
            QTest.keyClick(grid, Qt.Key_PageDown if months > 0 else Qt.Key_PageUp)
        else:
            QTest.keyClick(grid, Qt.Key_Right if at < day else Qt.Key_Left)
    assert calendar.selectedDate() == day
    QTest.keyClick(grid, Qt.Key_Return)
    qtbot.waitUntil(lambda: not calendar.isVisible(), timeout=5000)
    assert edit.date() == day


def test_custom_range_includes_its_first_and_its_last_day(qtbot, tiny_model, window, tmp_path):
    w = window
    today = dt.date.today()
    first, last = today - dt.timedelta(days=20), today - dt.timedelta(days=10)

    def at(day: dt.date, hour: int, minute: int = 0) -> dt.datetime:
        return dt.datetime.combine(day, dt.time(hour, minute))

    folder = tmp_path / "Dated"
    _dated_photo(folder, "evening-before.jpg", at(first - dt.timedelta(days=1), 20), seed=1)
    _dated_photo(folder, "first-day.jpg", at(first, 8), seed=2)
    _dated_photo(folder, "middle.jpg", at(first + dt.timedelta(days=5), 12), seed=3)
    _dated_photo(folder, "last-day-late.jpg", at(last, 23, 30), seed=4)
    _dated_photo(folder, "morning-after.jpg", at(last + dt.timedelta(days=1), 7), seed=5)
    _indexed(qtbot, w, folder)
    _settled(qtbot, w)
    assert len(_shown(w)) == 5

    _choose_with_keys(qtbot, w, w.bar.date_filter, "Custom range…")
    assert w.bar.date_from.isVisible() and w.bar.date_to.isVisible()
    _pick_in_calendar(qtbot, w.bar.date_from, QDate(first.year, first.month, first.day))
    _pick_in_calendar(qtbot, w.bar.date_to, QDate(last.year, last.month, last.day))
    _settled(qtbot, w)
    assert _shown(w) == {"first-day.jpg", "middle.jpg", "last-day-late.jpg"}

    # a one-day range: that day, all of it
    _pick_in_calendar(qtbot, w.bar.date_from, QDate(last.year, last.month, last.day))
    _settled(qtbot, w)
    assert _shown(w) == {"last-day-late.jpg"}


# ---------------------------------------------------------------------- the words/image balance

WORDS = "a rocket standing on the launch pad"
EXAMPLE = "coffee.jpg"
# At the slider's ends the other side keeps 2 % of the weight (query.balance clamps the share to
# 0.02..0.98, so that neither vanishes). The query is then q = (0.98·t + 0.02·i)/|…| for the unit
# vectors t of the words and i of the image, so:
# - the ranking is exactly the ranking by 0.98·(words-only score) + 0.02·(image-only score): the
#   norm is the same for every photo;
# - each score is within 2·0.04/(1.96 − 0.04) ≈ 0.042 of the words-only score (triangle inequality).
END_SHARE = 0.02
NEAR = 0.042 + 0.003  # and float32 rounding in the index


def _scores(w) -> dict[str, float]:
    return {it.name: it.score for it in w.model.items}


def _type_query(qtbot, w, text: str) -> None:
    w.search.setFocus()
    w.search.selectAll()
    QTest.keyClick(w.search, Qt.Key_Delete)
    QTest.keyClicks(w.search, text)
    _settled(qtbot, w)
    assert w.last_result.request.text == text


def _mixed(words: dict[str, float], image: dict[str, float], image_share: float) -> dict[str, float]:
    return {n: (1 - image_share) * words[n] + image_share * image[n] for n in words}


def _out_of_order(ranking: list[str], expected: dict[str, float]) -> list[tuple[str, str]]:
    """Pairs that ``ranking`` shows in the other order than ``expected`` says (ties of 1e-4 left alone)."""
    pos = {name: i for i, name in enumerate(ranking)}
    return [(a, b) for a, b in itertools.permutations(expected, 2) if expected[a] > expected[b] + 1e-4 and pos[a] > pos[b]]


def test_balance_slider_ends_rank_by_the_words_and_by_the_image(qtbot, tiny_model, window, photos, monkeypatch):
    w = window
    _indexed(qtbot, w, photos)
    _settled(qtbot, w)
    # the two one-sided searches, as a user would run them
    _type_query(qtbot, w, WORDS)
    words = _scores(w)
    _type_query(qtbot, w, "")
    monkeypatch.setattr(QFileDialog, "getOpenFileName", staticmethod(lambda *a, **k: (str(photos / EXAMPLE), "")))
    QTest.mouseClick(w.bar.image_button, Qt.LeftButton)
    _settled(qtbot, w)
    assert w.bar.examples == [str(photos / EXAMPLE)]
    image = _scores(w)
    assert set(words) == set(image) and len(words) >= 8
    assert image[EXAMPLE] == pytest.approx(1.0, abs=1e-4)
    toward_words, toward_image = _mixed(words, image, END_SHARE), _mixed(words, image, 1 - END_SHARE)
    # the setup can tell the ends apart, by score and by order
    assert max(abs(words[n] - image[n]) for n in words) > 2 * NEAR
    assert _out_of_order(sorted(toward_image, key=toward_image.get, reverse=True), toward_words)

    # words and the example together; the slider is shown and enabled
    _type_query(qtbot, w, WORDS)
    assert w.last_result.request.images == [str(photos / EXAMPLE)]
    assert w.bar.balance_row.isVisible() and w.bar.balance.isEnabled()

    w.bar.balance.setFocus()
    QTest.keyClick(w.bar.balance, Qt.Key_Home)  # all the way to "Words"
    assert w.bar.balance.value() == w.bar.balance.minimum()
    _settled(qtbot, w)
    assert _out_of_order([it.name for it in w.model.items], toward_words) == []
    assert max(abs(score - words[n]) for n, score in _scores(w).items()) <= NEAR

    QTest.keyClick(w.bar.balance, Qt.Key_End)  # all the way to "Image"
    assert w.bar.balance.value() == w.bar.balance.maximum()
    _settled(qtbot, w)
    assert _out_of_order([it.name for it in w.model.items], toward_image) == []
    assert max(abs(score - image[n]) for n, score in _scores(w).items()) <= NEAR
    assert w.model.items[0].name == EXAMPLE

    # back to the middle with Page Down: the words and the image count as given, one each
    while w.bar.balance.value() > 50:
        QTest.keyClick(w.bar.balance, Qt.Key_PageDown)
    assert w.bar.balance.value() == 50
    _settled(qtbot, w)
    assert _out_of_order([it.name for it in w.model.items], _mixed(words, image, 0.5)) == []
