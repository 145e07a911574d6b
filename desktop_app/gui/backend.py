"""What the window asks of the engine, as plain functions run on worker threads.

Everything here uses the same entry points as the CLI (``desktop_app.commands.library``):
``Library``, ``model_store.resolve`` + ``Encoder``, ``SearchEngine.query_vector`` /
``search`` with ``Filters``, ``duplicates.find_groups``. Results are copied into small
:class:`Item` records so that the GUI never touches ORM objects or a session.
"""

from __future__ import annotations

import os
import re
import shutil
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from sqlalchemy import func, select

from .. import model_store
from ..encoder import Encoder
from ..errors import PixfindError
from ..library import query as queries
from ..library.catalogue import Embedding, Folder, Photo, SkippedFile
from ..library.library_dir import Library, model_key
from ..library.search import Filters, SearchEngine, photo_conditions

FIRST_PAGE = 240  # results shown at once while the full list is fetched behind them
_NOT = re.compile(r"\s+(?:but\s+)?(?:not|without|no)\s+", re.I)


class Item:
    """One photo in a result list: what the grid, the detail view and the filters need."""

    __slots__ = ("id", "path", "thumbnail", "date", "score", "width", "height", "size", "camera", "gps")

    def __init__(self, id, path, thumbnail, date, score, width, height, size, camera, gps):
        self.id, self.path, self.thumbnail, self.date, self.score = id, path, thumbnail, date, score
        self.width, self.height, self.size, self.camera, self.gps = width, height, size, camera, gps

    @property
    def name(self) -> str:
        return os.path.basename(self.path)


_COLUMNS = (
    Photo.id,
    Photo.path,
    Photo.thumbnail,
    func.coalesce(Photo.taken_at, Photo.file_time),
    Photo.width,
    Photo.height,
    Photo.size,
    Photo.camera_make,
    Photo.camera_model,
    Photo.gps_lat,
    Photo.gps_lon,
)


def _camera(make, model) -> str | None:
    make, model = (make or "").strip(), (model or "").strip()
    if model.lower().startswith(make.lower()):
        make = ""
    return " ".join(p for p in (make, model) if p) or None


def _item(row, score: float) -> Item:
    pid, path, thumb, date, w, h, size, make, model, lat, lon = row
    return Item(pid, path, thumb, date, score, w, h, size, _camera(make, model), (lat, lon) if lat is not None else None)


@dataclass
class SearchRequest:
    text: str = ""
    images: list[str] = field(default_factory=list)  # example image files (or photos of the library)
    balance: float = 0.5  # 0: only the words count, 1: only the images
    filters: Filters = field(default_factory=Filters)
    min_score: float | None = None
    sort: str = "relevance"  # or "date"
    limit: int = 10000

    @property
    def empty(self) -> bool:
        return not self.text.strip() and not self.images


@dataclass
class SearchResult:
    request: SearchRequest
    items: list[Item]
    complete: bool  # False: the first page only, the rest follows
    seconds: float
    browse: bool = False  # no query: the library by date


def natural_query(text: str) -> str:
    """Accept "beach not people" as well as rclip's "beach - people"."""
    return _NOT.sub(" - ", " " + text.strip()).strip().lstrip("- ").strip() if text.strip() else ""


