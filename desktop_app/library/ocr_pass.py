"""The OCR pass: read the text of every catalogued photo not yet read by this OCR model.

It runs after indexing, as a pass of its own, so that search works before it finishes.
Photos are decoded (library/ocr.py's bounded decode) in a thread pool while the main
thread reads the previous one; each batch of photos is committed in one transaction
(lines, their full-text entries through the schema's triggers, and a done marker), so a
run killed half-way keeps every committed batch and the next run reads only the rest.
Cancelling (the event) stops between photos, after committing what was read.
"""

from __future__ import annotations

import os
import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from sqlalchemy import delete, func, select

from ..errors import PixfindError
from .catalogue import OcrDone, OcrLine, Photo, ocr_enabled
from .library_dir import Library
from .ocr import OcrEngine, TextLine, model_version, ocr_image
from .text_search import check_index, terms_column

Progress = Callable[[int, int], None]  # (photos read, photos to read), as the indexer's


@dataclass
class OcrReport:
    total: int = 0  # photos this run had to read
    read: int = 0  # photos read and committed
    lines: int = 0  # lines of text found in them
    failed: list[tuple[str, str]] = field(default_factory=list)  # (path, reason): kept for the next run
    interrupted: bool = False
    disabled: bool = False  # the library has OCR switched off: nothing was loaded
    index_rebuilt: bool = False  # the full-text index no longer matched the lines and was rebuilt
    error: str | None = None  # why the pass could not run (one line; set by the caller that caught it)
    seconds: float = 0.0


def read_counts(library: Library, version: str | None = None) -> tuple[int, int]:
    """(photos whose text this OCR model has read, photos in the library)."""
    version = version or model_version()
    with library.catalogue.session() as s:
        total = s.scalar(select(func.count()).select_from(Photo))
        read = s.scalar(
            select(func.count()).select_from(OcrDone).join(Photo, Photo.id == OcrDone.photo_id).where(OcrDone.model == version)
        )
    return read, total


def pending_photos(library: Library, version: str | None = None) -> list[tuple[int, str, str]]:
    """(id, path, fingerprint) of the photos not yet read by this OCR model version, by id."""
    version = version or model_version()
    with library.catalogue.session() as s:
        done = select(OcrDone.photo_id).where(OcrDone.model == version)
        rows = s.execute(select(Photo.id, Photo.path, Photo.fingerprint).where(Photo.id.not_in(done)).order_by(Photo.id))
        return [tuple(r) for r in rows]


class OcrPass:
    def __init__(
        self,
        library: Library,
        engine: OcrEngine | None = None,
        *,
        batch_size: int = 16,
        workers: int = 2,
        progress: Progress | None = None,
        cancel: threading.Event | None = None,
    ):
        self.library = library
        self.catalogue = library.catalogue
        self._engine = engine
        self.batch_size = batch_size
        self.workers = workers  # decoding only: the OCR models use every core themselves
        self.progress = progress or (lambda done, total: None)
        self.cancel = cancel or threading.Event()

    @property
    def engine(self) -> OcrEngine:
        if self._engine is None:
            self._engine = OcrEngine()
        return self._engine

    def run(self, force: bool = False) -> OcrReport:
        """Read the photos still unread. A library with OCR off is left alone unless ``force``."""
        report = OcrReport()
        start = time.perf_counter()
        if not force and not ocr_enabled(self.catalogue):
            report.disabled = True
            return report
        with self.library.writer_lock():
            report.index_rebuilt = check_index(self.catalogue)
            version = self._engine.version if self._engine is not None else model_version()
            jobs = pending_photos(self.library, version)
            report.total = len(jobs)
            self.progress(0, report.total)
            if jobs:  # the models load only when there is something to read
                self._read(jobs, version, report)
        report.seconds = time.perf_counter() - start
        return report

    def _read(self, jobs: list[tuple[int, str, str]], version: str, report: OcrReport) -> None:
        engine = self.engine
        pending = iter(jobs)
        inflight: deque = deque()
        pool = ThreadPoolExecutor(self.workers, thread_name_prefix="pixfind-ocr-decode")

        def submit() -> None:
            job = next(pending, None)
            if job is not None:
                inflight.append((job, pool.submit(ocr_image, job[1])))

        try:
            for _ in range(self.workers + 1):
                submit()
            batch: list[tuple[int, str, list[TextLine]]] = []
            done = 0
            while inflight and not self.cancel.is_set():
                (photo_id, path, fp), future = inflight.popleft()
                submit()
                try:
                    batch.append((photo_id, fp, engine.read(future.result())))
                except PixfindError as e:
                    reason = str(e)[len(path) + 2 :] if str(e).startswith(f"{path}: ") else str(e)
                    report.failed.append((path, reason))
                    if os.path.exists(path):  # unreadable for good: read as holding no text
                        batch.append((photo_id, fp, []))
                    # else maybe an unplugged drive: left for a later run
                done += 1
                if len(batch) >= self.batch_size or not inflight:
                    self._commit(batch, version, report)
                    batch = []
                self.progress(done, report.total)
            if batch:  # cancelled: keep what was read
                self._commit(batch, version, report)
            report.interrupted = self.cancel.is_set() and report.read < report.total
        finally:
            pool.shutdown(wait=True, cancel_futures=True)

    def _commit(self, batch: list[tuple[int, str, list[TextLine]]], version: str, report: OcrReport) -> None:
        if not batch:
            return
        now = time.time()
        with self.catalogue.session() as s, s.begin():
            ids = [photo_id for photo_id, _, _ in batch]
            current = dict(s.execute(select(Photo.id, Photo.fingerprint).where(Photo.id.in_(ids))).all())
            # A photo removed or given new content since it was decoded is left to a later run.
            batch = [(pid, fp, lines) for pid, fp, lines in batch if current.get(pid) == fp]
            ids = [pid for pid, _, _ in batch]
            s.execute(delete(OcrLine).where(OcrLine.photo_id.in_(ids)))  # an older model's lines
            s.execute(delete(OcrDone).where(OcrDone.photo_id.in_(ids)))
            s.add_all(
                OcrLine(photo_id=pid, text=line.text, terms=terms_column(line.text), box=line.box_json(), confidence=line.confidence)
                for pid, _, lines in batch
                for line in lines
            )
            s.add_all(OcrDone(photo_id=pid, model=version, at=now) for pid in ids)
        report.read += len(batch)
        report.lines += sum(len(lines) for _, _, lines in batch)
