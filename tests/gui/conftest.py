"""Fixtures shared by the window tests: real photographs from scikit-image (with camera and date EXIF,
a near-copy and a corrupt file) and the main window, shown offscreen on a fresh library."""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.gui.helpers import REAL
from tests.photo_fixtures import camera_exif


@pytest.fixture(scope="session")
def real_photos(tmp_path_factory) -> Path:
    """Real photographs from scikit-image with camera and date EXIF, a near-copy and a corrupt file."""
    import skimage.data

    folder = tmp_path_factory.mktemp("photos")
    for i, name in enumerate(REAL):
        a = np.asarray(getattr(skimage.data, name)())
        if a.dtype == bool:
            a = a.astype(np.uint8) * 255
        image = Image.fromarray(a).convert("RGB")
        model = "Alpha 1" if i % 2 == 0 else "Beta 2"
        e = Image.Exif()
        for tag, value in camera_exif(model, dt.datetime(2020 + i, 6, 1, 12, 0)).items():
            if isinstance(value, dict):
                e.get_ifd(tag).update(value)
            else:
                e[tag] = value
        image.save(folder / f"{name}.jpg", "JPEG", quality=90, exif=e)
    # a near-duplicate of the cat: smaller and re-compressed
    cat = Image.open(folder / "chelsea.jpg")
    cat.resize((cat.width // 2, cat.height // 2)).save(folder / "chelsea-small.jpg", "JPEG", quality=70)
    (folder / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 this is not really a jpeg")
    return folder


@pytest.fixture
def photos(real_photos, tmp_path) -> Path:
    folder = tmp_path / "Photos"
    shutil.copytree(real_photos, folder)
    return folder


@pytest.fixture
def window(qtbot, library_dir):
    from PySide6.QtGui import QGuiApplication

    from desktop_app.gui import create_app
    from desktop_app.gui.main_window import MainWindow

    create_app()
    _no_ocr(library_dir)
    w = MainWindow(str(library_dir), watch=False)
    qtbot.addWidget(w)
    w.resize(1200, 800)
    w.show()
    w.activateWindow()
    qtbot.waitUntil(w.isActiveWindow, timeout=5000)
    yield w
    w.close()
    # Qt's offscreen platform crashes at interpreter exit if the clipboard still owns data a test put there.
    QGuiApplication.clipboard().clear()



def _no_ocr(library_dir) -> None:
    """New libraries read the text in their photos (seconds a photo on a small machine): the window
    tests switch it off as the library panel's checkbox does; tests/gui/test_ocr_gui.py keeps it on."""
    from desktop_app.services import LibraryService

    with LibraryService(library_dir) as service:
        service.set_ocr_enabled(False)
