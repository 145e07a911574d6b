"""Search: a query vector against one model's vectors, with catalogue filters.

A search answers photo ids and scores (:meth:`SearchEngine.ranked`): the caller loads the
catalogue rows of the page it shows, never those of every candidate. Words to find in the
photos' text (library/text_search.py) narrow the candidates first (:func:`text_candidates`);
a query of such words only is ranked by how well the text matches (:func:`text_ranked`).
NumPy and the decoders are imported when a search runs: ``Filters`` is imported by every command.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sqlalchemy import func, select

from ..errors import PixfindError
from .catalogue import Embedding, Photo, path_prefix_range
from .library_dir import Library, model_key

if TYPE_CHECKING:
    import numpy as np

    from ..encoder import Encoder
    from . import query as queries

# Up to this many candidate vectors, search exactly with NumPy: as fast as hnswlib at
# that size and it needs no index in memory.
EXACT_LIMIT = 20000


@dataclass
class Filters:
    folder: str | None = None
    after: float | None = None  # wall-clock seconds, see metadata.wall_clock
    before: float | None = None
    camera: str | None = None  # substring of make or model, case-insensitive
    has_gps: bool | None = None
    place: str | None = None  # substring of the place name (library/places.py), case-insensitive

    def active(self) -> bool:
        return any(v is not None for v in (self.folder, self.after, self.before, self.camera, self.has_gps, self.place))


@dataclass
class Result:
    rank: int
    score: float
    photo: Photo


def photo_conditions(filters: Filters) -> list:
    date = func.coalesce(Photo.taken_at, Photo.file_time)
    conditions = []
    if filters.folder is not None:
        lo, hi = path_prefix_range(os.path.abspath(filters.folder))
        conditions += [Photo.path >= lo, Photo.path < hi]
    if filters.after is not None:
        conditions.append(date >= filters.after)
    if filters.before is not None:
        conditions.append(date < filters.before)
    if filters.camera:
        pattern = f"%{filters.camera.lower()}%"
        conditions.append(
            func.lower(func.coalesce(Photo.camera_make, "") + " " + func.coalesce(Photo.camera_model, "")).like(pattern)
        )
    if filters.has_gps is not None:
        conditions.append(Photo.gps_lat.is_not(None) if filters.has_gps else Photo.gps_lat.is_(None))
    if filters.place:
        escaped = filters.place.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        conditions.append(func.lower(func.coalesce(Photo.place, "")).like(f"%{escaped}%", escape="\\"))
    return conditions


def text_candidates(catalogue, include: list[str], exclude: list[str]) -> tuple[set[int] | None, set[int]]:
    """(the photos whose text has every word of ``include``, None when there is none to have;
    the photos whose text has any word of ``exclude``)."""
    from .text_search import photo_ids_matching

    within = photo_ids_matching(catalogue, include) if include else None
    without: set[int] = set()
    for term in exclude:
        without |= photo_ids_matching(catalogue, [term])
    return within, without


def text_ranked(
    catalogue, include: list[str], exclude: list[str], filters: Filters | None = None, limit: int = 20
) -> tuple[list[int], list[float]]:
    """(photo ids, scores) of the photos whose text has every word of ``include`` and none of
    ``exclude``, under the filters, best text match first (text_search.relevance); the image
    model is not needed."""
    from .text_search import relevance

    within, without = text_candidates(catalogue, include, exclude)
    ids = (within or set()) - without
    conditions = photo_conditions(filters or Filters())
    if ids and conditions:
        with catalogue.session() as s:
            ids = {pid for pid in s.scalars(select(Photo.id).where(Photo.id.in_(sorted(ids)), *conditions))}
    scores = relevance(catalogue, include, ids)
    best = sorted(scores, key=lambda pid: (-scores[pid], pid))[:limit]
    return best, [scores[pid] for pid in best]


class SearchEngine:
    def __init__(self, library: Library, encoder: Encoder):
        self.library = library
        self.encoder = encoder
        self.model = model_key(encoder.manifest)
        self._vindex = None
        self._count: tuple[int, int] | None = None  # (catalogue change number, embedded photos)

    def refresh(self) -> None:
        """Apply photos indexed or removed since the vector index was opened (a no-op until it is).

        Not thread-safe against a concurrent search: callers that index while searching take turns.
        """
        if self._vindex is not None:
            self._vindex.catch_up(self.library.catalogue)

    def embedded_count(self) -> int:
        """Photos with a vector of this model. Counting reads a whole index of the catalogue (tens of
        ms at 100,000 photos), so the count is kept until the catalogue's change number moves:
        every vector added or removed takes a new one (see ``Catalogue.next_seq``)."""
        catalogue = self.library.catalogue
        with catalogue.session() as s:
            seq = catalogue.current_seq(s)
            cached = self._count
            if cached is not None and cached[0] == seq:
                return cached[1]
            count = s.scalar(select(func.count()).select_from(Embedding).where(Embedding.model == self.model))
        self._count = (seq, count)  # read in that order: a change in between only costs a recount
        return count

    def query_vector(self, terms: list[queries.Term]) -> np.ndarray:
        from . import query as queries
        from .decode import open_upright

        return queries.combine(
            terms,
            self.encoder.encode_texts,
            lambda paths: self.encoder.encode_images([open_upright(p) for p in paths]),
        )

    def ranked(
        self,
        vector: np.ndarray,
        filters: Filters | None = None,
        limit: int = 20,
        min_score: float | None = None,
        within: set[int] | None = None,
        without: set[int] | None = None,
    ) -> tuple[list[int], list[float]]:
        """(photo ids, scores) of the ``limit`` photos closest to ``vector``, best first, under the
        filters, among the photos ``within`` (None: all) and none of ``without`` (see
        :func:`text_candidates`); no catalogue row is loaded."""
        filters = filters or Filters()
        total = self.embedded_count()
        if total == 0:
            raise PixfindError(
                f"the library has no photos indexed with model {self.encoder.name!r}: run `pixfind index PATH` first"
            )
        conditions = photo_conditions(filters)
        with self.library.catalogue.session() as s:
            allowed = None
            if conditions:
                allowed = set(
                    s.scalars(
                        select(Photo.id)
                        .join(Embedding, Embedding.photo_id == Photo.id)
                        .where(Embedding.model == self.model, *conditions)
                    )
                )
            if within is not None:
                allowed = set(within) if allowed is None else allowed & set(within)
            if without:
                allowed = None if allowed is None else allowed - without
            candidates = total if allowed is None else len(allowed)
            if allowed is not None and not allowed:
                labels, scores = [], []
            elif candidates <= EXACT_LIMIT:
                only = allowed if within is not None else None  # filters alone: joined, not listed
                labels, scores = self._exact(s, vector, conditions, limit, only, without)
            else:
                labels, scores = self._approximate(vector, allowed, limit, without)
        ids, kept = [int(x) for x in labels], [float(x) for x in scores]
        if min_score is not None:
            pairs = [(label, sc) for label, sc in zip(ids, kept) if sc >= min_score]
            ids, kept = [label for label, _ in pairs], [sc for _, sc in pairs]
        return ids, kept

    def search(
        self,
        vector: np.ndarray,
        filters: Filters | None = None,
        limit: int = 20,
        min_score: float | None = None,
        sort: str = "relevance",
    ) -> list[Result]:
        """:meth:`ranked` with each photo's catalogue row (photos removed meanwhile left out)."""
        if sort not in ("relevance", "date"):
            raise PixfindError(f"unknown sort order {sort!r} (relevance or date)")
        ids, scores = self.ranked(vector, filters, limit, min_score)
        with self.library.catalogue.session() as s:
            photos = {p.id: p for p in s.scalars(select(Photo).where(Photo.id.in_(ids)))}
        hits = [(photos[label], sc) for label, sc in zip(ids, scores) if label in photos]
        if sort == "date":
            hits.sort(key=lambda h: h[0].date, reverse=True)
        return [Result(i + 1, sc, p) for i, (p, sc) in enumerate(hits)]

    def _exact(self, s, vector, conditions, limit, allowed=None, without=None):
        import numpy as np

        stmt = select(Embedding.photo_id, Embedding.vector).where(Embedding.model == self.model)
        if allowed is not None:  # at most EXACT_LIMIT ids, the filters already applied: under SQLite's variable limit
            stmt = stmt.where(Embedding.photo_id.in_(sorted(allowed)))
        elif conditions:
            stmt = stmt.join(Photo, Photo.id == Embedding.photo_id).where(*conditions)
        rows = s.execute(stmt).all()
        if without:
            rows = [r for r in rows if r[0] not in without]
        if not rows:
            return np.zeros(0, np.int64), np.zeros(0, np.float32)
        labels = np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))
        matrix = np.frombuffer(b"".join(r[1] for r in rows), dtype=np.float32).reshape(len(rows), -1)
        scores = matrix @ vector
        k = min(limit, len(scores))
        top = np.argpartition(-scores, k - 1)[:k]
        top = top[np.argsort(-scores[top], kind="stable")]
        return labels[top], scores[top]

    def _approximate(self, vector, allowed, limit, without=None):
        if self._vindex is None:
            self._vindex = self.library.vector_index(self.model, self.encoder.dim)
            if self._vindex.dirty:  # rebuilt or caught up: keep the work unless an indexer is running
                try:
                    with self.library.writer_lock():
                        self._vindex.save()
                except (PixfindError, OSError):
                    pass
        if allowed is not None:
            keep = allowed.__contains__
        elif without:
            keep = lambda label: label not in without  # noqa: E731
        else:
            keep = None
        try:
            return self._vindex.search(vector, limit, keep)
        except RuntimeError:  # hnswlib found fewer than k under a very selective filter: ask for those there are
            # Counted in the index: ``allowed`` may name photos without a vector of this model.
            passing = len(self._vindex) if keep is None else sum(1 for label in self._vindex.live if keep(label))
            return self._vindex.search(vector, min(limit, passing), keep)