class Backend:
    """The open library and the active model, shared by the worker threads.

    SQLite (WAL) and ONNX Runtime sessions are safe to use from several threads; the
    indexer takes the library's writer lock itself.
    """

    def __init__(self, library_dir: str | os.PathLike):
        self.library = Library(library_dir)
        self.encoder: Encoder | None = None
        self.engine: SearchEngine | None = None
        self.model_name: str | None = None
        self._lock = threading.Lock()
        self._index_lock = threading.Lock()
        self._text_vectors: dict[tuple[str, str], np.ndarray] = {}  # search as you type: backspace costs no encoding

    def close(self) -> None:
        self.library.close()

    # ------------------------------------------------------------------ model

    def load_model(self, name: str | None = None) -> str:
        """Open the active (or named) pack; PixfindError when none is installed."""
        pack = model_store.resolve(name)
        encoder = Encoder(pack.path, verify=False)
        with self._lock:
            self.encoder, self.engine, self.model_name = encoder, SearchEngine(self.library, encoder), pack.name
        return pack.name

    def warm_up(self) -> None:
        """Open the vector index and run the text encoder once, so the first query typed is fast."""
        engine = self.require_engine()
        vector = engine.encoder.encode_texts(["a photo"])[0]
        if engine.embedded_count():
            engine.search(vector, None, 1)  # a large library: loads its hnswlib index now

    def require_engine(self) -> SearchEngine:
        if self.engine is None:
            self.load_model()
        return self.engine

    @property
    def model(self) -> str | None:
        return model_key(self.encoder.manifest) if self.encoder else None

    # ------------------------------------------------------------------ search

    def _stored_vectors(self, paths: list[str]) -> dict[str, np.ndarray]:
        """Embeddings already in the catalogue for these files: "find similar" needs no decoding."""
        if not paths or self.encoder is None:
            return {}
        with self.library.catalogue.session() as s:
            rows = s.execute(
                select(Photo.path, Embedding.vector)
                .join(Embedding, Embedding.photo_id == Photo.id)
                .where(Embedding.model == self.model, Photo.path.in_([os.fsencode(p) for p in paths]))
            ).all()
        return {p: np.frombuffer(v, dtype=np.float32) for p, v in rows}

    def query_vector(self, request: SearchRequest) -> np.ndarray:
        engine = self.require_engine()
        terms: list[queries.Term] = []
        text = natural_query(request.text)
        if text:
            terms += queries.parse(text)
        for path in request.images:
            if not os.path.isfile(path):
                raise PixfindError(f"{path}: no such image file")
            terms.append(queries.Term("image", path, 1.0))
        if not terms:
            raise PixfindError("nothing to search for")
        has_text = any(t.kind == "text" for t in terms)
        if request.images and has_text:  # the balance slider: words against images
            b = min(max(request.balance, 0.02), 0.98)
            terms = [queries.Term(t.kind, t.value, t.weight * 2 * (b if t.kind == "image" else 1 - b)) for t in terms]
        if not any(t.weight > 0 for t in terms):
            raise PixfindError("a query needs at least one positive term")
        stored = self._stored_vectors([t.value for t in terms if t.kind == "image"])

        def embed_images(paths):
            missing = [p for p in paths if p not in stored]
            if missing:
                from ..library.decode import open_upright

                for p, v in zip(missing, engine.encoder.encode_images([open_upright(p) for p in missing])):
                    stored[p] = v
            return np.stack([stored[p] for p in paths])

        def embed_texts(texts):
            key = self.model
            missing = [t for t in texts if (key, t) not in self._text_vectors]
            if missing:
                for t, v in zip(missing, engine.encoder.encode_texts(missing)):
                    if len(self._text_vectors) >= 256:
                        self._text_vectors.pop(next(iter(self._text_vectors)))
                    self._text_vectors[(key, t)] = v
            return np.stack([self._text_vectors[(key, t)] for t in texts])

        return queries.combine(terms, embed_texts, embed_images)

    def search(self, request: SearchRequest, limit: int) -> SearchResult:
        start = time.perf_counter()
        if request.empty:
            items = self.browse(request.filters, request.sort, limit)
            return SearchResult(request, items, len(items) < limit, time.perf_counter() - start, browse=True)
        engine = self.require_engine()
        vector = self.query_vector(request)
        # A large library searches through the engine's hnswlib index; photos indexed (or
        # removed) since it was opened are applied to it first. hnswlib must not be searched
        # while it changes, so searches of such a library take turns (small ones use NumPy).
        with self._index_lock:
            engine.refresh()
            try:
                results = engine.search(vector, request.filters, limit, request.min_score, "relevance")
            except PixfindError:
                if engine.embedded_count() == 0:
                    return SearchResult(request, [], True, time.perf_counter() - start)
                raise
        items = self._items([(r.photo.id, r.score) for r in results])
        if request.sort == "date":
            items.sort(key=lambda it: it.date or 0, reverse=True)
        return SearchResult(request, items, len(results) < limit, time.perf_counter() - start)

    def _items(self, scored: list[tuple[int, float]]) -> list[Item]:
        scores = dict(scored)
        rows = {}
        ids = list(scores)
        with self.library.catalogue.session() as s:
            for i in range(0, len(ids), 30000):
                for row in s.execute(select(*_COLUMNS).where(Photo.id.in_(ids[i : i + 30000]))):
                    rows[row[0]] = row
        return [_item(rows[pid], sc) for pid, sc in scored if pid in rows]

    def browse(self, filters: Filters, sort: str, limit: int) -> list[Item]:
        """No query: the library's photos, newest first (the model is not needed)."""
        date = func.coalesce(Photo.taken_at, Photo.file_time)
        stmt = select(*_COLUMNS).where(*photo_conditions(filters)).order_by(date.desc(), Photo.id.desc()).limit(limit)
        with self.library.catalogue.session() as s:
            return [_item(row, 0.0) for row in s.execute(stmt)]

    def vectors(self, ids: list[int]) -> dict[int, np.ndarray]:
        if self.encoder is None:
            return {}
        out = {}
        with self.library.catalogue.session() as s:
            for i in range(0, len(ids), 30000):
                stmt = select(Embedding.photo_id, Embedding.vector).where(
                    Embedding.model == self.model, Embedding.photo_id.in_(ids[i : i + 30000])
                )
                out.update((pid, np.frombuffer(v, dtype=np.float32)) for pid, v in s.execute(stmt))
        return out

    # ------------------------------------------------------------------ library facts

    def overview(self) -> dict:
        """Folders with photo counts, totals, cameras and skipped files, for the panels and filters."""
        cat = self.library.catalogue
        with cat.session() as s:
            counts = dict(s.execute(select(Photo.folder_id, func.count()).group_by(Photo.folder_id)).all())
            folders = [(f.id, f.path, counts.get(f.id, 0), os.path.isdir(f.path)) for f in s.scalars(select(Folder).order_by(Folder.path))]
            photos = sum(counts.values())
            embedded = (
                s.scalar(select(func.count()).select_from(Embedding).where(Embedding.model == self.model)) if self.model else 0
            )
            cameras = sorted(
                {
                    c
                    for make, model in s.execute(select(Photo.camera_make, Photo.camera_model).distinct())
                    if (c := _camera(make, model))
                }
            )
            skipped = [(r.path, r.reason) for r in s.scalars(select(SkippedFile).order_by(SkippedFile.path))]
            span = s.execute(select(func.min(func.coalesce(Photo.taken_at, Photo.file_time)), func.max(func.coalesce(Photo.taken_at, Photo.file_time)))).one()
        return {"folders": folders, "photos": photos, "embedded": embedded, "cameras": cameras, "skipped": skipped, "span": tuple(span)}

    def remove_folder(self, folder_id: int) -> None:
        """Forget a folder and its photos (the files stay on disk); the index drops their vectors."""
        from ..library.indexer import delete_photos

        with self.library.writer_lock():
            with self.library.catalogue.session() as s, s.begin():
                ids = list(s.scalars(select(Photo.id).where(Photo.folder_id == folder_id)))
                for i in range(0, len(ids), 30000):
                    delete_photos(s, self.library.catalogue, ids[i : i + 30000])
                folder = s.get(Folder, folder_id)
                if folder is not None:
                    s.delete(folder)

    def duplicates(self, threshold: float):
        from ..library.duplicates import find_groups

        self.require_engine()
        groups = find_groups(self.library, self.model, self.encoder.dim, threshold)
        by_id = {}
        for group in groups:
            for photo, _ in group:
                by_id[photo.id] = None
        items = {it.id: it for it in self._items([(pid, 0.0) for pid in by_id])}
        return [[(items[p.id], sim) for p, sim in g if p.id in items] for g in groups]


