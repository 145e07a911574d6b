"""The GPR1200 benchmark read straight from its zip: 12,000 images, 1200 classes x 10."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path, PurePosixPath

from PIL import Image

from desktop_app.errors import PixfindError

from ..data.sources import IMAGE_SUFFIXES


def gpr1200_label(name: str) -> str:
    """Files are named ``<class id>_<image id>.<ext>``: the class is the part before the first underscore."""
    stem = PurePosixPath(name).name
    if "_" not in stem:
        raise PixfindError(f"{name}: not a GPR1200 file name (expected <class>_<id>.jpg)")
    return stem.split("_", 1)[0]


class ZipImage:
    def __init__(self, zip_path: Path, member: str):
        self.zip_path, self.member = zip_path, member

    def load(self) -> Image.Image:
        with zipfile.ZipFile(self.zip_path) as z, z.open(self.member) as f:
            return Image.open(io.BytesIO(f.read())).convert("RGB")


def read_gpr1200(path: Path) -> tuple[list[ZipImage], list[str]]:
    """Images and labels, from the zip (``GPR1200.zip``) or from its extracted ``images`` folder."""
    path = Path(path)
    if path.is_dir():
        files = sorted(p for p in path.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
        return list(files), [gpr1200_label(p.name) for p in files]
    if not zipfile.is_zipfile(path):
        raise PixfindError(f"{path}: not a zip file or folder")
    with zipfile.ZipFile(path) as z:
        names = sorted(n for n in z.namelist() if PurePosixPath(n).suffix.lower() in IMAGE_SUFFIXES
                       and not PurePosixPath(n).name.startswith("."))
    if not names:
        raise PixfindError(f"{path}: no images in the zip")
    return [ZipImage(path, n) for n in names], [gpr1200_label(n) for n in names]
