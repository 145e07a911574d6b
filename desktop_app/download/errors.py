"""The download package's exceptions and the one-line messages its failures end as.

:class:`DownloadCancelled` is public; ``_Retry`` marks an attempt worth repeating. The helpers
turn OS errors and requests/urllib3 exceptions (with everything they wrap) into short, human
reasons, and keep user:password parts of URLs out of messages.
"""

from __future__ import annotations

import errno
import socket
import threading
from http.client import HTTPException as _HTTPException
from http.client import IncompleteRead as _HttpIncompleteRead
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import requests
import urllib3.exceptions

from ..errors import PixfindError, one_line

#: What reading a response body may raise when the network fails (never a local file error).
_NETWORK_ERRORS = (requests.RequestException, urllib3.exceptions.HTTPError, _HTTPException, OSError)


class DownloadCancelled(PixfindError):
    """The download was cancelled; its ``.part`` file is kept so a later call resumes it."""


class _Retry(Exception):
    """One attempt failed in a way that a later attempt may fix (network trouble, HTTP 5xx)."""

    def __init__(self, reason: str, *, status: int | None = None, retry_after: float | None = None):
        super().__init__(reason)
        self.reason = reason
        self.status = status
        self.retry_after = retry_after


def _check_cancel(cancel: threading.Event | None, shown: str, part: Path) -> None:
    if cancel is not None and cancel.is_set():
        if part.exists():
            raise DownloadCancelled(f"download of {shown} cancelled; the partial file {part} is kept to resume later")
        raise DownloadCancelled(f"download of {shown} cancelled")


def _local_error(e: OSError, path: Path, dest: Path) -> PixfindError:
    if e.errno in (errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)):
        return PixfindError(
            f"disk full while downloading to {dest}: free some space and run the command again to resume"
        )
    return PixfindError(f"cannot write {path}: {e.strerror or one_line(e)}")


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
