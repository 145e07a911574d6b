"""Resumable, verified HTTP downloads of large files (model checkpoints for ``pixfind models pull``).

``download(url, dest)`` writes to ``<dest>.part`` and only renames it to ``dest`` once the
whole file is on disk, its size agrees with what the server announced, and (when given)
its sha256 matches. An interrupted transfer is continued with an HTTP ``Range`` request,
both within one call (a dropped connection is retried from the bytes already on disk)
and across calls (a ``.part`` left by a killed run is picked up again). The sha256 is
computed while the bytes arrive and written next to the file as ``<dest>.sha256``, so a
later call for a file that is already there returns at once, without touching the network.

Every failure the user can act on is a :class:`~desktop_app.errors.PixfindError` with one
line of text; a cancelled download raises :class:`DownloadCancelled` and keeps the ``.part``.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import re
import socket
import threading
from http.client import HTTPException as _HTTPException
from http.client import IncompleteRead as _HttpIncompleteRead
from pathlib import Path
from typing import Callable
from urllib.parse import unquote, urlsplit, urlunsplit

import requests
import urllib3.exceptions

from .errors import PixfindError, one_line
from .progress import ProgressCallback, progress_bar

__all__ = ["DownloadCancelled", "download", "filename_from_url", "forget", "is_cached"]

#: Longest wait between two attempts, whatever the backoff or a server's Retry-After says.
MAX_BACKOFF_S = 60.0
#: How often one call may throw away its .part and start again from byte 0 (server changed
#: the file, answered a Range request with the wrong bytes, ...), before it gives up.
MAX_RESTARTS = 3

_SHA256_RE = re.compile(r"^[0-9a-f]{64}$")
#: What reading a response body may raise when the network fails (never a local file error).
_NETWORK_ERRORS = (requests.RequestException, urllib3.exceptions.HTTPError, _HTTPException, OSError)
_CONTENT_RANGE_RE = re.compile(r"^\s*bytes\s+(?:(\d+)-(\d+)|\*)\s*/\s*(\d+|\*)\s*$", re.IGNORECASE)


class DownloadCancelled(PixfindError):
    """The download was cancelled; its ``.part`` file is kept so a later call resumes it."""


class _Retry(Exception):
    """One attempt failed in a way that a later attempt may fix (network trouble, HTTP 5xx)."""

    def __init__(self, reason: str, *, status: int | None = None, retry_after: float | None = None):
        super().__init__(reason)
        self.reason = reason
        self.status = status
        self.retry_after = retry_after


def download(
    url: str,
    dest: Path,
    *,
    expected_sha256: str | None = None,
    progress: bool = True,
    chunk_size: int = 1 << 20,
    retries: int = 5,
    timeout: float = 30,
    on_progress: ProgressCallback | None = None,
    cancel: threading.Event | None = None,
    backoff: float = 1.0,
) -> str:
    """Download ``url`` to ``dest`` (resuming ``<dest>.part`` if present); return its sha256 hex.

    ``retries`` is how many failed attempts in a row are retried (an attempt that got some
    bytes resets the count), waiting ``backoff * 2**(n-1)`` seconds (at most
    :data:`MAX_BACKOFF_S`) before the n-th retry. ``timeout`` bounds connecting and each read.
    ``on_progress(done, total)`` is called as bytes arrive (``total`` is None when the server
    does not say); without it and with ``progress`` a rich progress bar goes to stderr.
    Setting ``cancel`` stops the transfer with :class:`DownloadCancelled`, keeping the ``.part``.
    """
    dest = Path(dest)
    shown = _display_url(url)
    part = dest.with_name(dest.name + ".part")
    sidecar = dest.with_name(dest.name + ".sha256")
    expected = _normalise_sha256(expected_sha256)
    if chunk_size <= 0:
        raise ValueError("chunk_size must be positive")

    done = _already_downloaded(dest, sidecar, expected, url)
    if done is not None:
        return done

    _check_cancel(cancel, shown, part)
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise _local_error(e, dest.parent, dest) from None

    transfer = _Transfer(
        url=url,
        shown=shown,
        dest=dest,
        part=part,
        chunk_size=chunk_size,
        timeout=timeout,
        cancel=cancel,
    )
    _forget_foreign_part(part, url, expected)
    with _reporter(dest.name, progress, on_progress) as report:
        transfer.report = report
        transfer.load_part()
        try:
            _write_source(_source_of(part), url, expected)
        except OSError as e:
            raise _local_error(e, _source_of(part), dest) from None
        with requests.Session() as session:
            transfer.run(session, retries=max(0, int(retries)), backoff=max(0.0, float(backoff)))

    digest = transfer.hasher.hexdigest()
    if expected is not None and digest != expected:
        part.unlink(missing_ok=True)
        _source_of(part).unlink(missing_ok=True)
        raise PixfindError(
            f"checksum mismatch for {dest.name} downloaded from {shown}: "
            f"expected sha256 {expected}, got {digest}; the download was deleted"
        )
    _install(part, dest, sidecar, digest, url, expected)
    return digest


# --------------------------------------------------------------------------- the cache's keys


def filename_from_url(url: str, default: str = "download") -> str:
    """The file name a URL names: the last segment of its path (no query, no fragment), decoded.

    ``https://host/a/x.pth?token=1`` -> ``x.pth``; a name that cannot be a file name gives ``default``.
    """
    try:
        path = urlsplit(url).path
    except ValueError:
        return default
    name = unquote(path.rstrip("/").rsplit("/", 1)[-1])
    if not name or name in (".", "..") or any(c in name for c in '/\\\x00') or any(ord(c) < 32 for c in name):
        return default
    return name[:200]


def _source_of(path: Path) -> Path:
    """Where the URL (and expected sha256) that ``path``'s bytes came from is recorded."""
    return path.with_name(path.name + ".source")


