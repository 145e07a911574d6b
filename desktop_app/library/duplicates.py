"""Near-duplicate photos: groups of copies of one picture, each member checked against the group's best copy.

Two checks must agree before two files count as copies:

1. the model: their embeddings' cosine similarity reaches the threshold (calibrated per model,
   see :mod:`desktop_app.calibration`);
2. the pictures themselves, independent of any model: perceptual hashes within
   :data:`~desktop_app.calibration.HASH_LOOSE` bits and the same aspect ratio, so unrelated
   textures a weak model scores alike never group.

Groups do not chain: the best copy of a group (highest resolution, then RAW/PNG/HEIC over JPEG,
then the larger file, then the older) leads it, and every other member passes both checks against
that lead, not merely against some other member. A group is ``confident`` when every member is a
strict perceptual match of the lead; only then does the window pre-mark the others for the trash.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np
from PIL import Image
from sqlalchemy import select

from .. import calibration
from .catalogue import Embedding, Photo
from .library_dir import Library

DEFAULT_THRESHOLD = 0.95  # for a model with no (reliable) calibration
EXACT_LIMIT = 20000  # above this, neighbours come from the hnswlib index
NEIGHBOURS = 16

# Better formats first: a RAW or lossless file is the original a JPEG was made from.
_FORMAT_RANK = {
    **{ext: 0 for ext in (".dng", ".cr2", ".cr3", ".nef", ".arw", ".orf", ".rw2", ".raf", ".pef", ".srw", ".raw")},
    **{ext: 1 for ext in (".png", ".tif", ".tiff", ".heic", ".heif", ".avif", ".webp")},
}
_OTHER_FORMAT = 2


@dataclass
class Member:
    photo: Photo
    similarity: float  # the model's cosine similarity to the group's lead (1.0 for the lead)
    hash_distance: int  # perceptual-hash bits differing from the lead (0 for the lead)
    confident: bool  # a strict perceptual match of the lead at or above the threshold


@dataclass
class Group:
    members: list[Member]  # the best copy (the one to keep) first

    @property
    def confident(self) -> bool:
        return all(m.confident for m in self.members)


def keep_rank(photo: Photo) -> tuple:
    """Sort key: the copy to keep first (resolution, format, file size, age, path)."""
    pixels = (photo.width or 0) * (photo.height or 0)
    ext = os.path.splitext(str(photo.path))[1].lower()
    return (-pixels, _FORMAT_RANK.get(ext, _OTHER_FORMAT), -(photo.size or 0), photo.date, str(photo.path))


def _pairs_exact(labels: np.ndarray, matrix: np.ndarray, threshold: float, chunk: int = 2048):
    for start in range(0, len(matrix), chunk):
        sims = matrix[start : start + chunk] @ matrix.T
        rows, cols = np.nonzero(sims >= threshold)
        for r, c in zip(rows + start, cols):
            if r < c:
                yield int(labels[r]), int(labels[c]), float(sims[r - start, c])


def _pairs_index(vindex, labels: np.ndarray, matrix: np.ndarray, threshold: float, chunk: int = 4096):
    """Candidate pairs from the hnswlib neighbours; each similarity recomputed from the vectors themselves."""
    row_of = {int(label): i for i, label in enumerate(labels)}
    k = min(NEIGHBOURS, len(vindex))
    if k < 2:
        return
    for start in range(0, len(matrix), chunk):
        found, _ = vindex.index.knn_query(matrix[start : start + chunk], k=k)
        for i, row in enumerate(found):
            a = int(labels[start + i])
            for other in row:
                b = int(other)
                j = row_of.get(b)
                if j is None or b == a:
                    continue
                sim = float(matrix[start + i] @ matrix[j])
                if sim >= threshold and a < b:
                    yield a, b, sim
                elif sim >= threshold:
                    yield b, a, sim


def _aspect(photo: Photo, image: Image.Image) -> float:
    if photo.width and photo.height:
        return photo.width / photo.height  # upright, from the catalogue: more exact than a thumbnail's
    return image.width / max(1, image.height)


class _Signatures:
    """Perceptual signatures of photos, from the thumbnail cache or a small decode, computed once each."""

    def __init__(self, library: Library):
        self.library = library
        self.cache: dict[int, calibration.Signature | None] = {}

    def __call__(self, photo: Photo) -> calibration.Signature | None:
        if photo.id not in self.cache:
            self.cache[photo.id] = self._compute(photo)
        return self.cache[photo.id]

    def _compute(self, photo: Photo) -> calibration.Signature | None:
        from .decode import open_upright

        image = None
        if photo.thumbnail:
            try:
                with Image.open(self.library.thumbnails.path(photo.thumbnail)) as im:
                    image = im.convert("RGB")
            except (OSError, ValueError):
                image = None
        if image is None:
            try:
                image = open_upright(photo.path, draft_size=256)
                image.thumbnail((256, 256))
            except Exception:  # noqa: BLE001 - unreadable now (moved, damaged): it cannot be shown to be a copy
                return None
        signature = calibration.perceptual_signature(image)
        return calibration.Signature(signature.phash, signature.inner, _aspect(photo, image))


def find_groups(
    library: Library,
    model: str,
    dim: int,
    threshold: float = DEFAULT_THRESHOLD,
    confident_at: float | None = None,
) -> list[Group]:
    """Groups of copies, largest first; each led by its best copy, every member checked against it.

    ``confident_at``: the similarity a member needs (besides a strict perceptual match) for its
    group to count as confident; the threshold itself when None.
    """
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
    neighbours: dict[int, dict[int, float]] = {}
    for a, b, sim in pairs:
        neighbours.setdefault(a, {})[b] = sim
        neighbours.setdefault(b, {})[a] = sim
    if not neighbours:
        return []
    with library.catalogue.session() as s:
        ids = list(neighbours)
        photos: dict[int, Photo] = {}
        for i in range(0, len(ids), 900):
            photos.update({p.id: p for p in s.scalars(select(Photo).where(Photo.id.in_(ids[i : i + 900])))})
            s.expunge_all()
    signature = _Signatures(library)
    confident_at = threshold if confident_at is None else max(threshold, confident_at)
    assigned: set[int] = set()
    groups = []
    for lead in sorted((i for i in neighbours if i in photos), key=lambda i: keep_rank(photos[i])):
        if lead in assigned:
            continue
        lead_sig = signature(photos[lead])
        if lead_sig is None:
            continue
        members = []
        for other, sim in neighbours[lead].items():
            if other in assigned or other not in photos:
                continue
            other_sig = signature(photos[other])
            if other_sig is None or not calibration.same_picture(lead_sig, other_sig):
                continue
            strict = calibration.same_picture(lead_sig, other_sig, strict=True)
            members.append(Member(photos[other], sim, calibration.hash_distance(lead_sig, other_sig), strict and sim >= confident_at))
        if not members:
            continue
        members.sort(key=lambda m: keep_rank(m.photo))
        assigned.add(lead)
        assigned.update(m.photo.id for m in members)
        groups.append(Group([Member(photos[lead], 1.0, 0, True), *members]))
    groups.sort(key=lambda g: (-len(g.members), str(g.members[0].photo.path)))
    return groups
