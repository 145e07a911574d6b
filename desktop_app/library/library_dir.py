"""A library on disk: its catalogue, vector indexes, thumbnails and writer lock in one folder."""

from __future__ import annotations

import os
import time
import uuid
from contextlib import contextmanager
from pathlib import Path

import filelock
from sqlalchemy import select

from ..errors import PixfindError
from ..pack import VISUAL_FILE, PackManifest
from .catalogue import CATALOGUE_FILE, Catalogue, Folder, Photo, path_prefix_range
from .thumbnails import ThumbnailCache
from .vector_index import VectorIndex


def model_key(manifest: PackManifest) -> str:
    """The name embeddings are stored under: the pack name plus its image encoder's hash,
    so two different models never share vectors even if they share a name."""
    return f"{manifest.name}@{manifest.files.get(VISUAL_FILE, '')[:12]}"


class Library:
    def __init__(self, directory: str | os.PathLike):
        self.directory = Path(directory).expanduser().absolute()
        if self.directory.exists() and not self.directory.is_dir():
            raise PixfindError(f"{self.directory}: library path exists and is not a folder")
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise PixfindError(f"{self.directory}: cannot create the library folder ({e.strerror})") from None
        self.catalogue = Catalogue(self.directory / CATALOGUE_FILE)
        with self.catalogue.session() as s, s.begin():
            self.catalogue_id = self.catalogue.get_meta(s, "catalogue_id")
            if self.catalogue_id is None:
                self.catalogue_id = uuid.uuid4().hex
                self.catalogue.set_meta(s, "catalogue_id", self.catalogue_id)
        self.thumbnails = ThumbnailCache(self.directory / "thumbnails")
        self.vectors_dir = self.directory / "vectors"

    def close(self) -> None:
        self.catalogue.close()

    def __enter__(self) -> Library:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    @contextmanager
    def writer_lock(self):
        """Only one process changes a library at a time; the OS drops the lock if it dies."""
        lock = filelock.FileLock(str(self.directory / "writer.lock"))
        try:
            lock.acquire(timeout=0)
        except filelock.Timeout:
            raise PixfindError(f"{self.directory}: another pixfind is updating this library") from None
        try:
            yield
        finally:
            lock.release()

    def vector_index(self, model: str, dim: int) -> VectorIndex:
        return VectorIndex(self.vectors_dir, model, dim, self.catalogue_id).open(self.catalogue)

    def add_folder(self, path: str) -> Folder:
        """Register a folder to index; a folder inside a registered one is covered by it,
        one that contains registered folders absorbs them."""
        path = os.path.abspath(path)
        with self.catalogue.session() as s, s.begin():
            for folder in s.scalars(select(Folder)):
                if path == folder.path or path.startswith(folder.path.rstrip(os.sep) + os.sep):
                    return folder
            folder = Folder(path=path, added_at=time.time())
            s.add(folder)
            s.flush()
            lo, hi = path_prefix_range(path)
            inner = [f for f in s.scalars(select(Folder).where(Folder.path >= lo, Folder.path < hi)) if f.id != folder.id]
            for child in inner:
                for photo in s.scalars(select(Photo).where(Photo.folder_id == child.id)):
                    photo.folder_id = folder.id
                s.flush()
                s.delete(child)
            return folder