def _write_source(record: Path, url: str, expected: str | None) -> None:
    tmp = record.with_name(record.name + ".tmp")
    tmp.write_text(f"{url}\n{expected or '-'}\n", encoding="utf-8", newline="\n")
    os.replace(tmp, record)


def _read_source(record: Path) -> tuple[str, str | None] | None:
    """(url, expected sha256 or None) from a source record; None when there is none or it is unreadable."""
    try:
        lines = record.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError):
        return None
    if len(lines) < 2:
        return None
    return lines[0], (lines[1] if _SHA256_RE.match(lines[1]) else None)


def _forget_foreign_part(part: Path, url: str, expected: str | None) -> None:
    """Delete a .part whose bytes came from another URL, or were meant to have another sha256.

    A .part without a record (left by an older pixfind) is resumed as before.
    """
    record = _read_source(_source_of(part))
    if record is None:
        return
    url_then, expected_then = record
    if url_then != url or (expected is not None and expected_then is not None and expected_then != expected):
        try:
            part.unlink(missing_ok=True)
            _source_of(part).unlink(missing_ok=True)
        except OSError as e:
            raise _local_error(e, part, part) from None


def is_cached(url: str, dest: Path, *, expected_sha256: str | None = None) -> bool:
    """Whether :func:`download` would return ``dest`` as it is, without a request."""
    dest = Path(dest)
    expected = _normalise_sha256(expected_sha256)
    return _already_downloaded(dest, dest.with_name(dest.name + ".sha256"), expected, url, touch=False) is not None


def forget(dest: Path) -> None:
    """Delete a downloaded file with its records and any partial download of it, e.g. a cached
    file that turned out unusable, so the next :func:`download` fetches it afresh."""
    dest = Path(dest)
    part = dest.with_name(dest.name + ".part")
    for path in (dest, dest.with_name(dest.name + ".sha256"), _source_of(dest), part, _source_of(part)):
        try:
            path.unlink(missing_ok=True)
        except OSError as e:
            raise _local_error(e, path, dest) from None


# --------------------------------------------------------------------------- the transfer


