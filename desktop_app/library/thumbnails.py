"""The thumbnail cache the GUI shows: small JPEGs keyed by content fingerprint.

Keyed by content, so a moved or copied photo keeps its thumbnail. The cache is
disposable: a thumbnail that cannot be written is simply missing.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # Pillow loads when a thumbnail is made: opening a library for `status` needs none
    from PIL import Image

SIZE = 256
TMP_PREFIX, TMP_SUFFIX = ".tmp-", ".tmp"
STALE_SECONDS = 600
SWEPT = ".swept"


class ThumbnailCache:
    def __init__(self, directory: Path):
        self.directory = Path(directory)

    @staticmethod
    def name_for(fingerprint: str) -> str:
        digest = hashlib.blake2b(fingerprint.encode(), digest_size=12).hexdigest()
        return f"{digest[:2]}/{digest}.jpg"

    def path(self, name: str) -> Path:
        return self.directory / name

    def save(self, image: Image.Image, fingerprint: str) -> str | None:
        """Store a thumbnail of an upright RGB image; returns its name, or None if it could not be written."""
        from PIL import Image

        name = self.name_for(fingerprint)
        target = self.path(name)
        if target.exists():
            return name
        thumb = image.copy()
        thumb.thumbnail((SIZE, SIZE), Image.Resampling.BILINEAR, reducing_gap=2.0)
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            # Written next to the cache's top folder, so a file a kill leaves is found cheaply.
            fd, tmp = tempfile.mkstemp(dir=self.directory, prefix=TMP_PREFIX, suffix=TMP_SUFFIX)
            try:
                with os.fdopen(fd, "wb") as f:
                    thumb.save(f, "JPEG", quality=85)
                os.replace(tmp, target)
            except BaseException:
                os.unlink(tmp)
                raise
        except OSError:
            return None
        return name

    def clean_stale(self, all_temporary: bool = False) -> int:
        """Remove temporary files a killed writer left; returns how many.

        ``all_temporary`` (the caller holds the library's writer lock, so no thumbnail is being
        written) removes every one; otherwise only those untouched for STALE_SECONDS.
        """
        removed = 0
        try:
            entries = list(os.scandir(self.directory))
        except OSError:
            return 0
        now = time.time()
        candidates = [e.path for e in entries if e.name.endswith(TMP_SUFFIX)]
        sweep_marker = self.directory / SWEPT
        if all_temporary and not sweep_marker.exists():
            # Once per cache: earlier versions wrote temporary files inside the sub-folders.
            candidates += [str(p) for p in self.directory.glob(f"*/*{TMP_SUFFIX}")]
            try:
                sweep_marker.touch()
            except OSError:
                pass
        for path in candidates:
            try:
                if all_temporary or now - os.stat(path).st_mtime > STALE_SECONDS:
                    os.unlink(path)
                    removed += 1
            except OSError:
                pass
        return removed
