"""The models dialog's "Available to download" tab, driven like a user would: the registry shows
the same facts as `pixfind models list --available`; a registry model downloads from a real local
Hub server (HF_ENDPOINT) with progress, is cancelled midway leaving nothing installed, downloads
again and is made the active model; an `hf:` reference is checked before any download; a model
published only as a checkpoint says it needs PyTorch when the export extra is missing."""

from __future__ import annotations

import contextlib
import os
import re
import subprocess
import sys
import threading
from http.server import ThreadingHTTPServer
from pathlib import Path

import pytest

pytest.importorskip("PySide6")
pytest.importorskip("pytestqt")

from PySide6.QtCore import Qt

from desktop_app import model_store, paths
from desktop_app.gui.models_dialog import AVAILABLE_COLUMNS, NEEDS_EXPORT
from desktop_app.services import models as model_service
from tests.hub_server import HubHandler, HubState, Repo, serving_hub

PIXFIND = Path(sys.executable).with_name("pixfind")
REGISTRY_MODEL = "immich-vit-b-32-openai"
REGISTRY_REPO = "immich-app/ViT-B-32__openai"  # its hub_repo in desktop_app/known_models.py
COLUMN = {name: i for i, name in enumerate(AVAILABLE_COLUMNS)}


def pack_repo(pack: Path, repo_id: str) -> Repo:
    return Repo(repo_id, {p.name: p.read_bytes() for p in pack.iterdir() if p.is_file() and not p.name.startswith(".")})


@pytest.fixture
def hub_endpoint(monkeypatch):
    """Point the Hub client at a local server, as HF_ENDPOINT does for a user's mirror."""
    for var in ("HF_HOME", "HF_HUB_CACHE", "HF_HUB_OFFLINE"):
        monkeypatch.delenv(var, raising=False)  # pixfind's own cache, inside this test's PIXFIND_HOME
    monkeypatch.setenv("HF_HUB_DISABLE_TELEMETRY", "1")

    def point_at(hub) -> None:
        from huggingface_hub import constants

        monkeypatch.setenv("HF_ENDPOINT", hub.url)
        # huggingface_hub reads HF_ENDPOINT once, when it is first imported, and an earlier test in this
        # process may have imported it: its two settings derived from the variable are set the same way.
        monkeypatch.setattr(constants, "ENDPOINT", hub.url)
        monkeypatch.setattr(constants, "HUGGINGFACE_CO_URL_TEMPLATE", hub.url + "/{repo_id}/resolve/{revision}/{filename}")

    return point_at


class GatedHub(HubHandler):
    """tests.hub_server's Hub, holding the first download of one file until the test opens the gate:
    a transfer caught in flight whatever the machine's speed (no sleeps, no timing)."""

    def resolve(self, repo_id, revision, path, head, entry):
        state = self.state
        if not head and path == state.gated and not state.gate.is_set():
            state.held.set()
            state.gate.wait(60)
        return super().resolve(repo_id, revision, path, head, entry)


@contextlib.contextmanager
def serving_gated_hub(repo: Repo, gated: str):
    state = HubState()
    state.add(repo)
    state.gated, state.gate, state.held = gated, threading.Event(), threading.Event()
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), GatedHub)
    httpd.daemon_threads = True
    httpd.state = state
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    state.url = f"http://127.0.0.1:{httpd.server_address[1]}"
    try:
        yield state
    finally:
        state.gate.set()
        httpd.shutdown()
        httpd.server_close()
        thread.join(5)


def open_models_dialog(qtbot, window):
    """The status bar's model button, as a user opens the dialog."""
    qtbot.waitUntil(lambda: window.model_ready or window.model_problem is not None, timeout=20000)
    qtbot.mouseClick(window.status_area.model_button, Qt.LeftButton)
    dialog = window.models_dialog
    qtbot.waitUntil(dialog.isVisible, timeout=5000)
    return dialog