class _Transfer:
    """The state of one download: bytes on disk in the .part, their running hash, the size."""

    def __init__(self, *, url, shown, dest, part, chunk_size, timeout, cancel):
        self.url: str = url
        self.shown: str = shown
        self.dest: Path = dest
        self.part: Path = part
        self.chunk_size: int = chunk_size
        self.timeout: float = timeout
        self.cancel: threading.Event | None = cancel
        self.report: Callable[[int, int | None], None] = lambda done, total: None
        self.offset = 0  # bytes of the .part that are hashed and to be kept
        self.hasher = hashlib.sha256()
        self.total: int | None = None  # size of the whole file, once the server said it
        self.validator: str | None = None  # strong ETag or Last-Modified, for If-Range
        self.restarts = 0
        self.no_resume = False  # the server compresses the body: Range offsets would not be ours

    # ---------------------------------------------------------------- local file

    def load_part(self) -> None:
        """Hash the bytes an earlier run left in the .part, so the transfer continues after them."""
        if not self.part.exists():
            return
        try:
            with open(self.part, "rb") as f:
                while chunk := f.read(self.chunk_size):
                    _check_cancel(self.cancel, self.shown, self.part)
                    self.hasher.update(chunk)
                    self.offset += len(chunk)
        except OSError as e:
            raise _local_error(e, self.part, self.dest) from None
        self.report(self.offset, None)

    def restart(self, why: str) -> None:
        """Throw the .part away and start again from byte 0 (bounded by MAX_RESTARTS)."""
        self.restarts += 1
        if self.restarts > MAX_RESTARTS:
            raise PixfindError(f"could not download {self.shown}: {why}, even after starting over {MAX_RESTARTS} times")
        self.discard()

    def discard(self) -> None:
        """Forget the bytes received so far and delete the .part."""
        self.offset = 0
        self.hasher = hashlib.sha256()
        self.total = None
        self.validator = None
        try:
            self.part.unlink(missing_ok=True)
        except OSError as e:
            raise _local_error(e, self.part, self.dest) from None
        self.report(0, None)

    # ---------------------------------------------------------------- attempts

    def run(self, session: requests.Session, *, retries: int, backoff: float) -> None:
        """Attempt until the whole file is in the .part; raise PixfindError when that fails."""
        failures = 0
        while True:
            _check_cancel(self.cancel, self.shown, self.part)
            before = self.offset
            try:
                if self.attempt(session):
                    return
                continue  # started over or got a partial range: ask again at once
            except _Retry as e:
                if self.offset > before:
                    failures = 0  # progress was made: this is a new streak of trouble
                failures += 1
                if failures > retries:
                    tries = "1 attempt" if failures == 1 else f"{failures} attempts"
                    raise PixfindError(f"could not download {self.shown}: {e.reason} (gave up after {tries})") from None
                delay = min(backoff * 2 ** (failures - 1), MAX_BACKOFF_S)
                if e.retry_after is not None:
                    delay = min(max(delay, e.retry_after), MAX_BACKOFF_S)
                _sleep(delay, self.cancel, self.shown, self.part)

    def attempt(self, session: requests.Session) -> bool:
        """One request. True: the file is complete; False: ask again now; _Retry: wait, then ask."""
        headers = {"Accept-Encoding": "identity"}
        if self.no_resume and self.offset > 0:
            self.discard()
        if self.offset > 0:
            headers["Range"] = f"bytes={self.offset}-"
            if self.validator:
                headers["If-Range"] = self.validator
        try:
            response = session.get(self.url, headers=headers, stream=True, timeout=(self.timeout, self.timeout))
        except requests.RequestException as e:
            raise self._network_error(e) from None

        with response:
            status = response.status_code
            encoded = response.headers.get("Content-Encoding", "identity").strip().lower() not in ("", "identity")
            if encoded and status in (200, 206):
                # Despite "Accept-Encoding: identity": sizes and ranges count compressed bytes,
                # so take the decoded body whole and never resume it.
                self.no_resume = True
                if status == 206:
                    self.restart("the server sent a compressed partial response")
                    return False
            if status == 416 and self.offset > 0:
                return self._range_not_satisfiable(session, response)
            if status == 200:
                if self.offset > 0:
                    self.discard()  # the server ignored Range (or If-Range saw a new file): from byte 0
                self.total = None if encoded else _parse_int(response.headers.get("Content-Length"))
                body_length = self.total
                range_end = None
                self.validator = _validator(response)
            elif status == 206:
                content_range = _parse_content_range(response.headers.get("Content-Range"))
                if content_range is None or content_range[0] is None:
                    self.restart("the server sent a partial response without a valid Content-Range")
                    return False
                start, end, total = content_range
                if start != self.offset:
                    self.restart(f"the server resumed at byte {start} instead of {self.offset}")
                    return False
                if total is not None and self.total is not None and total != self.total:
                    self.restart("the file changed on the server")
                    return False
                if total is not None:
                    self.total = total
                if self.total is not None and end >= self.total:
                    self.restart("the server sent an inconsistent Content-Range")
                    return False
                body_length = end - start + 1
                range_end = end + 1
                if self.validator is None:
                    self.validator = _validator(response)
            elif status in (408, 425, 429) or status >= 500:
                raise _Retry(
                    f"HTTP {status} {response.reason or ''}".rstrip(),
                    status=status,
                    retry_after=_parse_retry_after(response.headers.get("Retry-After")),
                )
            else:
                raise PixfindError(f"could not download {self.shown}: HTTP {status} {response.reason or ''}".rstrip())

            self.report(self.offset, self.total)
            start_offset = self.offset
            self._receive(response, decode=encoded)
            received = self.offset - start_offset

        if body_length is not None and received < body_length:
            raise _Retry(f"the connection closed after {received} of {body_length} bytes")
        if self.total is not None:
            if self.offset > self.total:
                self.restart("the server sent more bytes than the file has")
                return False
            if self.offset < self.total:
                if range_end is not None and self.offset == range_end:
                    return False  # the server sent a shorter range than asked: ask for the rest
                raise _Retry(f"the connection closed at byte {self.offset} of {self.total}")
        return True

    def _receive(self, response: requests.Response, *, decode: bool) -> None:
        """Append the body to the .part, hashing it as it goes; network errors become _Retry.

        The raw stream (not ``iter_content``) is read so that a read cut short by a dropped
        connection still hands over the bytes it got: a resume then starts exactly there.
        """
        try:
            f = open(self.part, "r+b" if self.part.exists() else "w+b")
        except OSError as e:
            raise _local_error(e, self.part, self.dest) from None
        with f:
            try:
                f.seek(self.offset)
                f.truncate()  # drop any bytes a failed write left past what was hashed
            except OSError as e:
                raise _local_error(e, self.part, self.dest) from None
            if decode:
                chunks = response.iter_content(chunk_size=self.chunk_size)
            else:
                chunks = response.raw.stream(self.chunk_size, decode_content=False)
            while True:
                if self.cancel is not None and self.cancel.is_set():
                    _flush(f, self.part, self.dest)
                    _check_cancel(self.cancel, self.shown, self.part)
                try:
                    chunk = next(chunks, None)
                except _NETWORK_ERRORS as e:
                    _flush(f, self.part, self.dest)
                    raise self._network_error(e) from None
                if chunk is None:
                    break
                if not chunk:
                    continue
                try:
                    f.write(chunk)
                except OSError as e:
                    raise _local_error(e, self.part, self.dest) from None
                self.hasher.update(chunk)
                self.offset += len(chunk)
                self.report(self.offset, self.total)
            _flush(f, self.part, self.dest)

    def _range_not_satisfiable(self, session: requests.Session, response: requests.Response) -> bool:
        """HTTP 416 for ``bytes=offset-``: the .part is complete, or longer than the file."""
        content_range = _parse_content_range(response.headers.get("Content-Range"))
        total = content_range[2] if content_range is not None else None
        if total is None:
            total = self._head_length(session)
        if total is None:
            total = self.total
        if total is not None and total == self.offset:
            self.total = total
            return True
        if total is None:
            self.restart("the server refused to resume and did not tell the file's size")
        else:
            self.restart(f"the partial download has {self.offset} bytes but the file has {total}")
        return False

    def _head_length(self, session: requests.Session) -> int | None:
        try:
            response = session.head(
                self.url,
                headers={"Accept-Encoding": "identity"},
                timeout=(self.timeout, self.timeout),
                allow_redirects=True,
            )
        except requests.RequestException:
            return None
        with response:
            if response.status_code != 200:
                return None
            return _parse_int(response.headers.get("Content-Length"))

    def _network_error(self, e: BaseException) -> Exception:
        """A requests exception as _Retry (worth another try) or PixfindError (not)."""
        if isinstance(e, (requests.exceptions.MissingSchema, requests.exceptions.InvalidSchema)):
            return PixfindError(f"cannot download {self.shown}: not an http:// or https:// URL")
        if isinstance(e, (requests.exceptions.InvalidURL, requests.exceptions.InvalidHeader)):
            return PixfindError(f"cannot download {self.shown}: invalid URL")
        if isinstance(e, requests.exceptions.TooManyRedirects):
            return PixfindError(f"could not download {self.shown}: too many redirects")
        if isinstance(e, (requests.exceptions.SSLError, urllib3.exceptions.SSLError)):
            return PixfindError(f"could not download {self.shown}: TLS/SSL error ({one_line(_innermost(e))})")
        return _Retry(_describe_network_error(e, self.url, self.timeout))


