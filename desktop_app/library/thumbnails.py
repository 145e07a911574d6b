"""The thumbnail cache the GUI shows: small JPEGs keyed by content fingerprint.

Keyed by content, so a moved or copied photo keeps its thumbnail. The cache is
disposable: a thumbnail that cannot be written is simply missing.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path

from PIL import Image

SIZE = 256


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
        name = self.name_for(fingerprint)
        target = self.path(name)
        if target.exists():
            return name
        thumb = image.copy()
        thumb.thumbnail((SIZE, SIZE), Image.Resampling.BILINEAR, reducing_gap=2.0)
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=target.parent, suffix=".tmp")
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
