"""The detail view driven with real keys, clicks, wheel turns and drags: zoom (wheel, + / −, 1:1,
Fit), pan, small images at their own size, full resolution loaded when zooming in, and the
GPS position shown as a place name."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("PySide6")
pytest.importorskip("pytestqt")
pytest.importorskip("reverse_geocoder")

from PySide6.QtCore import QPoint, QPointF, Qt
from PySide6.QtGui import QWheelEvent
from PySide6.QtWidgets import QApplication, QToolButton

from tests.gui.helpers import index_folder as _indexed
from tests.gui.helpers import settle as _settle
from tests.photo_fixtures import gps_exif


def _photo(path, size, seed, when, exif_extra=None):
    rng = np.random.default_rng(seed)
    image = Image.fromarray(rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)).resize(size, Image.Resampling.BICUBIC)
    e = Image.Exif()
    e.get_ifd(0x8769).update({0x9003: when})
    for tag, value in (exif_extra or {}).items():
        e.get_ifd(tag).update(value)
    image.save(path, "JPEG", quality=90, exif=e)


@pytest.fixture
def detail_photos(tmp_path):
    folder = tmp_path / "Detail"
    folder.mkdir()
    _photo(folder / "big.jpg", (2400, 1600), 1, "2024:05:01 10:00:00", gps_exif(48.8566, 2.3522))  # newest: first
    _photo(folder / "tiny.jpg", (64, 48), 2, "2020:01:01 10:00:00")
    return folder


def _wheel(view, steps: int) -> None:
    vp = view.viewport()
    pos = QPointF(vp.width() / 2, vp.height() / 2)
    event = QWheelEvent(
        pos, QPointF(vp.mapToGlobal(pos.toPoint())), QPoint(0, 0), QPoint(0, 120 * steps),
        Qt.NoButton, Qt.NoModifier, Qt.NoScrollPhase, False,
    )  # fmt: skip
    QApplication.sendEvent(vp, event)


def _shown_width(view) -> float:
    """Screen pixels the photo takes on the view, as drawn."""
    return view.mapFromScene(view.item.sceneBoundingRect()).boundingRect().width()


def test_zoom_pan_and_place_in_the_detail_view(qtbot, tiny_model, window, detail_photos):
    w = window
    _indexed(qtbot, w, detail_photos)
    _settle(qtbot, w)
    assert [it.name for it in w.model.items] == ["big.jpg", "tiny.jpg"]
    w.search.setFocus()
    qtbot.keyClick(w.search, Qt.Key_Down)
    qtbot.keyClick(w.view, Qt.Key_Return)
    dialog = w.photo_actions.detail
    view = dialog.image
    qtbot.waitUntil(lambda: not view._image.isNull(), timeout=10000)

    # the place, not only the coordinates
    location = dialog.fields["Location"][1].text()
    assert "Paris" in location and "France" in location and "48.85660, 2.35220" in location

    # opens fitted: the whole photo in the view, scaled down
    fit = view.fit_zoom()
    assert fit < 1.0 and view.zoom == pytest.approx(fit)
    assert _shown_width(view) <= view.viewport().width() + 1
    assert dialog.zoom_label.text() == f"{fit * 100:.0f} %"
    assert view._image.width() < 2400  # a screen-sized image first

    # + zooms in one step, − back
    qtbot.keyClick(dialog, Qt.Key_Plus)
    assert view.zoom == pytest.approx(fit * 1.25)
    qtbot.mouseClick(dialog.findChild(QToolButton, "zoom-out"), Qt.LeftButton)
    assert view.zoom == pytest.approx(fit)

    # the wheel zooms under the pointer
    _wheel(view, 2)
    assert view.zoom == pytest.approx(fit * 1.25**2)
    _wheel(view, -1)
    assert view.zoom == pytest.approx(fit * 1.25)

    # 1:1: one photo pixel per screen pixel, the full resolution loaded for it
    qtbot.mouseClick(dialog.findChild(QToolButton, "zoom-1:1"), Qt.LeftButton)
    assert view.zoom == pytest.approx(1.0) and dialog.zoom_label.text() == "100 %"
    qtbot.waitUntil(lambda: view._image.width() == 2400, timeout=10000)
    assert _shown_width(view) == pytest.approx(2400 / view.devicePixelRatioF(), abs=2)

    # drag pans
    h, v = view.horizontalScrollBar(), view.verticalScrollBar()
    before = (h.value(), v.value())
    vp = view.viewport()
    start = QPoint(vp.width() // 2, vp.height() // 2)
    qtbot.mousePress(vp, Qt.LeftButton, pos=start)
    for step in range(1, 6):
        qtbot.mouseMove(vp, start + QPoint(-30 * step, -20 * step))
    qtbot.mouseRelease(vp, Qt.LeftButton, pos=start + QPoint(-150, -100))
    assert h.value() == before[0] + 150 and v.value() == before[1] + 100

    # Fit: the whole photo again, and it stays fitted when the window is resized
    qtbot.mouseClick(dialog.findChild(QToolButton, "zoom-fit"), Qt.LeftButton)
    assert view.zoom == pytest.approx(view.fit_zoom())
    dialog.resize(dialog.width() - 200, dialog.height() - 100)
    qtbot.waitUntil(lambda: view.zoom == pytest.approx(view.fit_zoom()), timeout=3000)
    assert _shown_width(view) <= view.viewport().width() + 1

    # a small image is shown at its own size, never blurred up
    qtbot.keyClick(dialog, Qt.Key_Right)
    assert dialog.item.name == "tiny.jpg"
    qtbot.waitUntil(lambda: not view._image.isNull() and view._image.width() == 64, timeout=10000)
    assert view.zoom == pytest.approx(1.0)
    assert _shown_width(view) == pytest.approx(64 / view.devicePixelRatioF(), abs=1)
    assert dialog.fields["Location"][1].text() == "" and not dialog.fields["Location"][1].isVisible()
    # zooming past 1:1 draws sharp pixels, not a smooth blur
    qtbot.keyClick(dialog, Qt.Key_Plus)
    assert view.zoom == pytest.approx(1.25)
    assert view.item.transformationMode() == Qt.FastTransformation
    qtbot.keyClick(dialog, Qt.Key_0)
    assert view.zoom == pytest.approx(1.0) and view.item.transformationMode() == Qt.SmoothTransformation
    dialog.close()