def show_available_tab(qtbot, dialog) -> None:
    bar = dialog.tabs.tabBar()
    index = next(i for i in range(bar.count()) if bar.tabText(i) == "Available to download")
    qtbot.mouseClick(bar, Qt.LeftButton, pos=bar.tabRect(index).center())
    assert dialog.tabs.currentIndex() == index


def click_row(qtbot, dialog, name: str):
    item = dialog.available_row(name)
    assert item is not None, name
    view = dialog.available
    view.scrollToItem(item)
    qtbot.mouseClick(view.viewport(), Qt.LeftButton, pos=view.visualItemRect(item).center())
    assert view.currentItem() is item and item.isSelected()
    return item


def cells(item) -> dict[str, str]:
    return {name: item.text(i) for name, i in COLUMN.items()}


def installed_names() -> list[str]:
    root = paths.models_dir()
    return sorted(p.name for p in root.iterdir() if not p.name.startswith(".") and p.name != "default") if root.is_dir() else []


def leftovers() -> list[str]:
    root = paths.models_dir()
    return sorted(p.name for p in root.iterdir() if p.name.startswith(".install-")) if root.is_dir() else []


def cli_available() -> dict[str, dict]:
    """`pixfind models list --available`, read back into the dialog's columns (one block per model:
    a line of figures joined by " · ", then its description)."""
    env = {**os.environ, "COLUMNS": "250"}
    proc = subprocess.run([str(PIXFIND), "models", "list", "--available"], env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    rows = {}
    for i, line in enumerate(lines):
        m = re.fullmatch(r"(\S+)   (.+)", line)
        if not m:
            continue
        figures = m.group(2).split(" · ")
        row = {"Name": m.group(1), "description": lines[i + 1].strip(), "Images/s here": "", "State": ""}
        for f in figures:
            if f == "installed":
                row["State"] = "installed"
            elif f.endswith("-d") or f == "dim unknown":
                row["Dim"] = f.removesuffix("-d").replace("dim unknown", "unknown")
            elif f.startswith("download"):
                row["Download"] = "unknown" if f == "download size unknown" else f.removeprefix("download ")
            elif f.startswith("languages: "):
                row["Languages"] = f.removeprefix("languages: ")
            elif f.startswith("licence: "):
                row["Licence"] = f.removeprefix("licence: ")
            elif f.startswith("from "):
                sources, needs = f.removeprefix("from ").partition(" (needs pixfind[export])")[:2]
                row["From"] = sources
                row["State"] = "needs PyTorch" if needs else row["State"]
            elif f.endswith(" images/s here"):
                row["Images/s here"] = f.removesuffix(" images/s here")
        rows[row["Name"]] = row
    return rows


# ---------------------------------------------------------------------- the same facts as the command line


def test_available_tab_shows_what_models_list_available_prints(qtbot, tiny_model, window, tiny_pack):
    # the window searches with tiny; a registry name is installed too (from the tiny pack): its state
    # and the images/s measured when it was installed show
    model_service.use("tiny")
    model_store.install(tiny_pack, REGISTRY_MODEL)
    dialog = open_models_dialog(qtbot, window)
    assert window.status_area.model_button.text() == "Model: tiny"
    show_available_tab(qtbot, dialog)
    printed = cli_available()
    shown = [dialog.available.topLevelItem(i) for i in range(dialog.available.topLevelItemCount())]
    assert [it.text(COLUMN["Name"]) for it in shown] == list(printed), "the same models, in the same order"
    for item in shown:
        want = printed[item.text(COLUMN["Name"])]
        assert cells(item) == {k: v for k, v in want.items() if k != "description"}
        assert item.toolTip(COLUMN["Name"]).startswith(want["description"])
    row = cells(dialog.available_row(REGISTRY_MODEL))
    assert row["State"] == "installed" and float(row["Images/s here"]) > 0
    assert row["Download"] != "unknown" and row["Dim"] == "512"  # the registry's figures, not the tiny pack's
    # selecting it: installed, so nothing to download, and one click makes it the active model
    click_row(qtbot, dialog, REGISTRY_MODEL)
    assert not dialog.pull_button.isEnabled() and dialog.use_available_button.isEnabled()
    qtbot.mouseClick(dialog.use_available_button, Qt.LeftButton)
    qtbot.waitUntil(lambda: window.model_ready, timeout=30000)
    assert window.status_area.model_button.text() == f"Model: {REGISTRY_MODEL}"
    assert cells(dialog.available_row(REGISTRY_MODEL))["State"] == "in use"
    dialog.close()


def test_models_published_only_as_checkpoints_say_they_need_pytorch(qtbot, window, monkeypatch):
    # a plain install: the export extra's torch cannot be imported (find_spec sees None, as for a missing package)
    monkeypatch.setitem(sys.modules, "torch", None)
    assert model_service.export_extra_missing() == "torch"
    dialog = open_models_dialog(qtbot, window)
    assert dialog.tabs.tabText(dialog.tabs.currentIndex()) == "Available to download"  # nothing installed yet
    checkpoint_only = [m.name for m in model_service.known() if m.sources == ["checkpoint"]]
    assert checkpoint_only, "the registry lists the MCIP checkpoints"
    for name in checkpoint_only:
        item = click_row(qtbot, dialog, name)
        assert item.text(COLUMN["State"]) == "needs PyTorch"
        assert NEEDS_EXPORT in dialog.available_detail.text() and NEEDS_EXPORT == "needs PyTorch: pip install pixfind[export]"
        assert not dialog.pull_button.isEnabled()
    click_row(qtbot, dialog, REGISTRY_MODEL)  # a Hub model needs no PyTorch
    assert dialog.pull_button.isEnabled() and "PyTorch" not in dialog.available_detail.text()
    dialog.close()


# ---------------------------------------------------------------------- downloading


def test_download_a_registry_model_cancel_it_midway_then_download_and_use_it(qtbot, tiny_model, window, tiny_pack, hub_endpoint):
    repo = pack_repo(tiny_pack, REGISTRY_REPO)
    with serving_gated_hub(repo, gated="visual.onnx") as hub:
        hub_endpoint(hub)
        dialog = open_models_dialog(qtbot, window)
        assert window.model_ready and dialog.tabs.tabText(dialog.tabs.currentIndex()) == "Installed"
        show_available_tab(qtbot, dialog)
        click_row(qtbot, dialog, REGISTRY_MODEL)
        seen = []  # what the progress bar showed, each time its value moved
        dialog.pull_progress.valueChanged.connect(lambda v: seen.append((v, dialog.pull_progress.text())))
        qtbot.mouseClick(dialog.pull_button, Qt.LeftButton)
        assert not dialog.pull_button.isEnabled() and not dialog.hub_button.isEnabled()  # one download at a time
        # the other files arrived (bytes counted), the image tower is in flight: cancel
        qtbot.waitUntil(lambda: hub.held.is_set() and dialog.pull_progress.value() > 0, timeout=60000)
        assert dialog.pull_cancel.isVisible() and dialog.pull_cancel.isEnabled()
        qtbot.mouseClick(dialog.pull_cancel, Qt.LeftButton)
        assert dialog.pull_cancel.text() == "Cancelling…"
        hub.gate.set()
        qtbot.waitUntil(lambda: "cancelled" in dialog.pull_status.text(), timeout=60000)
        assert "nothing was installed" in dialog.pull_status.text() and "\n" not in dialog.pull_status.text()
        assert not dialog.pull_progress.isVisible() and not dialog.pull_cancel.isVisible()
        assert installed_names() == ["tiny"] and leftovers() == []
        assert cells(dialog.available_row(REGISTRY_MODEL))["State"] == ""
        # the transfer stopped: the image tower never landed in the Hub cache
        blobs = paths.cache_dir() / "huggingface" / f"models--{REGISTRY_REPO.replace('/', '--')}" / "blobs"
        assert not (blobs / repo.etag("visual.onnx")).exists()

        # downloading again completes: progress in bytes and per cent, then the model is installed
        assert dialog.pull_button.isEnabled()
        seen.clear()
        qtbot.mouseClick(dialog.pull_button, Qt.LeftButton)
        qtbot.waitUntil(lambda: cells(dialog.available_row(REGISTRY_MODEL))["State"] == "installed", timeout=120000)
    assert dialog.pull_status.text() == f"Installed {REGISTRY_MODEL}."
    # Bytes and per cent as they grow. (The Hub service's total also counts the files already in its cache,
    # which are not fetched again, so after a cancelled try the bar need not reach 100% before installing.)
    assert len(seen) >= 1 and all(re.fullmatch(r"\S+ \w?B of \S+ \w?B \(\d+%\)", text) for _, text in seen), seen
    assert [v for v, _ in seen] == sorted(v for v, _ in seen) and seen[-1][0] > 0, seen
    assert sorted(installed_names()) == sorted(["tiny", REGISTRY_MODEL]) and leftovers() == []
    row = cells(dialog.available_row(REGISTRY_MODEL))
    assert row["Images/s here"] == f"{model_store.speed_of(REGISTRY_MODEL):.1f}"  # measured when it was installed
    names = [dialog.table.topLevelItem(i).text(1) for i in range(dialog.table.topLevelItemCount())]
    assert REGISTRY_MODEL in names  # among the installed ones
    # still searching with tiny; one click on the selected row makes the new model the active one
    assert window.status_area.model_button.text() == "Model: tiny"
    assert dialog.available.currentItem() is dialog.available_row(REGISTRY_MODEL)
    qtbot.mouseClick(dialog.use_available_button, Qt.LeftButton)
    qtbot.waitUntil(lambda: window.model_ready and window.status_area.model_button.text() == f"Model: {REGISTRY_MODEL}", timeout=30000)
    assert model_service.active() == REGISTRY_MODEL
    dialog.close()


def test_hf_reference_is_checked_before_downloading_and_errors_are_one_line(qtbot, window, tiny_pack, hub_endpoint):
    with serving_hub(pack_repo(tiny_pack, "someorg/tiny-pack")) as hub:
        hub_endpoint(hub)
        dialog = open_models_dialog(qtbot, window)

        def pull(text: str) -> None:
            dialog.hub_field.clear()
            qtbot.keyClicks(dialog.hub_field, text)
            qtbot.mouseClick(dialog.hub_button, Qt.LeftButton)

        # not a repository reference: refused on the spot, nothing asked of the Hub
        pull("hf:someorg/../etc")
        status = dialog.pull_status.text()
        assert "is not a Hugging Face repository" in status and "\n" not in status
        assert hub.requests() == [] and not dialog.pull_progress.isVisible()
        # a well-formed reference the Hub does not have: its answer, in one line
        pull("hf:someorg/no-such-model")
        qtbot.waitUntil(lambda: "no such repository" in dialog.pull_status.text(), timeout=60000)
        assert "\n" not in dialog.pull_status.text() and dialog.hub_button.isEnabled()
        assert installed_names() == [] and leftovers() == []
        # a good one (Enter in the field): installed, and the first model becomes the active one
        dialog.hub_field.clear()
        qtbot.keyClicks(dialog.hub_field, "hf:someorg/tiny-pack")
        qtbot.keyClick(dialog.hub_field, Qt.Key_Return)
        qtbot.waitUntil(lambda: dialog.pull_status.text() == "Installed tiny-pack.", timeout=120000)
    assert installed_names() == ["tiny-pack"]
    qtbot.waitUntil(lambda: window.model_ready and window.status_area.model_button.text() == "Model: tiny-pack", timeout=30000)
    # the same reference again: already installed, said in the window's words (no command-line flags)
    pull("hf:someorg/tiny-pack")
    assert "already installed" in dialog.pull_status.text() and "--" not in dialog.pull_status.text()
    dialog.close()