# --------------------------------------------------------------------------- finishing


def _install(part: Path, dest: Path, sidecar: Path, digest: str, url: str, expected: str | None) -> None:
    """fsync the complete .part, rename it over ``dest`` atomically, then write the sidecar and
    the source record (the URL it came from); a file without them is downloaded again."""
    try:
        with open(part, "r+b") as f:
            os.fsync(f.fileno())
        sidecar.unlink(missing_ok=True)  # it described an older dest, if any
        _source_of(dest).unlink(missing_ok=True)
        os.replace(part, dest)
        _fsync_dir(dest.parent)
        tmp = sidecar.with_name(sidecar.name + ".tmp")
        with open(tmp, "w", encoding="ascii", newline="\n") as f:
            f.write(f"{digest}  {dest.name}\n")
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, sidecar)
        _write_source(_source_of(dest), url, expected)
        _source_of(part).unlink(missing_ok=True)
        _fsync_dir(dest.parent)
    except OSError as e:
        raise _local_error(e, Path(e.filename) if e.filename else dest, dest) from None


def _already_downloaded(
    dest: Path, sidecar: Path, expected: str | None, url: str, *, touch: bool = True
) -> str | None:
    """The sha256 of ``dest`` if it is already there and good, else None (download it again).

    With an expected sha256 the content decides, wherever it came from. Without one, only a
    file downloaded from this same URL is reused: a file from another URL (a wrong mirror,
    an older --url) or of unknown origin is fetched again rather than trusted.
    """
    try:
        if not dest.is_file():
            return None
        recorded = _read_sidecar(sidecar)
        if expected is None:
            source = _read_source(_source_of(dest))
            if source is None or source[0] != url:
                return None
        if recorded is not None and (expected is None or recorded == expected):
            if dest.stat().st_mtime_ns <= sidecar.stat().st_mtime_ns:
                return recorded  # the sidecar was written after the file: trust it
            if _sha256_file(dest) == recorded:  # file touched later, e.g. copied: check it
                if touch:
                    _write_sidecar(sidecar, recorded, dest.name)
                return recorded
            return None
        if expected is not None and _sha256_file(dest) == expected:
            if touch:
                _write_sidecar(sidecar, expected, dest.name)
            return expected
    except OSError:
        return None  # unreadable: download it again, which reports real problems clearly
    return None


