"""One resumable HTTP transfer into a ``.part`` file: Range + If-Range requests, retries with
backoff, a running sha256 of the bytes on disk, and the checks that decide when to start over.
"""

from __future__ import annotations

import hashlib
import re
import threading
from collections.abc import Callable
from pathlib import Path

import requests
import urllib3.exceptions

from ..errors import PixfindError, one_line
from .errors import (
    _NETWORK_ERRORS,
    _check_cancel,
    _describe_network_error,
    _innermost,
    _local_error,
    _Retry,
)

#: Longest wait between two attempts, whatever the backoff or a server's Retry-After says.
MAX_BACKOFF_S = 60.0
#: How often one call may throw away its .part and start again from byte 0 (server changed
#: the file, answered a Range request with the wrong bytes, ...), before it gives up.
MAX_RESTARTS = 3


_CONTENT_RANGE_RE = re.compile(r"^\s*bytes\s+(?:(\d+)-(\d+)|\*)\s*/\s*(\d+|\*)\s*$", re.IGNORECASE)


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


def _flush(f, part: Path, dest: Path) -> None:
    try:
        f.flush()
    except OSError as e:
        raise _local_error(e, part, dest) from None


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
