"""Catalogue rows with random unit vectors, for the tests of the vector index and its recall."""

from __future__ import annotations

import time

import numpy as np

from desktop_app.library.catalogue import Embedding, Folder, Photo
from desktop_app.library.library_dir import Library


def add_photos(lib: Library, n: int, rng: np.random.Generator, model: str, dim: int) -> list[int]:
    """``n`` photos under one folder, each with a random unit vector for ``model``, committed in one
    transaction as the indexer does; returns their ids. Paths and fingerprints are named after the
    change numbers, which never repeat, so photos added after a deletion never clash."""
    vectors = rng.standard_normal((n, dim)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    cat = lib.catalogue
    with cat.session() as s, s.begin():
        folder = s.query(Folder).first() or Folder(path="/photos", added_at=0.0)
        s.add(folder)
        s.flush()
        first = cat.next_seq(s, n)
        ids = []
        for i, v in enumerate(vectors):
            p = Photo(folder_id=folder.id, path=f"/photos/{first + i}.jpg", size=1, mtime_ns=0,
                      fingerprint=str(first + i), file_time=0.0, indexed_at=time.time())  # fmt: skip
            s.add(p)
            s.flush()
            s.add(Embedding(photo_id=p.id, model=model, vector=v.tobytes(), seq=first + i))
            ids.append(p.id)
    return ids
