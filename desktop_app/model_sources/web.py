"""A pixfind pack published on a web server: a ``.zip`` of it, or the folder itself.

A zip is one resumable, verified download (``desktop_app.download``) into the downloads folder,
installed like a local zip. A folder URL is read as ``<url>/pack.json`` and then every file that
pack.json lists, each checked against the sha256 it records; the files are kept in the cache
under a folder named after the URL, so an interrupted pull resumes where it stopped.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable
from pathlib import Path
from urllib.parse import quote, urlsplit

from .. import paths
from ..download import DownloadCancelled, download, filename_from_url
from ..errors import Cancelled, PixfindError
from ..pack import MANIFEST_NAME, read_manifest
from .detect import link_or_copy

Progress = Callable[[int, "int | None"], None]


def fetch_pack(
    url: str,
    staging: Path,
    *,
    expected_sha256: str | None = None,
    progress: Progress | None = None,
    cancel: threading.Event | None = None,
    log: Callable[[str], None] = lambda _msg: None,
) -> Path:
    """The downloaded zip (a file) or a pack folder under ``staging`` made from a folder URL."""
    path = urlsplit(url).path
    try:
        if path.lower().endswith(".zip"):
            dest = paths.downloads_dir() / filename_from_url(url, "pack.zip")
            log(f"downloading {url}")
            download(url, dest, expected_sha256=expected_sha256, progress=False, on_progress=progress, cancel=cancel)
            return dest
        return _fetch_folder(url, staging, progress, cancel, log)
    except DownloadCancelled:
        raise Cancelled("download cancelled; pull again to resume it") from None


def _fetch_folder(url: str, staging: Path, progress, cancel, log) -> Path:
    base = url[: -len(MANIFEST_NAME)] if url.endswith("/" + MANIFEST_NAME) else url.rstrip("/") + "/"
    cache = paths.cache_dir() / "packs" / hashlib.sha256(base.encode()).hexdigest()[:16]
    log(f"reading {base}{MANIFEST_NAME}")
    download(base + MANIFEST_NAME, cache / MANIFEST_NAME, progress=False, cancel=cancel)
    manifest = read_manifest(cache)  # the schema, and every file name confined to the pack
    out = staging / "pack"
    out.mkdir(parents=True)
    link_or_copy(cache / MANIFEST_NAME, out / MANIFEST_NAME)
    for i, (name, digest) in enumerate(manifest.files.items()):
        log(f"downloading {name} ({i + 1} of {len(manifest.files)})")
        target = cache / name
        if not target.resolve().is_relative_to(cache.resolve()):
            raise PixfindError(f"{base}{MANIFEST_NAME}: file {name!r} leaves the pack; refusing it")
        download(base + quote(name), target, expected_sha256=digest, progress=False, on_progress=progress, cancel=cancel)
        link_or_copy(target, out / name)
    return out
