"""The Duplicates dialog through its real widgets: the calibrated default, honest groups, pre-marking
only in certain groups, and the trash button that asks first."""

from __future__ import annotations

import os

import pytest
from PIL import Image

pytest.importorskip("PySide6")
pytest.importorskip("pytestqt")

from PySide6.QtCore import Qt
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QMessageBox

from tests.gui.helpers import click as _click
from tests.gui.helpers import index_folder as _indexed


def test_dialog_uses_the_calibrated_default_and_pre_marks_only_certain_copies(qtbot, tiny_model, window, photos):
    # a second, uncertain copy: the rocket turned by two degrees
    with Image.open(photos / "rocket.jpg") as im:
        im.rotate(2, resample=Image.Resampling.BICUBIC).save(photos / "rocket-turned.jpg", quality=90)
    w = window
    _indexed(qtbot, w, photos)
    w.show_duplicates()
    dialog = w.duplicates_dialog
    default = w.service.duplicate_threshold()
    assert default == w.service.calibration()["duplicate_threshold"]
    qtbot.waitUntil(lambda: dialog.status.text() != "Comparing photos…", timeout=20000)
    assert dialog.threshold.value() == pytest.approx(default, abs=1e-4)  # the model's, not a fixed 0.95
    assert f"{default:.4f}" in dialog.calibration.text()

    # The user lowers the similarity to 0.5 by typing: the weak model lets everything through,
    # the pictures themselves keep unrelated photos apart.
    dialog.threshold.setFocus()
    dialog.threshold.selectAll()
    QTest.keyClicks(dialog.threshold, "0.5000")
    QTest.keyClick(dialog.threshold, Qt.Key_Return)
    qtbot.waitUntil(lambda: dialog.status.text() != "Comparing photos…" and len(dialog.groups) == 2, timeout=20000)
    groups = {os.path.basename(g.members[0].item.path): g for g in dialog.groups}
    assert sorted(groups) == ["chelsea.jpg", "rocket.jpg"]
    assert [m.item.name for m in groups["chelsea.jpg"].members] == ["chelsea.jpg", "chelsea-small.jpg"]
    assert groups["chelsea.jpg"].confident and not groups["rocket.jpg"].confident
    assert [os.path.basename(p) for p in dialog.marked()] == ["chelsea-small.jpg"]  # nothing of the uncertain group
    ticks = {item.name: check for check, item in dialog.checks}
    assert ticks["rocket-turned.jpg"].isChecked() and ticks["rocket.jpg"].isChecked()

    # the trash button still asks first, naming one photo
    _click(qtbot, dialog.trash_button)
    qtbot.waitUntil(lambda: dialog.confirmation is not None and dialog.confirmation.isVisible(), timeout=5000)
    assert dialog.confirmation.text().startswith("Move 1 photo (")
    _click(qtbot, dialog.confirmation.button(QMessageBox.Cancel))
    qtbot.waitUntil(lambda: dialog.confirmation is None, timeout=5000)
    assert (photos / "chelsea-small.jpg").exists()
    dialog.close()
