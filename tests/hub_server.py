"""A real HTTP server on 127.0.0.1 speaking the Hugging Face Hub's endpoints that
``huggingface_hub`` uses to download (point ``HF_ENDPOINT`` at it):

- ``GET /api/models/{org}/{repo}[/revision/{rev}]``: the model info (``sha`` = the commit, ``siblings``);
- ``GET /api/models/{org}/{repo}/tree/{rev}[/{path}]?recursive=true``: the file listing with each
  file's git blob id (``oid``), size and, for LFS files, ``lfs.oid`` (sha256) and ``lfs.size``;
- ``HEAD``/``GET /{org}/{repo}/resolve/{rev}/{path}``: the file, with the headers
  ``huggingface_hub.file_download`` reads: ``ETag`` (the sha256 of an LFS file, else its git blob
  id), ``X-Repo-Commit``, ``X-Linked-Etag``/``X-Linked-Size`` for LFS files, ``Content-Length``,
  ``Accept-Ranges`` and ``Range``/``206`` answers for resumed downloads; ``X-Error-Code`` on 404.

Scripted faults, per file: cut the connection after N bytes (once), serve other bytes than the
listing's hashes describe (a corrupted file), or answer 404 for a file the listing names.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import re
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

CHUNK = 64 * 1024
LFS_MIN = 10 * 1024  # files at least this large are stored with git LFS (as .onnx files are on the Hub)


def git_blob_id(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


@dataclass
class Repo:
    repo_id: str
    files: dict[str, bytes]
    commit: str = ""
    served: dict[str, bytes] = field(default_factory=dict)  # what is sent instead of files[path] (corruption)
    hidden: set[str] = field(default_factory=set)  # listed, but 404 on download

    def __post_init__(self) -> None:
        if not self.commit:
            digest = hashlib.sha1(self.repo_id.encode())
            for path in sorted(self.files):
                digest.update(path.encode() + hashlib.sha256(self.files[path]).digest())
            self.commit = digest.hexdigest()

    def is_lfs(self, path: str) -> bool:
        return len(self.files[path]) >= LFS_MIN or path.endswith(".onnx")

    def etag(self, path: str) -> str:
        data = self.files[path]
        return hashlib.sha256(data).hexdigest() if self.is_lfs(path) else git_blob_id(data)

    @classmethod
    def from_folder(cls, repo_id: str, folder: Path) -> Repo:
        folder = Path(folder)
        files = {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}
        return cls(repo_id, files)


class HubState:
    def __init__(self) -> None:
        self.repos: dict[str, Repo] = {}
        self.cut_after: dict[str, list[int]] = {}  # "repo/path" -> byte counts at which to drop the connection
        self.lock = threading.Lock()
        self.log: list[dict] = []
        self.url = ""

    def add(self, repo: Repo) -> Repo:
        self.repos[repo.repo_id] = repo
        return repo

    def record(self, **entry) -> dict:
        with self.lock:
            self.log.append(entry)
        return entry

    def requests(self, method: str | None = None, contains: str = "") -> list[dict]:
        with self.lock:
            return [e for e in self.log if (method is None or e["method"] == method) and contains in e["path"]]


class HubHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, format, *args) -> None:
        pass

    @property
    def state(self) -> HubState:
        return self.server.state  # type: ignore[attr-defined]

    def do_GET(self) -> None:
        self.route(head=False)

    def do_HEAD(self) -> None:
        self.route(head=True)

    # ---------------------------------------------------------------- plumbing

    def send_json(self, status: int, payload, extra: dict | None = None) -> None:
        body = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        for key, value in (extra or {}).items():
            self.send_header(key, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def not_found(self, code: str, message: str) -> None:
        self.send_json(404, {"error": message}, {"X-Error-Code": code, "X-Error-Message": message})

    def route(self, head: bool) -> None:
        parts = urlsplit(self.path)
        path = unquote(parts.path)
        entry = self.state.record(method=self.command, path=path, range=self.headers.get("Range"), status=None, sent=0)
        m = re.fullmatch(r"/api/models/([^/]+/[^/]+)(?:/revision/([^/]+))?", path)
        if m:
            return self.model_info(m.group(1), m.group(2), entry)
        m = re.fullmatch(r"/api/models/([^/]+/[^/]+)/tree/([^/]+)(?:/(.*))?", path)
        if m:
            recursive = parse_qs(parts.query).get("recursive", ["false"])[0].lower() == "true"
            return self.tree(m.group(1), m.group(2), m.group(3) or "", recursive, entry)
        m = re.fullmatch(r"/([^/]+/[^/]+)/resolve/([^/]+)/(.+)", path)
        if m:
            return self.resolve(m.group(1), m.group(2), m.group(3), head, entry)
        entry["status"] = 404
        self.not_found("EntryNotFound", f"no route for {path}")

    def repo_at(self, repo_id: str, revision: str | None, entry: dict) -> Repo | None:
        repo = self.state.repos.get(repo_id)
        if repo is None:
            entry["status"] = 404
            self.not_found("RepoNotFound", f"Repository {repo_id} not found")
            return None
        if revision not in (None, "main", repo.commit):
            entry["status"] = 404
            self.not_found("RevisionNotFound", f"Revision {revision} not found")
            return None
        return repo

    # ---------------------------------------------------------------- endpoints

    def model_info(self, repo_id: str, revision: str | None, entry: dict) -> None:
        repo = self.repo_at(repo_id, revision, entry)
        if repo is None:
            return
        entry["status"] = 200
        self.send_json(
            200,
            {
                "_id": repo.commit[:24],
                "id": repo_id,
                "modelId": repo_id,
                "sha": repo.commit,
                "private": False,
                "disabled": False,
                "gated": False,
                "downloads": 0,
                "likes": 0,
                "tags": [],
                "siblings": [{"rfilename": p} for p in sorted(repo.files)],
            },
        )

    def tree(self, repo_id: str, revision: str, prefix: str, recursive: bool, entry: dict) -> None:
        repo = self.repo_at(repo_id, revision, entry)
        if repo is None:
            return
        prefix = prefix.strip("/")
        items, folders = [], set()
        for path in sorted(repo.files):
            if prefix and not path.startswith(prefix + "/"):
                continue
            rest = path[len(prefix) + 1 :] if prefix else path
            if not recursive and "/" in rest:
                folders.add((prefix + "/" if prefix else "") + rest.split("/", 1)[0])
                continue
            if recursive:
                bits = path.split("/")[:-1]
                for i in range(len(prefix.split("/")) if prefix else 0, len(bits)):
                    folders.add("/".join(bits[: i + 1]))
            data = repo.files[path]
            item = {"type": "file", "path": path, "size": len(data), "oid": git_blob_id(data)}
            if repo.is_lfs(path):
                item["lfs"] = {"oid": hashlib.sha256(data).hexdigest(), "size": len(data), "pointerSize": 134}
            items.append(item)
        items += [{"type": "directory", "path": f, "oid": "0" * 40, "size": 0} for f in sorted(folders)]
        entry["status"] = 200
        self.send_json(200, items)

    def resolve(self, repo_id: str, revision: str, path: str, head: bool, entry: dict) -> None:
        repo = self.repo_at(repo_id, revision, entry)
        if repo is None:
            return
        if path not in repo.files or path in repo.hidden:
            entry["status"] = 404
            self.not_found("EntryNotFound", f"{path} does not exist on {revision}")
            return
        data = repo.served.get(path, repo.files[path])
        etag = f'"{repo.etag(path)}"'
        headers = {
            "ETag": etag,
            "X-Repo-Commit": repo.commit,
            "Accept-Ranges": "bytes",
            "Content-Type": "application/octet-stream",
        }
        if repo.is_lfs(path):
            headers["X-Linked-Etag"] = etag
            headers["X-Linked-Size"] = str(len(data))
        start, end, status = 0, len(data) - 1, 200
        requested = self.headers.get("Range")
        if requested and not head:
            m = re.fullmatch(r"bytes=(\d+)-(\d*)", requested.strip())
            if m:
                start = int(m.group(1))
                if start >= len(data):
                    entry["status"] = 416
                    self.send_response(416)
                    self.send_header("Content-Range", f"bytes */{len(data)}")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                if m.group(2):
                    end = min(int(m.group(2)), len(data) - 1)
                status = 206
                headers["Content-Range"] = f"bytes {start}-{end}/{len(data)}"
        body = memoryview(data)[start : end + 1]
        entry["status"] = status
        self.send_response(status)
        for key, value in headers.items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if head:
            return
        with self.state.lock:
            cuts = self.state.cut_after.get(f"{repo_id}/{path}") or []
            cut = cuts.pop(0) if cuts else None
        limit = len(body) if cut is None else min(cut, len(body))
        try:
            for i in range(0, limit, CHUNK):
                piece = body[i : min(i + CHUNK, limit)]
                entry["sent"] += len(piece)
                self.wfile.write(piece)
            self.wfile.flush()
            if limit < len(body):
                import socket

                self.close_connection = True
                self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            self.close_connection = True


@contextlib.contextmanager
def serving_hub(*repos: Repo):
    """A Hub on 127.0.0.1 serving ``repos`` until the block ends; yields its HubState (``.url``)."""
    state = HubState()
    for repo in repos:
        state.add(repo)
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), HubHandler)
    httpd.daemon_threads = True
    httpd.state = state  # type: ignore[attr-defined]
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    state.url = f"http://127.0.0.1:{httpd.server_address[1]}"
    try:
        yield state
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(5)
