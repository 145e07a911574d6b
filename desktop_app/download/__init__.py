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

The package: :mod:`.transfer` (one resumable HTTP transfer with retries), :mod:`.cache` (the
``.part``/``.sha256``/``.source`` files on disk) and :mod:`.errors` (exceptions, one-line
messages). Their names, private ones included, are re-exported here.
"""

from __future__ import annotations

import contextlib
import threading
from pathlib import Path

import requests

from ..errors import PixfindError
from ..progress import ProgressCallback, progress_bar

# Everything the modules define is importable from here, as it was from the single module
# this package replaced (private names too: tests and older callers import them).
from .cache import (  # noqa: F401 - re-exported
    _SHA256_RE,
    _already_downloaded,
    _forget_foreign_part,
    _fsync_dir,
    _install,
    _normalise_sha256,
    _read_sidecar,
    _read_source,
    _source_of,
    _write_sidecar,
    _write_source,
    filename_from_url,
    forget,
    is_cached,
)
from .errors import (  # noqa: F401 - re-exported
    _NETWORK_ERRORS,
    DownloadCancelled,
    _causes,
    _check_cancel,
    _describe_network_error,
    _display_url,
    _innermost,
    _local_error,
    _Retry,
)
from .transfer import (  # noqa: F401 - re-exported
    _CONTENT_RANGE_RE,
    MAX_BACKOFF_S,
    MAX_RESTARTS,
    _flush,
    _parse_content_range,
    _parse_int,
    _parse_retry_after,
    _sleep,
    _Transfer,
    _validator,
)

__all__ = ["DownloadCancelled", "download", "filename_from_url", "forget", "is_cached"]


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


def _reporter(name: str, progress: bool, on_progress: ProgressCallback | None):
    """The caller's callback when given; else a bar on stderr (removed at the end: the caller reports the outcome)."""
    if on_progress is not None:
        return contextlib.nullcontext(on_progress)
    return progress_bar(name, unit="bytes", enabled=progress, transient=True)
