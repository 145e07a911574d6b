"""The first run never sends the user to a terminal: the starter model installs with one click
(progress, cancel), a missing export extra is named with the exact install command, one dialog
imports a pack folder or a .zip, and the SigLIP download asks for its tokenizer folder."""

from __future__ import annotations

import shutil
import sys

import pytest

pytest.importorskip("PySide6")
pytest.importorskip("pytestqt")

from PySide6.QtCore import Qt
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import QDialogButtonBox, QFileDialog, QListView

from desktop_app import paths
from desktop_app.services import models as model_service

COMMAND_WORDS = ("pixfind models", "pixfind status", "--tokenizer", "terminal")


def _welcome(qtbot, w):
    qtbot.waitUntil(lambda: w.model_problem is not None, timeout=10000)
    qtbot.waitUntil(lambda: "Welcome" in w.message.title.text(), timeout=5000)
    return w.message


def _click(qtbot, page, label):
    qtbot.waitUntil(lambda: page.button(label) is not None and page.button(label).isVisible(), timeout=5000)
    qtbot.mouseClick(page.button(label), Qt.LeftButton)


def _pick_in_pack_dialog(qtbot, dialog, name):
    """Click an entry of the pack dialog's list, then Import: what a user does."""
    view = dialog.findChild(QListView, "listView")

    def index():
        model, root = view.model(), view.rootIndex()
        return next(
            (model.index(r, 0, root) for r in range(model.rowCount(root)) if model.index(r, 0, root).data() == name), None
        )

    qtbot.waitUntil(lambda: index() is not None, timeout=5000)
    qtbot.mouseClick(view.viewport(), Qt.LeftButton, pos=view.visualRect(index()).center())
    button = dialog.findChild(QDialogButtonBox).button(QDialogButtonBox.Open)
    qtbot.waitUntil(button.isEnabled, timeout=2000)
    assert button.text() == "Import"
    qtbot.mouseClick(button, Qt.LeftButton)


def test_welcome_offers_the_starter_model_and_no_commands(qtbot, window):
    page = _welcome(qtbot, window)
    labels = [b.text() for b in page._buttons]
    assert labels[0] == "Install the starter model" and "Import a model pack…" in labels
    text = page.text.text()
    assert not any(word in text for word in COMMAND_WORDS), text


def test_missing_export_extra_names_the_exact_install(qtbot, window, monkeypatch):
    monkeypatch.setattr(model_service, "export_extra_missing", lambda: "torch")  # this machine has it: pretend not
    page = _welcome(qtbot, window)
    text = page.text.text()
    assert "torch is missing" in text and f'"{sys.executable}" -m pip install "pixfind[export]"' in text
    assert page.button("Install the starter model") is None
    assert [b.text() for b in page._buttons][0] == "Import a model pack…"
    _click(qtbot, page, "Copy the install command")
    assert QGuiApplication.clipboard().text() == f'"{sys.executable}" -m pip install "pixfind[export]"'
    QGuiApplication.clipboard().clear()


def test_import_a_zip_pack_in_one_dialog(qtbot, window, tiny_pack, tmp_path):
    shutil.make_archive(str(tmp_path / "packs" / "tiny"), "zip", tiny_pack)
    page = _welcome(qtbot, window)
    _click(qtbot, page, "Import a model pack…")
    dialog = window.pack_dialog
    assert dialog.isVisible() and dialog.testOption(QFileDialog.DontUseNativeDialog)
    assert "folder" in dialog.windowTitle() and ".zip" in dialog.windowTitle()
    dialog.setDirectory(str(tmp_path / "packs"))
    _pick_in_pack_dialog(qtbot, dialog, "tiny.zip")
    qtbot.waitUntil(lambda: window.model_ready, timeout=30000)
    assert window.status_area.model_button.text() == "Model: tiny"
    qtbot.waitUntil(lambda: "Add your photos" in window.message.title.text(), timeout=5000)


def test_import_a_pack_folder_in_the_same_dialog(qtbot, window, tiny_pack, tmp_path):
    shutil.copytree(tiny_pack, tmp_path / "packs" / "my-pack")
    (tmp_path / "packs" / "not-a-pack").mkdir()
    page = _welcome(qtbot, window)
    _click(qtbot, page, "Import a model pack…")
    dialog = window.pack_dialog
    dialog.setDirectory(str(tmp_path / "packs"))
    # an ordinary folder is opened, not imported
    _pick_in_pack_dialog(qtbot, dialog, "not-a-pack")
    assert dialog.isVisible() and dialog.directory().absolutePath().endswith("not-a-pack")
    assert not window.model_ready
    dialog.setDirectory(str(tmp_path / "packs"))
    _pick_in_pack_dialog(qtbot, dialog, "my-pack")
    assert not dialog.isVisible()
    qtbot.waitUntil(lambda: window.model_ready, timeout=30000)
    assert window.status_area.model_button.text() == "Model: tiny"  # the name in its pack.json