def arrange(vectors: np.ndarray, columns: int, seed: int = 1) -> np.ndarray:
    """Order of the rows of ``vectors`` that lays them out on a grid ``columns`` wide with
    similar photos side by side (FLAS, Barthel et al. 2023, through ``vc-flas``)."""
    n = len(vectors)
    columns = max(1, min(columns, n))
    if n < 4 or columns < 2:
        return np.arange(n)
    rows = -(-n // columns)
    if rows < 2:
        return np.arange(n)
    import vc_flas

    features = np.ascontiguousarray(vectors, dtype=np.float32)
    best, best_cost = None, np.inf
    # FLAS is a heuristic; on small grids a few seeds are cheap and visibly better.
    for s in range(seed, seed + (4 if n <= 400 else 1)):
        grid = vc_flas.Grid.from_features(features, size=(rows, columns))
        labels = vc_flas.flas(grid, seed=s).get_sorted_labels().ravel()
        order = labels[labels >= 0].astype(np.int64)
        cost = _neighbour_distance(features[order], columns)
        if cost < best_cost:
            best, best_cost = order, cost
    return best


def _neighbour_distance(ordered: np.ndarray, columns: int) -> float:
    """Mean distance between horizontally and vertically adjacent cells of the laid-out grid."""
    n = len(ordered)
    idx = np.arange(n)
    right = idx[(idx % columns != columns - 1) & (idx + 1 < n)]
    down = idx[idx + columns < n]
    d = np.concatenate(
        [np.linalg.norm(ordered[right] - ordered[right + 1], axis=1), np.linalg.norm(ordered[down] - ordered[down + columns], axis=1)]
    )
    return float(d.mean()) if len(d) else 0.0


def export_files(paths: list[str], target: str, progress=None) -> int:
    """Copy photos into a folder, never overwriting: a clash gets " (2)", " (3)"... appended."""
    target_dir = Path(target)
    if not target_dir.is_dir():
        raise PixfindError(f"{target}: not a folder")
    for i, src in enumerate(paths):
        base, ext = os.path.splitext(os.path.basename(src))
        dest, n = target_dir / f"{base}{ext}", 1
        while dest.exists():
            n += 1
            dest = target_dir / f"{base} ({n}){ext}"
        try:
            shutil.copy2(src, dest)
        except OSError as e:
            raise PixfindError(f"{src}: cannot copy to {target} ({e.strerror or e})") from None
        if progress:
            progress((i + 1, len(paths)))
    return len(paths)
