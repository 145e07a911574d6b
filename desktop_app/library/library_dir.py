"""A library on disk: its catalogue, vector indexes, thumbnails and writer lock in one folder."""

from __future__ import annotations

import errno
import os
import time
from contextlib import contextmanager
from pathlib import Path

import filelock
from sqlalchemy import delete, func, select

from ..errors import PixfindError
from ..pack import VISUAL_FILE, PackManifest
from .catalogue import (
    CATALOGUE_FILE,
    Catalogue,
    CatalogueDamaged,
    Embedding,
    Folder,
    LibraryReadOnly,
    Photo,
    VectorDeletion,
    path_prefix_range,
)
from .thumbnails import ThumbnailCache
from .vector_index import VectorIndex


def find_damaged_vectors(catalogue: Catalogue) -> list[tuple[int, str]]:
    """(photo id, model) of every vector blob whose length differs from its model's usual one.

    Uses the (model, length(vector)) index: a few index lookups per model when all is well.
    """
    damaged = []
    with catalogue.session() as s:
        length = func.length(Embedding.vector)
        model = s.scalar(select(func.min(Embedding.model)))
        while model is not None:
            lo = s.scalar(select(func.min(length)).where(Embedding.model == model))
            hi = s.scalar(select(func.max(length)).where(Embedding.model == model))
            if lo != hi or lo is None or lo % 4:
                counts = s.execute(
                    select(length, func.count()).where(Embedding.model == model).group_by(length)
                ).all()
                plausible = [(n, size) for size, n in counts if size and size % 4 == 0]
                usual = max(plausible)[1] if plausible else -1
                damaged += [
                    (pid, model)
                    for pid in s.scalars(select(Embedding.photo_id).where(Embedding.model == model, length != usual))
                ]
            model = s.scalar(select(func.min(Embedding.model)).where(Embedding.model > model))
    return damaged


def model_key(manifest: PackManifest) -> str:
    """The name embeddings are stored under: the pack name plus its image encoder's hash,
    so two different models never share vectors even if they share a name."""
    return f"{manifest.name}@{manifest.files.get(VISUAL_FILE, '')[:12]}"


class LibraryBusy(PixfindError):
    """Another process holds the library's writer lock."""


LOCK_FILE = "writer.lock"


class Library:
    def __init__(self, directory: str | os.PathLike):
        self.directory = Path(directory).expanduser().absolute()
        if self.directory.exists() and not self.directory.is_dir():
            raise PixfindError(f"{self.directory}: library path exists and is not a folder")
        if not self.directory.exists():
            try:
                self.directory.mkdir(parents=True, exist_ok=True)
            except OSError as e:
                raise PixfindError(f"{self.directory}: cannot create the library folder ({e.strerror})") from None
        self.catalogue = Catalogue(self.directory / CATALOGUE_FILE)
        self.read_only = self.catalogue.read_only
        self.catalogue_id = self.catalogue.catalogue_id
        self.thumbnails = ThumbnailCache(self.directory / "thumbnails")
        self.vectors_dir = self.directory / "vectors"
        self._locked = 0
        if not self.read_only:
            self.thumbnails.clean_stale()
        self._drop_damaged_vectors()

    def close(self) -> None:
        self.catalogue.close()

    def __enter__(self) -> Library:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def require_writable(self, what: str = "this command changes the library") -> None:
        if self.read_only:
            raise LibraryReadOnly(f"{self.directory}: the library is read-only ({what}; searching and `status` still work)")

    def _lock_path(self) -> Path:
        path = self.directory / LOCK_FILE
        if path.is_dir() and not path.is_symlink():
            # Only a file works as a lock; an empty folder in its place is safe to replace.
            try:
                path.rmdir()
            except OSError:
                raise PixfindError(
                    f"{path}: the lock path is a folder with files in it, not a lock file; move it away"
                ) from None
        return path

    @contextmanager
    def writer_lock(self, timeout: float = 0):
        """Only one process changes a library at a time; the OS drops the lock if it dies.

        ``timeout`` > 0 waits that many seconds for another process's lock; LibraryBusy after.
        """
        self.require_writable()
        if self._locked:  # re-entrant within this process
            self._locked += 1
            try:
                yield
            finally:
                self._locked -= 1
            return
        path = self._lock_path()
        lock = filelock.FileLock(str(path))
        try:
            lock.acquire(timeout=timeout)
        except filelock.Timeout:
            raise LibraryBusy(f"{self.directory}: another pixfind is updating this library") from None
        except OSError as e:
            if e.errno in (errno.EROFS, errno.EACCES, errno.EPERM):
                raise LibraryReadOnly(f"{self.directory}: the library is read-only ({e.strerror})") from None
            raise PixfindError(f"{path}: cannot take the library's lock ({e.strerror or e})") from None
        self._locked = 1
        try:
            self.thumbnails.clean_stale(all_temporary=True)  # only writers write thumbnails
            yield
        finally:
            self._locked = 0
            lock.release()

    def vector_index(self, model: str, dim: int) -> VectorIndex:
        return VectorIndex(self.vectors_dir, model, dim, self.catalogue_id).open(self.catalogue)

    def _drop_damaged_vectors(self) -> None:
        """Vectors whose blob has the wrong length (damage from outside) are dropped, so the photo
        is encoded again by the next `pixfind index`; cheap: reads an index of lengths only."""
        damaged = find_damaged_vectors(self.catalogue)
        if not damaged:
            return
        if self.read_only:
            raise CatalogueDamaged(
                self.catalogue.path, f"{len(damaged)} vectors have the wrong length and the library is read-only"
            )
        with self.catalogue.session() as s, s.begin():
            first = self.catalogue.next_seq(s, len(damaged))
            for i, (photo_id, model) in enumerate(damaged):
                s.execute(delete(Embedding).where(Embedding.photo_id == photo_id, Embedding.model == model))
                s.add(VectorDeletion(model=model, photo_id=photo_id, seq=first + i))

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