def _read_sidecar(sidecar: Path) -> str | None:
    try:
        words = sidecar.read_text(encoding="ascii", errors="replace").split()
    except OSError:
        return None
    if words and _SHA256_RE.match(words[0].lower()):
        return words[0].lower()
    return None


def _write_sidecar(sidecar: Path, digest: str, name: str) -> None:
    tmp = sidecar.with_name(sidecar.name + ".tmp")
    tmp.write_text(f"{digest}  {name}\n", encoding="ascii", newline="\n")
    os.replace(tmp, sidecar)


def _sha256_file(path: Path, chunk_size: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(chunk_size):
            digest.update(chunk)
    return digest.hexdigest()


def _flush(f, part: Path, dest: Path) -> None:
    try:
        f.flush()
    except OSError as e:
        raise _local_error(e, part, dest) from None


def _fsync_dir(directory: Path) -> None:
    """Make a rename durable on POSIX; a no-op where directories cannot be opened (Windows)."""
    if os.name == "nt":
        return
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


# --------------------------------------------------------------------------- helpers


def _check_cancel(cancel: threading.Event | None, shown: str, part: Path) -> None:
    if cancel is not None and cancel.is_set():
        if part.exists():
            raise DownloadCancelled(f"download of {shown} cancelled; the partial file {part} is kept to resume later")
        raise DownloadCancelled(f"download of {shown} cancelled")


def _sleep(seconds: float, cancel: threading.Event | None, shown: str, part: Path) -> None:
    """Wait before a retry; a cancel during the wait ends it at once."""
    if seconds <= 0:
        _check_cancel(cancel, shown, part)
        return
    if cancel is None:
        threading.Event().wait(seconds)
        return
    cancel.wait(seconds)
    _check_cancel(cancel, shown, part)


def _local_error(e: OSError, path: Path, dest: Path) -> PixfindError:
    if e.errno in (errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)):
        return PixfindError(
            f"disk full while downloading to {dest}: free some space and run the command again to resume"
        )
    return PixfindError(f"cannot write {path}: {e.strerror or one_line(e)}")


