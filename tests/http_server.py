"""A real HTTP file server on 127.0.0.1 for tests: Range, If-Range, and scripted failures
(connections cut or stalled after N bytes, error statuses, a file replaced mid-download)."""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import os
import re
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

FILE_SIZE = 3 * 1024 * 1024 + 12345  # not a multiple of any chunk size
CHUNK = 64 * 1024


class ServerState:
    """What the test server serves, how it misbehaves, and a log of what it was asked."""

    def __init__(self, data: bytes | None = None, path: str = "/model.pth") -> None:
        self.path = path
        self.data = data if data is not None else os.urandom(FILE_SIZE)
        self.sha256 = hashlib.sha256(self.data).hexdigest()
        self.etag = '"v1"'
        self.ignore_range = False
        self.gzip = False  # send the body gzip-compressed, whatever the client accepts
        self.replace_after_cut = False  # a new version of the file appears after the first cut
        self.cut_after: list[int | None] = []  # per GET with a body: close the connection after N bytes
        self.stall_after: list[int | None] = []  # per GET with a body: stop sending after N bytes
        self.statuses: list[int] = []  # answer the next GETs with these error statuses first
        self.release = threading.Event()  # ends every stall (set at teardown, at the latest)
        self.lock = threading.Lock()
        self.log: list[dict] = []
        self.url = ""

    def record(self, **entry) -> dict:
        with self.lock:
            self.log.append(entry)
        return entry

    def pop(self, queue: list):
        with self.lock:
            return queue.pop(0) if queue else None

    def gets(self) -> list[dict]:
        with self.lock:
            return [e for e in self.log if e["method"] == "GET"]

    def bytes_served(self) -> int:
        with self.lock:
            return sum(e["sent"] for e in self.log)


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, format, *args) -> None:  # keep test output quiet
        pass

    def do_HEAD(self) -> None:
        self.serve(head=True)

    def do_GET(self) -> None:
        self.serve(head=False)

    def send_empty(self, status: int, extra: dict[str, str] | None = None) -> None:
        self.send_response(status)
        for key, value in (extra or {}).items():
            self.send_header(key, value)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def serve(self, head: bool) -> None:
        state: ServerState = self.server.state  # type: ignore[attr-defined]
        entry = state.record(
            method=self.command,
            path=self.path,
            range=self.headers.get("Range"),
            if_range=self.headers.get("If-Range"),
            status=None,
            sent=0,
        )
        if self.path != state.path:
            entry["status"] = 404
            self.send_empty(404)
            return
        if not head:
            status = state.pop(state.statuses)
            if status is not None:
                entry["status"] = status
                self.send_empty(status)
                return

        data = state.data
        headers = {"Accept-Ranges": "bytes", "ETag": state.etag, "Content-Type": "application/octet-stream"}
        if state.gzip:
            data = gzip.compress(data, compresslevel=1)
            headers["Content-Encoding"] = "gzip"
        start, end, status = 0, len(data) - 1, 200
        requested = self.headers.get("Range")
        if_range = self.headers.get("If-Range")
        if if_range is not None and if_range != state.etag:
            requested = None  # RFC 9110: the file changed, so send all of the current one
        if requested and not state.ignore_range and not state.gzip:
            m = re.fullmatch(r"bytes=(\d+)-(\d*)", requested.strip())
            assert m, f"unexpected Range header {requested!r}"
            start = int(m.group(1))
            if start >= len(data):
                entry["status"] = 416
                self.send_empty(416, {"Content-Range": f"bytes */{len(data)}"})
                return
            if m.group(2):
                end = min(int(m.group(2)), len(data) - 1)
            status = 206
            headers["Content-Range"] = f"bytes {start}-{end}/{len(data)}"
        entry["status"] = status
        body = memoryview(data)[start : end + 1]
        self.send_response(status)
        for key, value in headers.items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if head:
            return

        cut = state.pop(state.cut_after)
        stall = state.pop(state.stall_after)
        limit = min(x for x in (cut, stall, len(body)) if x is not None)
        try:
            for i in range(0, limit, CHUNK):  # bounded: at most len(body) / CHUNK writes
                piece = body[i : min(i + CHUNK, limit)]
                entry["sent"] += len(piece)  # counted before the write, so the client never sees it first
                self.wfile.write(piece)
            self.wfile.flush()
            if limit < len(body) and state.replace_after_cut:
                state.data = os.urandom(FILE_SIZE // 2)
                state.sha256 = hashlib.sha256(state.data).hexdigest()
                state.etag = '"v2"'
            if limit < len(body):
                if stall is not None and limit == stall:
                    state.release.wait(5)  # bounded: the client times out long before
                self.close_connection = True
                self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:  # the client went away (cancel, timeout)
            self.close_connection = True


@contextlib.contextmanager
def serving(data: bytes | None = None, path: str = "/model.pth"):
    """Serve ``data`` (random bytes by default) at ``path`` on 127.0.0.1 until the block ends."""
    state = ServerState(data, path)
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.state = state  # type: ignore[attr-defined]
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    state.url = f"http://127.0.0.1:{httpd.server_address[1]}{path}"
    try:
        yield state
    finally:
        state.release.set()
        httpd.shutdown()
        httpd.server_close()
        thread.join(5)


def closed_port_url() -> str:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/model.pth"