@pytest.mark.skipif(model_service.export_extra_missing() is not None, reason="the starter model needs the export extra")
def test_install_the_starter_model_with_one_click_then_cancel(qtbot, window):
    page = _welcome(qtbot, window)
    _click(qtbot, page, "Install the starter model")
    assert page.busy.isVisible() and page.cancel_button.isVisible()
    assert not any(b.isVisible() for b in page._buttons)  # no second click while it runs
    # the build reports its steps
    qtbot.waitUntil(lambda: page.progress.value() >= 1 and "networks" in page.progress_text.text(), timeout=120000)
    # a page refresh in the meantime keeps the progress on screen
    window._update_page()
    assert page.busy.isVisible() and not any(b.isVisible() for b in page._buttons)
    qtbot.mouseClick(page.cancel_button, Qt.LeftButton)
    assert page.cancel_button.text() == "Cancelling…" and not page.cancel_button.isEnabled()
    qtbot.waitUntil(lambda: not window.starter_install.running, timeout=300000)
    assert "cancelled" in page.text.text()
    assert not page.busy.isVisible()
    qtbot.waitUntil(
        lambda: page.button("Install the starter model") is not None and page.button("Install the starter model").isVisible(),
        timeout=5000,
    )
    assert not window.model_ready and model_service.installed() == []
    left = list(paths.models_dir().iterdir()) if paths.models_dir().exists() else []
    assert [p.name for p in left if p.name != "default"] == [], "a half-built pack was left behind"


def test_siglip_download_asks_for_its_tokenizer_and_retries(qtbot, window, tmp_path, monkeypatch):
    from tests.http_server import serving

    tokenizer = tmp_path / "siglip-tokenizer"
    tokenizer.mkdir()
    (tokenizer / "tokenizer.json").write_text("{}")
    asked = []

    def choose(parent, caption, start=""):
        asked.append(caption)
        return str(tokenizer)

    monkeypatch.setattr(QFileDialog, "getExistingDirectory", staticmethod(choose))  # the OS folder picker
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "no-hf-cache"))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    page = _welcome(qtbot, window)
    _click(qtbot, page, "Download a model…")
    dialog = window.models_dialog
    dialog.available.setCurrentItem(dialog.available_row("mcip-siglip-so400m-384"))
    with serving(b"<html>not a checkpoint</html>", "/MCIP-ViT-SO400M-14-SigLIP-384.pth") as server:
        monkeypatch.setenv("PIXFIND_MODEL_MIRROR", server.url.rsplit("/", 1)[0])
        qtbot.mouseClick(dialog.pull_button, Qt.LeftButton)
        # asked for the tokenizer folder, then pulled again with it: the download went ahead
        qtbot.waitUntil(lambda: bool(asked), timeout=30000)
        assert "timm/ViT-B-16-SigLIP" in asked[0] and "tokenizer.json" in asked[0]
        qtbot.waitUntil(lambda: dialog.pull_button.isEnabled() and len(server.gets()) >= 1, timeout=60000)
        qtbot.waitUntil(lambda: str(tokenizer) in dialog.pull_status.text(), timeout=120000)
    # the export went on to read the folder chosen (a stand-in tokenizer.json, so it stops there)
    assert "cannot load it as the Hugging Face tokenizer" in dialog.pull_status.text()
    assert "--" not in dialog.pull_status.text()
    assert window.settings.value("tokenizer_dir") == str(tokenizer)

    # no folder chosen: the window says what to do, in its own words
    (tokenizer / "tokenizer.json").unlink()  # the remembered folder no longer holds a tokenizer
    monkeypatch.setattr(QFileDialog, "getExistingDirectory", staticmethod(lambda *a, **k: ""))
    qtbot.mouseClick(dialog.pull_button, Qt.LeftButton)
    qtbot.waitUntil(lambda: "needs the tokenizer of timm/ViT-B-16-SigLIP" in dialog.pull_status.text(), timeout=30000)
    text = dialog.pull_status.text()
    assert "choose that folder" in text and "--" not in text and "pixfind " not in text
    dialog.close()