def _normalise_sha256(value: str | None) -> str | None:
    if value is None:
        return None
    value = value.strip().lower()
    if not _SHA256_RE.match(value):
        raise PixfindError(f"expected sha256 {value!r} is not 64 hexadecimal digits")
    return value


def _display_url(url: str) -> str:
    """The URL without any user:password part, for messages."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return url
    if parts.username is None and parts.password is None:
        return url
    host = parts.hostname or ""
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    return urlunsplit((parts.scheme, host, parts.path, parts.query, parts.fragment))


def _parse_int(value: str | None) -> int | None:
    if value is None:
        return None
    try:
        number = int(value.strip())
    except ValueError:
        return None
    return number if number >= 0 else None


def _parse_content_range(value: str | None) -> tuple[int | None, int | None, int | None] | None:
    """``bytes 10-99/100`` -> (10, 99, 100); ``bytes */100`` -> (None, None, 100); ``/*`` -> None total."""
    if not value:
        return None
    m = _CONTENT_RANGE_RE.match(value)
    if m is None:
        return None
    start = int(m.group(1)) if m.group(1) is not None else None
    end = int(m.group(2)) if m.group(2) is not None else None
    total = int(m.group(3)) if m.group(3) != "*" else None
    if start is not None and end is not None and end < start:
        return None
    return start, end, total


def _parse_retry_after(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        return max(0.0, float(value.strip()))
    except ValueError:
        return None  # an HTTP date: fall back to our own backoff


def _validator(response: requests.Response) -> str | None:
    """What identifies this version of the file for If-Range: a strong ETag, else Last-Modified."""
    etag = response.headers.get("ETag")
    if etag and not etag.startswith("W/"):
        return etag
    return response.headers.get("Last-Modified")


def _causes(e: BaseException) -> list[BaseException]:
    """``e`` and everything it wraps: causes, contexts, urllib3 ``reason``s, exception args."""
    seen: list[BaseException] = []
    stack = [e]
    while stack and len(seen) < 50:
        current = stack.pop()
        if any(current is s for s in seen):
            continue
        seen.append(current)
        for inner in (current.__cause__, current.__context__, getattr(current, "reason", None), *current.args):
            if isinstance(inner, BaseException):
                stack.append(inner)
    return seen


def _innermost(e: BaseException) -> BaseException:
    return _causes(e)[-1]


def _describe_network_error(e: BaseException, url: str, timeout: float) -> str:
    """A short, human reason for a failed request, for the final error line."""
    u3 = urllib3.exceptions

    causes = _causes(e)

    def has(*types: type) -> bool:
        return any(isinstance(c, types) for c in causes)

    host = urlsplit(url).hostname or url
    if has(ConnectionRefusedError) or any(getattr(c, "errno", None) == errno.ECONNREFUSED for c in causes):
        return f"connection refused by {host}"
    if has(socket.gaierror, getattr(u3, "NameResolutionError", socket.gaierror)):
        return f"could not resolve host {host}"
    if has(requests.Timeout, TimeoutError, socket.timeout, u3.TimeoutError):
        return f"no response from {host} within {timeout:g} s"
    if has(ConnectionResetError, BrokenPipeError, ConnectionAbortedError):
        return "the connection was reset"
    if has(_HttpIncompleteRead, u3.IncompleteRead, u3.ProtocolError, requests.exceptions.ChunkedEncodingError):
        return "the connection closed before the transfer was complete"
    if isinstance(e, (requests.ConnectionError, urllib3.exceptions.ProtocolError)):
        return f"could not connect to {host}"
    return one_line(_innermost(e))


def _reporter(name: str, progress: bool, on_progress: ProgressCallback | None):
    """The caller's callback when given; else a bar on stderr (removed at the end: the caller reports the outcome)."""
    if on_progress is not None:
        return contextlib.nullcontext(on_progress)
    return progress_bar(name, unit="bytes", enabled=progress, transient=True)
