"""Near-duplicate photos: groups whose embeddings are all linked by a high cosine similarity."""

from __future__ import annotations

import numpy as np
from sqlalchemy import select

from .catalogue import Embedding, Photo
from .library_dir import Library
from .vector_index import VectorIndex

DEFAULT_THRESHOLD = 0.95
EXACT_LIMIT = 20000  # above this, neighbours come from the hnswlib index
NEIGHBOURS = 16


class _UnionFind:
    def __init__(self):
        self.parent: dict[int, int] = {}

    def find(self, x: int) -> int:
        self.parent.setdefault(x, x)
        while self.parent[x] != x:
            self.parent[x] = self.parent[self.parent[x]]
            x = self.parent[x]
        return x

    def merge(self, a: int, b: int) -> None:
        self.parent[self.find(a)] = self.find(b)

    def groups(self) -> list[list[int]]:
        out: dict[int, list[int]] = {}
        for x in self.parent:
            out.setdefault(self.find(x), []).append(x)
        return list(out.values())


def _pairs_exact(labels: np.ndarray, matrix: np.ndarray, threshold: float, chunk: int = 2048):
    for start in range(0, len(matrix), chunk):
        sims = matrix[start : start + chunk] @ matrix.T
        rows, cols = np.nonzero(sims >= threshold)
        for r, c in zip(rows + start, cols):
            if r < c:
                yield int(labels[r]), int(labels[c])


def _pairs_index(vindex: VectorIndex, labels: np.ndarray, matrix: np.ndarray, threshold: float, chunk: int = 4096):
    k = min(NEIGHBOURS, len(labels))
    for start in range(0, len(matrix), chunk):
        found, distances = vindex.index.knn_query(matrix[start : start + chunk], k=k)
        for i, (row, dist) in enumerate(zip(found, distances)):
            for other in row[1.0 - dist >= threshold]:
                if int(other) != int(labels[start + i]):
                    yield int(labels[start + i]), int(other)


def find_groups(library: Library, model: str, dim: int, threshold: float = DEFAULT_THRESHOLD) -> list[list[tuple[Photo, float]]]:
    """Groups of near-duplicates, largest first; each photo with its similarity to the group's first."""
    with library.catalogue.session() as s:
        rows = s.execute(select(Embedding.photo_id, Embedding.vector).where(Embedding.model == model)).all()
    rows = [r for r in rows if len(r[1]) == dim * 4]  # a damaged blob is dropped when the library opens
    if len(rows) < 2:
        return []
    labels = np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))
    matrix = np.frombuffer(b"".join(r[1] for r in rows), dtype=np.float32).reshape(len(rows), dim)
    if len(rows) <= EXACT_LIMIT:
        pairs = _pairs_exact(labels, matrix, threshold)
    else:
        pairs = _pairs_index(library.vector_index(model, dim), labels, matrix, threshold)
    groups = _UnionFind()
    for a, b in pairs:
        groups.merge(a, b)
    clusters = [sorted(g) for g in groups.groups() if len(g) > 1]
    if not clusters:
        return []
    row_of = {int(label): i for i, label in enumerate(labels)}
    with library.catalogue.session() as s:
        ids = [i for c in clusters for i in c]
        photos = {p.id: p for p in s.scalars(select(Photo).where(Photo.id.in_(ids)))}
    result = []
    for cluster in clusters:
        # Lead with the largest photo: the one a user most likely wants to keep.
        cluster.sort(key=lambda i: -((photos[i].width or 0) * (photos[i].height or 0)))
        lead = matrix[row_of[cluster[0]]]
        result.append([(photos[i], float(matrix[row_of[i]] @ lead)) for i in cluster])
    result.sort(key=lambda g: (-len(g), g[0][0].path))
    return result
