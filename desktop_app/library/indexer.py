"""Incremental indexing: scan folders, diff against the catalogue, encode what is new.

Decoding runs in a thread pool (Pillow and NumPy release the GIL) while the main thread
encodes the previous batch with ONNX Runtime. Each batch of embeddings is written in one
transaction, so a crash never leaves a photo half-indexed; the next run skips every
photo that already has an embedding for the model, which is how it resumes.

A run with nothing to encode imports no NumPy, Pillow, ONNX Runtime or hnswlib: decoding is
imported when a photo must be encoded, and the vector index is opened only when it does not
already reflect the catalogue (its marker's change number, count and checksum).
"""

from __future__ import annotations

import os
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from sqlalchemy import delete, select

from ..encoder import Encoder
from ..errors import Cancelled, PixfindError
from . import places
from .catalogue import DiskFull, Embedding, OcrDone, OcrLine, Photo, SkippedFile, VectorDeletion, path_prefix_range
from .fingerprint import fingerprint
from .library_dir import Library, model_key
from .metadata import file_wall_clock
from .scanner import os_error_reason, scan
from .vector_index import VectorIndex

if TYPE_CHECKING:
    from .ocr_pass import OcrReport

Progress = Callable[[int, int], None]  # (photos done, photos to encode)


@dataclass
class IndexReport:
    found: int = 0
    encoded: int = 0
    unchanged: int = 0
    moved: int = 0
    copied: int = 0
    removed: int = 0
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (path, reason)
    missing_folders: list[str] = field(default_factory=list)
    interrupted: bool = False
    index_error: str | None = None
    seconds: float = 0.0
    timings: dict[str, float] = field(default_factory=dict)
    ocr: OcrReport | None = None  # the OCR pass run after it (services/library.py), if any

    def add_time(self, stage: str, seconds: float) -> None:
        self.timings[stage] = self.timings.get(stage, 0.0) + seconds


@dataclass
class _Job:
    path: str
    size: int
    mtime_ns: int
    fingerprint: str
    folder_id: int
    photo_id: int | None  # None: a new photo
    content_changed: bool = False  # new content under a known path: other models' vectors are stale


def _reason(path: str, message: str) -> str:
    """The reason without the path that load_image puts in front of it."""
    return message[len(path) + 2 :] if message.startswith(f"{path}: ") else message


def _space_needed(photos: int, dim: int) -> int:
    """A generous estimate of the disk space indexing ``photos`` more photos takes: the vector in
    the catalogue and in the index, the rows, a thumbnail, plus room for SQLite's journal."""
    return max(0, photos) * (2 * 4 * dim + 1024 + 24 * 1024) + 8 * 2**20


def delete_photos(session, catalogue, photo_ids: Sequence[int]) -> None:
    """Remove photos and queue their vectors' removal from every model's index."""
    if not photo_ids:
        return
    rows = session.execute(select(Embedding.photo_id, Embedding.model).where(Embedding.photo_id.in_(photo_ids))).all()
    if rows:
        first = catalogue.next_seq(session, len(rows))
        session.add_all(VectorDeletion(model=m, photo_id=p, seq=first + i) for i, (p, m) in enumerate(rows))
    session.execute(delete(Photo).where(Photo.id.in_(photo_ids)))


