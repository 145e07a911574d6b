"""One window per library: a second launch hands its request to the running window and exits.

The first window listens on a local socket (QLocalServer) named after the user and the library
folder. A later `pixfind app` connects, sends one JSON line (a ``LaunchRequest``) and waits for
the window's one-line answer; the running window comes to the front and runs the request. When
nobody answers on the name (a window that crashed left its socket behind), the socket is removed
and the new process becomes the window. What arrives on the socket is validated like any input
from outside: the socket is the user's own, but anything the user runs can write to it.
"""

from __future__ import annotations

import getpass
import hashlib
import json
import os
import sys
from pathlib import Path

from PySide6.QtCore import QEvent, QObject, QTimer, Signal
from PySide6.QtNetwork import QLocalServer, QLocalSocket

from ..desktop_integration.launch_request import MAX_LINE, LaunchRequest
from ..errors import PixfindError
from ..text import printable

__all__ = ["LaunchRequest", "claim", "apply", "server_name", "hand_over", "InstanceServer"]

CONNECT_MS = 1000
ANSWER_MS = 5000  # the window answers from its event loop; it may be busy for a moment


def server_name(library_dir: str | os.PathLike) -> str:
    """The socket's name: one per user and per library folder, in the user's runtime folder where there is one."""
    library = os.path.realpath(os.path.abspath(os.path.expanduser(os.fspath(library_dir))))
    user = hashlib.sha256(getpass.getuser().encode("utf-8", "surrogateescape")).hexdigest()[:8]
    digest = hashlib.sha256(library.encode("utf-8", "surrogateescape")).hexdigest()[:16]
    name = f"pixfind-{user}-{digest}"
    runtime = os.environ.get("XDG_RUNTIME_DIR", "")
    # a full path puts the socket in the user's own 0700 folder; Unix sockets' paths stop at 107 bytes
    if sys.platform != "win32" and os.path.isabs(runtime) and os.path.isdir(runtime) and len(runtime) + len(name) < 100:
        return str(Path(runtime) / name)
    return name


def hand_over(name: str, request: LaunchRequest) -> bool:
    """True when a running window took ``request``; False when nobody listens on ``name``."""
    socket = QLocalSocket()
    socket.connectToServer(name)
    if not socket.waitForConnected(CONNECT_MS):
        return False
    socket.write(request.to_line())
    socket.flush()
    answer = b""
    while b"\n" not in answer and len(answer) < MAX_LINE and socket.waitForReadyRead(ANSWER_MS):
        answer += bytes(socket.readAll().data())
    socket.disconnectFromServer()
    if not answer.endswith(b"\n"):
        raise PixfindError("pixfind is already open on this library but did not answer; close it or wait a moment")
    try:
        reply = json.loads(answer)
        ok, problem = reply.get("ok") is True, str(reply.get("error", ""))
    except (ValueError, AttributeError):
        ok, problem = False, "an answer that is not pixfind's"
    if not ok:
        raise PixfindError(f"the open pixfind window refused the request: {printable(problem)}")
    return True


class InstanceServer(QObject):
    """The running window's end of the socket: emits each valid request, answers every line."""

    requested = Signal(object)  # a LaunchRequest

    def __init__(self, name: str, parent=None):
        super().__init__(parent)
        self.name = name
        self.server = QLocalServer(self)
        self.server.setSocketOptions(QLocalServer.UserAccessOption)
        self.server.newConnection.connect(self._accept)

    def listen(self) -> bool:
        """Take the name; a socket left behind by a window that is gone (nobody answered) is removed first."""
        if self.server.listen(self.name):
            return True
        QLocalServer.removeServer(self.name)
        return self.server.listen(self.name)

    def close(self) -> None:
        self.server.close()  # also removes the socket's file

    def close_with(self, window) -> None:
        """Stop listening when ``window`` closes: a launch after that opens a new window."""
        window.installEventFilter(self)

    def eventFilter(self, obj, event) -> bool:
        if event.type() == QEvent.Close and event.isAccepted():
            self.close()
        return False

    def _accept(self) -> None:
        while self.server.hasPendingConnections():
            socket = self.server.nextPendingConnection()
            socket.setReadBufferSize(MAX_LINE + 1)  # a flood stays in the sender's buffers, not in the window's memory
            buffer = bytearray()
            timer = QTimer(socket, singleShot=True, interval=ANSWER_MS)  # a client that never finishes its line
            timer.timeout.connect(lambda s=socket: s.abort())
            socket.readyRead.connect(lambda s=socket, b=buffer: self._read(s, b))
            socket.disconnected.connect(socket.deleteLater)
            timer.start()

    def _read(self, socket: QLocalSocket, buffer: bytearray) -> None:
        buffer += bytes(socket.readAll().data())
        if b"\n" not in buffer and len(buffer) <= MAX_LINE:
            return
        line = bytes(buffer).split(b"\n", 1)[0]
        buffer.clear()
        socket.readyRead.disconnect()
        try:
            request = LaunchRequest.from_line(line)
        except ValueError as e:
            socket.write(json.dumps({"ok": False, "error": str(e)}).encode() + b"\n")
            socket.disconnectFromServer()
            return
        socket.write(b'{"ok": true}\n')
        socket.disconnectFromServer()
        self.requested.emit(request)


def claim(name: str, request: LaunchRequest) -> InstanceServer | None:
    """This process's server on ``name``, or None when a running window took ``request`` instead."""
    if hand_over(name, request):
        return None
    server = InstanceServer(name)
    if server.server.listen(name):
        return server
    # The name is taken: another launch may have become the window a moment ago; else the socket is stale.
    if hand_over(name, request):
        return None
    if not server.listen():
        raise PixfindError(f"cannot listen on {printable(name)}: {server.server.errorString()}")
    return server


def bring_to_front(window, activation_token: str = "") -> None:
    if activation_token:
        # Qt's Wayland backend activates with the token it finds here (focus-stealing prevention allows it)
        os.environ["XDG_ACTIVATION_TOKEN"] = activation_token
    if window.isMinimized():
        window.showNormal()
    else:
        window.show()
    window.raise_()
    window.activateWindow()


def apply(window, request: LaunchRequest) -> None:
    """Run ``request`` in ``window`` through its own search field and find-similar path, as a user would."""
    bring_to_front(window, request.activation_token)
    bar = window.bar
    if request.similar or request.query:
        if request.similar:
            bar.search_like(request.similar)
        else:
            bar.clear_query()
        window.search.setText(request.query)
    if request.pick_image:
        QTimer.singleShot(0, bar.pick_example)  # a modal dialog: after the socket's slot returns
    else:
        window.focus_search()
    if request.similar or request.query or request.folder:
        _when_model_ready(window, lambda: _search_and_add(window, request))


def _search_and_add(window, request: LaunchRequest) -> None:
    if request.similar or request.query:
        window.run_search()
    if request.folder:
        window.add_folder(request.folder)


def _when_model_ready(window, then) -> None:
    """Call ``then`` once the window's model is loaded (searching and indexing need it); never when
    the model turns out to be missing (the window then shows how to install one)."""
    if window.model_ready:
        then()
        return

    def once() -> None:
        window.model_loaded.disconnect(once)
        then()

    window.model_loaded.connect(once)
