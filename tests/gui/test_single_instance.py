"""One window per library: a second `pixfind app` hands its request to the running window and exits 0.

The first window runs offscreen in the test process (opened by ``gui.open_window``, what `pixfind app`
runs); the second launch is the real console script in a subprocess.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("PySide6")
pytest.importorskip("pytestqt")

from PySide6.QtCore import QDir
from PySide6.QtGui import QGuiApplication

from desktop_app.cli import main
from desktop_app.desktop_integration.launch_request import MAX_LINE, LaunchRequest
from desktop_app.gui import create_app, open_window
from desktop_app.gui.single_instance import server_name
from tests.library_helpers import REPO

PIXFIND = Path(sys.executable).with_name("pixfind")
SAMPLES = REPO / "desktop_app" / "resources" / "sample-photos"


@pytest.fixture
def photos(tmp_path) -> Path:
    folder = tmp_path / "Photos"
    folder.mkdir()
    for photo in sorted(SAMPLES.glob("*.jpg")):
        shutil.copy(photo, folder / photo.name)
    return folder


@pytest.fixture
def indexed(tiny_model, library_dir, photos) -> Path:
    assert main(["index", str(photos), "--library", str(library_dir)]) == 0
    return library_dir


def _open(qtbot, library_dir, request=None):
    create_app()
    window = open_window(str(library_dir), request)
    assert window is not None  # nobody else runs on this library
    qtbot.addWidget(window)
    return window


@pytest.fixture
def window(qtbot, indexed):
    w = _open(qtbot, indexed)
    qtbot.waitUntil(lambda: w.model_ready or w.model_problem is not None, timeout=20000)
    assert w.model_ready, w.model_problem
    qtbot.waitUntil(lambda: w.last_result is not None, timeout=20000)
    yield w
    w.close()
    QGuiApplication.clipboard().clear()


def second_launch(qtbot, library_dir, *args) -> subprocess.CompletedProcess:
    """`pixfind app --library LIB ARGS` as a user would start it, while this process's event loop keeps running."""
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen")
    proc = subprocess.Popen(
        [str(PIXFIND), "app", "--library", str(library_dir), *map(str, args)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    )  # fmt: skip
    try:
        qtbot.waitUntil(lambda: proc.poll() is not None, timeout=60000)
    finally:
        if proc.poll() is None:
            proc.kill()
    out, err = proc.communicate()
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def test_a_second_launch_makes_the_open_window_search_and_exits(qtbot, window, indexed):
    window.showMinimized()
    qtbot.waitUntil(window.isMinimized, timeout=5000)
    run = second_launch(qtbot, indexed, "--query", "cat")
    assert run.returncode == 0, run.stderr
    qtbot.waitUntil(lambda: window.last_result is not None and window.last_result.request.text == "cat", timeout=20000)
    assert window.search.text() == "cat"
    assert window.model.items  # the search ran and its photos are in the grid
    assert not window.isMinimized()  # brought back to the front


def test_a_second_launch_with_similar_shows_the_photos_like_that_file(qtbot, window, indexed, photos):
    example = photos / "cat.jpg"
    run = second_launch(qtbot, indexed, "--similar", example)
    assert run.returncode == 0, run.stderr
    qtbot.waitUntil(lambda: window.last_result is not None and window.last_result.request.images == [str(example)], timeout=20000)
    assert window.bar.examples == [str(example)] and window.search.text() == ""
    assert window.model.items[0].path == str(example)  # the photo itself matches itself best (cosine 1)


def test_a_second_launch_with_a_missing_file_says_so_and_changes_nothing(qtbot, window, indexed, tmp_path):
    before = window.search.text(), list(window.bar.examples)
    run = second_launch(qtbot, indexed, "--similar", tmp_path / "nowhere.jpg")
    assert run.returncode == 1
    assert run.stderr.strip() == f"pixfind: error: {tmp_path / 'nowhere.jpg'}: not an image file pixfind reads"
    assert (window.search.text(), window.bar.examples) == before


def test_the_first_launch_opens_on_its_query(qtbot, indexed):
    w = _open(qtbot, indexed, LaunchRequest(query="coffee"))
    assert w.search.text() == "coffee"
    sizes = {s.width() for s in w.windowIcon().availableSizes()}
    assert {16, 32, 256} <= sizes  # pixfind's own icon, inherited from the application by the window and its dialogs
    qtbot.waitUntil(lambda: w.last_result is not None and w.last_result.request.text == "coffee", timeout=30000)
    assert w.model.items
    w.close()


def _socket_path(name: str) -> str:
    return name if os.path.isabs(name) else os.path.join(QDir.tempPath(), name)


@pytest.mark.skipif(sys.platform == "win32", reason="Unix sockets")
def test_a_socket_left_by_a_crashed_window_is_taken_over(qtbot, library_dir, tiny_model):
    path = _socket_path(server_name(library_dir))
    stale = socket.socket(socket.AF_UNIX)
    stale.bind(path)  # a socket file nobody listens on, as a killed window leaves it
    stale.close()
    assert os.path.exists(path)
    w = _open(qtbot, library_dir)
    assert w.instance_server.server.isListening()
    run = second_launch(qtbot, library_dir, "--query", "rocket")  # and it answers
    assert run.returncode == 0, run.stderr
    qtbot.waitUntil(lambda: w.search.text() == "rocket", timeout=20000)
    w.close()
    assert not os.path.exists(path)  # closing the window removes its socket


def _raw_exchange(qtbot, path: str, payload: bytes) -> bytes:
    """Send ``payload`` on the window's socket as any local program could; the window's answer."""
    client = socket.socket(socket.AF_UNIX)
    client.connect(path)
    client.setblocking(False)
    client.sendall(payload)  # at most a few KiB: fits the socket's buffer
    answer = bytearray()

    def answered() -> bool:
        try:
            chunk = client.recv(4096)
        except BlockingIOError:
            return False
        answer.extend(chunk)
        return not chunk or answer.endswith(b"\n")

    qtbot.waitUntil(answered, timeout=10000)
    client.close()
    return bytes(answer)


@pytest.mark.skipif(sys.platform == "win32", reason="Unix sockets")
def test_what_arrives_on_the_socket_is_checked(qtbot, library_dir, tiny_model, tmp_path):
    w = _open(qtbot, library_dir)
    path = _socket_path(w.instance_server.server.fullServerName())
    before = w.search.text(), list(w.bar.examples)
    not_a_photo = tmp_path / "notes.txt"
    not_a_photo.write_text("hello")
    for payload, problem in [
        (b"not json\n", "not a JSON line"),
        (b'["query"]\n', "not a JSON object"),
        (b'{"query": 5}\n', "query: not a str"),
        (b'{"command": "rm -rf"}\n', "unknown field 'command'"),
        (b'{"query": "a\\u0007b"}\n', "control characters"),
        (json.dumps({"similar": "relative.jpg"}).encode() + b"\n", "not an absolute path"),
        (json.dumps({"similar": str(not_a_photo)}).encode() + b"\n", "not an image file"),
        (json.dumps({"folder": str(tmp_path / "missing")}).encode() + b"\n", "not a folder"),
        (b"x" * (MAX_LINE + 10), f"longer than {MAX_LINE} bytes"),
    ]:
        reply = json.loads(_raw_exchange(qtbot, path, payload))
        assert reply["ok"] is False and problem in reply["error"], (payload[:40], reply)
    assert (w.search.text(), w.bar.examples) == before  # none of it reached the window
    assert json.loads(_raw_exchange(qtbot, path, b'{"query": "temple"}\n')) == {"ok": True}  # still listening
    qtbot.waitUntil(lambda: w.search.text() == "temple", timeout=10000)
    w.close()