class Indexer:
    def __init__(
        self,
        library: Library,
        encoder: Encoder,
        *,
        batch_size: int = 32,
        workers: int | None = None,
        progress: Progress | None = None,
        cancel: threading.Event | None = None,
        save_every: float = 120.0,
    ):
        self.library = library
        self.catalogue = library.catalogue
        self.encoder = encoder
        self.model = model_key(encoder.manifest)
        self.batch_size = batch_size
        self.workers = workers or os.cpu_count() or 1
        self.progress = progress or (lambda done, total: None)
        self.cancel = cancel or threading.Event()
        self.save_every = save_every

    # ------------------------------------------------------------------ the run

    def run(self, paths: Sequence[str] | None = None) -> IndexReport:
        report = IndexReport()
        start = time.perf_counter()
        with self.library.writer_lock():
            roots = self._roots(paths, report)
            vindex: VectorIndex | None = None  # opened once something must be encoded
            jobs: list[_Job] = []
            try:
                for folder_id, root in roots:
                    if self.cancel.is_set():
                        raise Cancelled("indexing cancelled")
                    jobs += self._plan(folder_id, root, report)
                self._fill_places()
                if jobs:
                    vindex = self._open_index(report)
                    self._encode(jobs, vindex, report)
            except Cancelled:
                report.interrupted = True
            except DiskFull as e:  # each batch is its own transaction: what was committed stays
                raise e.needing(_space_needed(len(jobs) - report.encoded, self.encoder.dim)) from None
            finally:
                if vindex is None:
                    vindex = self._stale_index(report)
                if vindex is not None:
                    self._save(vindex, report)
        report.seconds = time.perf_counter() - start
        return report

    def _roots(self, paths: Sequence[str] | None, report: IndexReport) -> list[tuple[int, str]]:
        roots = []
        if paths:
            for path in paths:
                if not os.path.isdir(path):
                    what = "not a folder" if os.path.exists(path) else "no such folder"
                    raise PixfindError(f"{path}: {what}")
                roots.append((self.library.add_folder(path).id, os.path.abspath(path)))
        else:
            for folder in self.catalogue.folders():
                if os.path.isdir(folder.path):
                    roots.append((folder.id, folder.path))
                else:
                    # Maybe an unplugged drive: keep its photos, do not treat them as deleted.
                    report.missing_folders.append(folder.path)
        return roots

    def _open_index(self, report: IndexReport) -> VectorIndex:
        t = time.perf_counter()
        vindex = self.library.vector_index(self.model, self.encoder.dim)
        report.add_time("index", time.perf_counter() - t)
        return vindex

    def _stale_index(self, report: IndexReport) -> VectorIndex | None:
        """The vector index opened (caught up, or rebuilt) when nothing was encoded but its saved
        file does not reflect the catalogue (moves, copies, removals, or a missing or damaged
        file); None when it does, without loading it."""
        t = time.perf_counter()
        saved = VectorIndex(self.library.vectors_dir, self.model, self.encoder.dim, self.library.catalogue_id)
        current = saved.is_current(self.catalogue, writer=True)
        report.add_time("index", time.perf_counter() - t)
        return None if current else self._open_index(report)

    def _save(self, vindex: VectorIndex, report: IndexReport) -> None:
        t = time.perf_counter()
        try:
            vindex.catch_up(self.catalogue)
            if vindex.dirty:
                vindex.save()
        except OSError as e:
            report.index_error = (
                f"{vindex.directory}: cannot save the vector index ({e.strerror or e}); "
                "the catalogue is intact and the index will be rebuilt from it"
            )
        report.add_time("index", time.perf_counter() - t)

    # ------------------------------------------------------------------ planning

    def _plan(self, folder_id: int, root: str, report: IndexReport) -> list[_Job]:
        """Scan one folder and apply every change that needs no encoding; return what does."""
        t = time.perf_counter()
        result = scan(root, skip={str(self.library.directory)})
        report.add_time("scan", time.perf_counter() - t)
        t = time.perf_counter()
        report.found += len(result.files)
        lo, hi = path_prefix_range(root)
        jobs: list[_Job] = []
        with self.catalogue.session() as s, s.begin():
            s.execute(delete(SkippedFile).where(SkippedFile.path >= lo, SkippedFile.path < hi))
            for path, reason in result.problems:
                self._record_skipped(s, folder_id, path, reason, report)
            known = {
                row.path: row
                for row in s.execute(
                    select(Photo.id, Photo.path, Photo.size, Photo.mtime_ns, Photo.fingerprint).where(
                        Photo.path >= lo, Photo.path < hi
                    )
                )
            }
            embedded = set(
                s.scalars(
                    select(Embedding.photo_id)
                    .join(Photo, Photo.id == Embedding.photo_id)
                    .where(Embedding.model == self.model, Photo.path >= lo, Photo.path < hi)
                )
            )
            new_files = []
            for f in result.files:
                row = known.pop(f.path, None)
                if row is not None and row.size == f.size and row.mtime_ns == f.mtime_ns:
                    fp = row.fingerprint
                else:
                    try:
                        fp = fingerprint(f.path, f.size)
                    except OSError as e:
                        self._record_skipped(s, folder_id, f.path, os_error_reason(e), report)
                        continue
                if row is None:
                    new_files.append((f, fp))
                    continue
                if fp != row.fingerprint:  # new content under the same name
                    jobs.append(_Job(f.path, f.size, f.mtime_ns, fp, folder_id, row.id, content_changed=True))
                    continue
                if (row.size, row.mtime_ns) != (f.size, f.mtime_ns):
                    s.get(Photo, row.id).mtime_ns = f.mtime_ns
                if row.id in embedded:
                    report.unchanged += 1
                else:
                    jobs.append(_Job(f.path, f.size, f.mtime_ns, fp, folder_id, row.id))

            incomplete = [path_prefix_range(d) for d in result.incomplete]
            missing: dict[str, list] = {}
            for path, row in known.items():
                if not any(a <= os.fsencode(path) < b for a, b in incomplete):
                    missing.setdefault(row.fingerprint, []).append(row)
            jobs += self._moves_and_copies(s, folder_id, new_files, missing, report)
            gone = [row.id for rows in missing.values() for row in rows]
            delete_photos(s, self.catalogue, gone)
            report.removed += len(gone)
        report.add_time("plan", time.perf_counter() - t)
        return jobs

    def _moves_and_copies(self, s, folder_id, new_files, missing, report) -> list[_Job]:
        jobs = []
        for f, fp in new_files:
            gone = missing[fp].pop() if missing.get(fp) else None
            if gone is not None:  # moved or renamed: same photo, new path
                photo = s.get(Photo, gone.id)
                photo.path, photo.folder_id, photo.mtime_ns = f.path, folder_id, f.mtime_ns
                s.flush()
                report.moved += 1
                continue
            source = s.scalars(
                select(Photo)
                .join(Embedding, Embedding.photo_id == Photo.id)
                .where(Photo.fingerprint == fp, Embedding.model == self.model)
                .limit(1)
            ).first()
            if source is None:
                jobs.append(_Job(f.path, f.size, f.mtime_ns, fp, folder_id, None))
                continue
            # A copy of a photo we already know: reuse its metadata and embeddings.
            copy = Photo(
                **{c: getattr(source, c) for c in Photo.__table__.columns.keys() if c not in ("id", "path", "folder_id")}
            )
            copy.path, copy.folder_id, copy.mtime_ns = f.path, folder_id, f.mtime_ns
            copy.file_time, copy.indexed_at = file_wall_clock(f.mtime_ns / 1e9), time.time()
            s.add(copy)
            s.flush()
            vectors = s.execute(select(Embedding.model, Embedding.vector).where(Embedding.photo_id == source.id)).all()
            first = self.catalogue.next_seq(s, len(vectors))
            s.add_all(
                Embedding(photo_id=copy.id, model=m, vector=v, seq=first + i) for i, (m, v) in enumerate(vectors)
            )
            # and the text read in it (the full-text index follows through the schema's triggers)
            lines = s.execute(
                select(OcrLine.text, OcrLine.terms, OcrLine.box, OcrLine.confidence).where(OcrLine.photo_id == source.id).order_by(OcrLine.id)
            ).all()
            s.add_all(OcrLine(photo_id=copy.id, text=t, terms=k, box=b, confidence=c) for t, k, b, c in lines)
            done = s.execute(select(OcrDone.model, OcrDone.at).where(OcrDone.photo_id == source.id)).all()
            s.add_all(OcrDone(photo_id=copy.id, model=m, at=at) for m, at in done)
            report.copied += 1
        return jobs

    def _record_skipped(self, s, folder_id, path, reason, report) -> None:
        s.execute(delete(SkippedFile).where(SkippedFile.path == os.fsencode(path)))
        s.add(SkippedFile(folder_id=folder_id, path=path, reason=reason, at=time.time()))
        report.skipped.append((path, reason))

    def _fill_places(self, chunk: int = 2000) -> None:
        """Name the place of photos with GPS but no place yet (indexed before places were kept)."""
        while not self.cancel.is_set():
            with self.catalogue.session() as s, s.begin():
                rows = s.execute(
                    select(Photo.id, Photo.gps_lat, Photo.gps_lon)
                    .where(Photo.gps_lat.is_not(None), Photo.gps_lon.is_not(None), Photo.place.is_(None))
                    .limit(chunk)
                ).all()
                if not rows or not places.available():  # the place table loads only when a photo needs it
                    return
                names = places.place_names([(lat, lon) for _, lat, lon in rows])
                for (pid, _, _), name in zip(rows, names):
                    s.get(Photo, pid).place = name or ""
            if len(rows) < chunk:
                return

    # ------------------------------------------------------------------ encoding

    def _encode(self, jobs: list[_Job], vindex: VectorIndex, report: IndexReport) -> None:
        total, done = len(jobs), 0
        self.progress(0, total)
        if not jobs:
            return
        from . import decode as decoding  # Pillow and NumPy: only when something is encoded

        # The image tower opens before the decoding threads start: opening it is on the critical path
        # (the first batch waits for it) and is mostly one thread's work, which decoding photos ahead
        # beside it slowed by half (12 MP photos: 1.2-1.5 s instead of 0.5 s).
        self.encoder.load(image=True, text=False)
        preprocessor, thumbnails = self.encoder.preprocessor, self.library.thumbnails
        pending = iter(jobs)
        inflight: deque = deque()
        prefetch = 2 * self.batch_size + self.workers
        last_save = time.monotonic()
        pool = ThreadPoolExecutor(self.workers, thread_name_prefix="pixfind-decode")

        def submit() -> None:
            job = next(pending, None)
            if job is not None:
                inflight.append((job, pool.submit(decoding.decode, job.path, preprocessor, thumbnails, job.fingerprint)))

        try:
            for _ in range(prefetch):
                submit()
            batch, failures = [], []
            while inflight:
                if self.cancel.is_set():
                    raise Cancelled("indexing cancelled")
                job, future = inflight.popleft()
                submit()
                t = time.perf_counter()
                try:
                    decoded = future.result()
                    report.add_time("decode", decoded.seconds)
                    batch.append((job, decoded))
                except PixfindError as e:
                    failures.append((job, _reason(job.path, str(e))))
                except Exception as e:  # noqa: BLE001 - a decoder bug on one file must not stop the run
                    failures.append((job, f"cannot decode ({type(e).__name__}: {e})"))
                report.add_time("wait", time.perf_counter() - t)
                done += 1
                if len(batch) >= self.batch_size or not inflight:
                    self._commit(batch, failures, vindex, report)
                    batch, failures = [], []
                    if time.monotonic() - last_save > self.save_every and report.index_error is None:
                        self._save(vindex, report)
                        last_save = time.monotonic()
                self.progress(done, total)
        finally:
            pool.shutdown(wait=True, cancel_futures=True)

    def _commit(self, batch, failures, vindex: VectorIndex, report: IndexReport) -> None:
        import numpy as np

        t = time.perf_counter()
        vectors = self.encoder.encode_pixels(np.stack([d.pixels for _, d in batch])) if batch else None
        report.add_time("encode", time.perf_counter() - t)
        t = time.perf_counter()
        now = time.time()
        gps = [(d.meta.gps_lat, d.meta.gps_lon) for _, d in batch]
        named = places.place_names(gps) if any(lat is not None for lat, _ in gps) and places.available() else [None] * len(batch)
        with self.catalogue.session() as s, s.begin():
            first = self.catalogue.next_seq(s, len(batch)) if batch else 0
            changed = [job.photo_id for job, _ in batch if job.content_changed]
            if changed:
                delete_photos_vectors(s, self.catalogue, changed, keep_model=self.model)
            for i, (job, d) in enumerate(batch):
                photo = s.get(Photo, job.photo_id) if job.photo_id is not None else None
                if photo is None:
                    photo = Photo(path=job.path, folder_id=job.folder_id)
                    s.add(photo)
                m = d.meta
                photo.size, photo.mtime_ns, photo.fingerprint = job.size, job.mtime_ns, job.fingerprint
                photo.width, photo.height, photo.orientation = m.width, m.height, m.orientation
                photo.taken_at, photo.file_time = m.taken_at, file_wall_clock(job.mtime_ns / 1e9)
                photo.gps_lat, photo.gps_lon = m.gps_lat, m.gps_lon
                photo.place = (named[i] or "") if m.gps_lat is not None and places.available() else None
                photo.camera_make, photo.camera_model = m.camera_make, m.camera_model
                photo.thumbnail, photo.indexed_at = d.thumbnail, now
                s.flush()
                s.merge(Embedding(photo_id=photo.id, model=self.model, vector=vectors[i].tobytes(), seq=first + i))
            for job, reason in failures:
                self._record_skipped(s, job.folder_id, job.path, reason, report)
            delete_photos(s, self.catalogue, [job.photo_id for job, _ in failures if job.photo_id is not None])
        report.encoded += len(batch)
        report.add_time("database", time.perf_counter() - t)
        t = time.perf_counter()
        vindex.catch_up(self.catalogue)
        report.add_time("index", time.perf_counter() - t)


def delete_photos_vectors(session, catalogue, photo_ids: Sequence[int], keep_model: str) -> None:
    """Drop the embeddings of other models for photos whose content changed."""
    rows = session.execute(
        select(Embedding.photo_id, Embedding.model).where(Embedding.photo_id.in_(photo_ids), Embedding.model != keep_model)
    ).all()
    if not rows:
        return
    first = catalogue.next_seq(session, len(rows))
    session.add_all(VectorDeletion(model=m, photo_id=p, seq=first + i) for i, (p, m) in enumerate(rows))
    session.execute(delete(Embedding).where(Embedding.photo_id.in_(photo_ids), Embedding.model != keep_model))
