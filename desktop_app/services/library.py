"""The library service: everything a user does with a photo library, for the CLI and the window.

It opens the library and the active model once; the window shares one instance between
its worker threads (SQLite in WAL mode and ONNX Runtime sessions are thread-safe), the
CLI makes one per command. Answers are typed records (``records.py``): no ORM object
and no session leaves this module. NumPy, the calibration (Pillow) and the indexer are
imported by the calls that need them: `pixfind status` needs none of them.
"""

from __future__ import annotations

import os
import shutil
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import select

from .. import model_store, trash
from ..encoder import Encoder
from ..errors import PixfindError
from ..library.catalogue import Embedding, Folder, Photo
from ..library.library_dir import Library, model_key
from ..library.search import Filters, SearchEngine
from . import photos
from .records import (
    ActiveModelStatus,
    DuplicateGroup,
    DuplicateMember,
    LibraryOverview,
    LibraryStatus,
    PhotoItem,
    SearchRequest,
    SearchResult,
    TextMatch,
)

if TYPE_CHECKING:
    import numpy as np

    from ..library import query as queries
    from ..library.indexer import IndexReport
    from ..library.ocr_pass import OcrReport

FIRST_PAGE = 240  # results the window shows at once while the full list is fetched behind them
_TEXT_CACHE = 256  # search as you type: backspace costs no encoding
CUTOFF_SAMPLE = 1000  # scores a query's good-match cut-off looks at, however few results are asked for
BASELINE_SAMPLE = 512  # library photos that tell how high a query scores what it is not about


def _expected_above(sample: np.ndarray | None, score: float, photos: int) -> float:
    """How many of the library's ``photos`` a query scores ``score`` or more, estimated from its
    scores over the library sample (none without a sample)."""
    return 0.0 if sample is None else float((sample >= score).mean()) * photos


class NothingIndexed(PixfindError):
    """The library has no photo encoded with the model: a search has nothing to look through."""


class LibraryService:
    """The open library and the active model."""

    def __init__(self, library_dir: str | os.PathLike):
        self.library = Library(library_dir)
        self.encoder: Encoder | None = None
        self.engine: SearchEngine | None = None
        self.model_name: str | None = None
        self._lock = threading.Lock()
        self._index_lock = threading.Lock()  # hnswlib must not be searched while it changes
        self._writing = threading.Lock()  # held while this process indexes or removes a folder
        self._text_vectors: dict[tuple[tuple[str, str | None], str], np.ndarray] = {}
        self._calibrations: dict[str, dict | None] = {}  # per model key
        self._baseline_samples: dict[str, tuple[int, np.ndarray]] = {}  # model key -> (embedded count, vectors)
        self._ocr_engine = None  # library.ocr.OcrEngine, made on the first pass and kept (its models load once)
        self._ocr_lock = threading.Lock()

    def close(self) -> None:
        self.library.close()

    def __enter__(self) -> LibraryService:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # ------------------------------------------------------------------ model

    def load_model(self, name: str | None = None, *, encoder: Encoder | None = None) -> str:
        """Open the active (or named) pack; PixfindError when none is installed. ``encoder``: one
        already made for that pack (a command that started opening a tower before importing this)."""
        pack = model_store.resolve(name)
        if encoder is None or encoder.pack_dir != pack.path:
            encoder = Encoder.installed(pack.path)
        with self._lock:
            self.encoder, self.engine, self.model_name = encoder, SearchEngine(self.library, encoder), pack.name
        return pack.name

    def require_engine(self) -> SearchEngine:
        if self.engine is None:
            self.load_model()
        return self.engine

    @property
    def model(self) -> str | None:
        """The loaded model's key in the catalogue."""
        return model_key(self.encoder.manifest) if self.encoder else None

    def query_languages(self) -> list[str] | None:
        """The FLORES-200 codes the active model has a language token for; None when it takes no
        language (only NLLB-CLIP-style packs do). Reads the tokenizer: call it on a worker."""
        encoder = self.encoder
        if encoder is None or encoder.manifest.text.language is None:
            return None
        from ..language import NLLB_CODES

        tokenizer = encoder.tokenizer
        return [code for code in NLLB_CODES if tokenizer.known_language(code, "") == code]

    def warm_up(self) -> None:
        """Get ready for the first text query, so it costs no more than the next ones: open the
        text tower's session (never the image tower's), the vector index, and read what the
        good-match cut-off needs. A query that comes meanwhile waits for the session being opened."""
        from .. import calibration

        engine = self.require_engine()
        vector = self._embed_texts(["a photo"])[0]
        with self._index_lock:
            engine.refresh()
            embedded = engine.embedded_count()
            if not embedded:
                return
            engine.ranked(vector, None, 1)
        # Only with a calibration the pack holds: measuring one would open the image tower.
        if calibration.stored(self.encoder.pack_dir, self.encoder.manifest) is not None:
            if calibration.match_reliable(self.calibration()):
                self._sample_scores(vector, embedded)

    # ------------------------------------------------------------------ search

    def query_terms(self, request: SearchRequest) -> list[queries.Term]:
        """The request's terms, the images/words balance applied."""
        from ..library import query as queries

        terms = queries.parse(request.text, request.images, request.add, request.subtract)
        return queries.balance(terms, request.balance)

    def query_vector(self, request: SearchRequest) -> np.ndarray:
        import numpy as np

        from ..library import query as queries

        terms = self.query_terms(request)
        engine = self.require_engine()
        with self.library.catalogue.session() as s:
            stored = photos.vectors_by_path(s, self.model, [t.value for t in terms if t.kind == "image"])

        def embed_images(paths):
            missing = [p for p in dict.fromkeys(paths) if p not in stored]
            if missing:
                from ..library.decode import open_upright

                stored.update(zip(missing, engine.encoder.encode_images([open_upright(p) for p in missing])))
            return np.stack([stored[p] for p in paths])

        return queries.combine(terms, lambda texts: self._embed_texts(texts, request.language), embed_images)

    def _embed_texts(self, texts: list[str], language: str | None = None) -> np.ndarray:
        import numpy as np

        key = (self.model, language)
        missing = [t for t in dict.fromkeys(texts) if (key, t) not in self._text_vectors]
        for t, v in zip(missing, self.encoder.encode_texts(missing, language=language) if missing else ()):
            if len(self._text_vectors) >= _TEXT_CACHE:
                self._text_vectors.pop(next(iter(self._text_vectors)))
            self._text_vectors[(key, t)] = v
        return np.stack([self._text_vectors[(key, t)] for t in texts])

    def search(self, request: SearchRequest, limit: int | None = None) -> SearchResult:
        """Photos best matching the request, good matches first; with no query, the library newest first.

        A text query gets a good-match cut-off (``SearchResult.good``, ``cutoff``): the model's
        calibrated threshold moved to the largest drop in the query's own scores near it. With
        ``sort="date"`` the good matches come newest first, then the weaker ones newest first.
        """
        start = time.perf_counter()
        limit = limit or request.limit
        if request.sort not in ("relevance", "date"):
            raise PixfindError(f"unknown sort order {request.sort!r} (relevance or date)")
        if request.empty:
            items = self.browse(request.filters, request.sort, limit)
            return SearchResult(request, items, len(items) < limit, time.perf_counter() - start, browse=True)
        from .. import calibration
        from ..library import query as queries

        terms = self.query_terms(request)
        include, exclude = queries.written(terms)
        if include and not queries.for_model(terms):
            return self._text_search(request, include, exclude, limit, start)
        within, without = (None, set())
        if include or exclude:
            from ..library.search import text_candidates

            within, without = text_candidates(self.library.catalogue, include, exclude)
        vector = self.query_vector(request)
        # NumPy only now: a cold `pixfind search` imports it (with ONNX Runtime) on the thread that
        # embeds the query (Encoder.start_loading), and NumPy fails ("cannot load module more than
        # once per process") when two threads import it at once; that thread is done here.
        import numpy as np

        encoded = time.perf_counter()
        engine = self.engine
        calibrated = self.calibration() if self._cut_applies(request) else None
        with self._index_lock:
            engine.refresh()  # photos indexed or removed since the vector index was opened
            embedded = engine.embedded_count()
            if embedded == 0:
                raise NothingIndexed(
                    f"the library has no photos indexed with model {engine.encoder.name!r}: run `pixfind index PATH` first"
                )
            sample = self._sample_scores(vector, embedded) if calibration.match_reliable(calibrated) else None
            baseline = None if sample is None else float(np.median(sample))
            window = calibration.cutoff_window(calibrated, baseline)  # None: the scores tell no good match from the rest
            # The cut-off looks at the scores down to its window's bottom. When they go on past the
            # page, its larger sample is fetched (at 100,000 photos 6 ms against 3 for a page of 240):
            # at once when the library sample says so, else when the page's last score says so.
            fetch = limit
            if window is not None and limit < CUTOFF_SAMPLE and _expected_above(sample, window[0], embedded) >= limit:
                fetch = CUTOFF_SAMPLE
            ids, scores = engine.ranked(vector, request.filters, fetch, request.min_score, within, without)
            if window is not None and len(ids) == fetch < CUTOFF_SAMPLE and scores[-1] >= window[0]:
                fetch = CUTOFF_SAMPLE
                ids, scores = engine.ranked(vector, request.filters, fetch, request.min_score, within, without)
        cutoff = calibration.query_cutoff(scores, calibrated, baseline=baseline) if window is not None else None
        complete = len(ids) < limit if fetch == limit else len(ids) <= limit
        searched = time.perf_counter()
        # Catalogue rows for the photos returned only, not for the scores the cut-off looked at.
        with self.library.catalogue.reader() as reader:
            items = photos.items(reader, list(zip(ids[:limit], scores[:limit])))
        self._mark_text(items, include)
        good = len(items) if cutoff is None else sum(1 for it in items if it.score >= cutoff)
        if request.sort == "date":  # the query's good matches by date, then the weaker ones by date
            items = sorted(items[:good], key=lambda it: it.date, reverse=True) + sorted(
                items[good:], key=lambda it: it.date, reverse=True
            )
        end = time.perf_counter()
        timings = {"encode": encoded - start, "search": searched - encoded, "rows": end - searched}
        return SearchResult(request, items, complete, end - start, good=good, cutoff=cutoff, timings=timings)

    def _text_search(self, request: SearchRequest, include: list[str], exclude: list[str], limit: int, start: float) -> SearchResult:
        """Quoted words only: the photos whose text has them, best text match first (or newest
        first); the image model is not needed. No good-match cut-off: every photo returned has the
        words."""
        from ..library.search import text_ranked

        ids, scores = text_ranked(self.library.catalogue, include, exclude, request.filters, limit + 1)
        searched = time.perf_counter()
        with self.library.catalogue.reader() as reader:
            items = photos.items(reader, list(zip(ids[:limit], scores[:limit])))
        self._mark_text(items, include)
        if request.sort == "date":
            items.sort(key=lambda it: it.date or 0.0, reverse=True)
        end = time.perf_counter()
        timings = {"encode": 0.0, "search": searched - start, "rows": end - searched}
        return SearchResult(request, items, len(ids) <= limit, end - start, timings=timings)

    def _mark_text(self, items: list[PhotoItem], include: list[str]) -> None:
        """Give each item the lines of its text that have the query's quoted words."""
        if not include or not items:
            return
        from ..library.text_search import matched_lines

        lines = matched_lines(self.library.catalogue, include, [it.id for it in items])
        for it in items:
            it.text_matches = [TextMatch(m.text, m.box, m.spans, m.word_boxes()) for m in lines.get(it.id, ())]

    def _sample_scores(self, vector: np.ndarray, count: int) -> np.ndarray | None:
        """The query's scores over a fixed random sample of the library (``count``: its photos with a
        vector of this model); their median is how high this query scores photos it is not about
        ("a photo of a cat" scores everything higher than "a cat"). None for libraries too small to tell."""
        import numpy as np

        key = self.model
        cached = self._baseline_samples.get(key)
        if cached is None or abs(cached[0] - count) > max(8, count // 10):
            # Ids from the catalogue's index on (model, seq), then the sample's vectors only: sorting
            # every row by random() would read every vector (half a second at 100,000 photos).
            with self.library.catalogue.session() as s:
                ids = list(s.scalars(select(Embedding.photo_id).where(Embedding.model == key)))
            picked = np.random.default_rng().choice(len(ids), size=min(BASELINE_SAMPLE, len(ids)), replace=False)
            with self.library.catalogue.session() as s:
                found = photos.vectors_by_id(s, key, [ids[i] for i in picked])
            dim = self.encoder.dim
            vectors = [v for v in found.values() if len(v) == dim]
            cached = (count, np.stack(vectors) if vectors else np.zeros((0, dim), np.float32))
            self._baseline_samples[key] = cached
        sample = cached[1]
        return sample @ vector if len(sample) >= 8 else None

    def _cut_applies(self, request: SearchRequest) -> bool:
        """Whether the calibrated good-match cut-off speaks for this query: words only, all positive.

        The calibration measures captions against photos; an example image or a subtracted term
        puts the scores on another scale, so those queries get no cut-off."""
        terms = self.query_terms(request)
        return bool(terms) and all(t.kind == "text" and t.weight > 0 for t in terms)

    # ------------------------------------------------------------------ calibration

    def calibration(self) -> dict | None:
        """The active model's calibration (see desktop_app.calibration); a pack without one is
        calibrated now, once, and the result kept beside it. None when it cannot be measured."""
        from .. import calibration

        engine = self.require_engine()
        encoder = engine.encoder
        key = self.model
        with self._lock:
            if key in self._calibrations:
                return self._calibrations[key]
        found = calibration.ensure(encoder.pack_dir, encoder.manifest, encoder)
        with self._lock:
            self._calibrations[key] = found
        return found

    def score_range(self) -> tuple[float, float]:
        """(low, high): the scores that mean something for the active model's text queries, from its
        calibration; the scale of ``SearchRequest.min_score`` and ``pixfind search --min-score``."""
        from .. import calibration

        return calibration.score_range(self.calibration())

    def duplicate_threshold(self) -> float:
        """The default similarity for near-duplicates: the model's calibrated one when it is reliable."""
        found = self.calibration()
        if found and found.get("duplicate_reliable"):
            return float(found["duplicate_threshold"])
        from ..library.duplicates import DEFAULT_THRESHOLD

        return DEFAULT_THRESHOLD

    def describe_calibration(self) -> str:
        """One line on what the active model's scores mean, for the user."""
        from .. import calibration

        return calibration.describe(self.calibration())

    def browse(self, filters: Filters | None = None, sort: str = "date", limit: int = 10000) -> list[PhotoItem]:
        """No query: the library's photos, newest first (the model is not needed)."""
        with self.library.catalogue.session() as s:
            return photos.newest(s, filters or Filters(), limit)

    def vectors(self, ids: list[int]) -> dict[int, np.ndarray]:
        """The loaded model's vectors of these photos (for arranging a grid by similarity)."""
        if self.encoder is None:
            return {}
        with self.library.catalogue.session() as s:
            return photos.vectors_by_id(s, self.model, ids)

    # ------------------------------------------------------------------ library facts

    def overview(self) -> LibraryOverview:
        """Folders with photo counts, totals, cameras and skipped files, for the panels and filters."""
        with self.library.catalogue.session() as s:
            folders = photos.folders(s)
            embedded = photos.embedded_counts(s).get(self.model, 0) if self.model else 0
            first, last = photos.date_span(s)
            return LibraryOverview(
                folders, sum(f.photos for f in folders), embedded, photos.cameras(s), photos.skipped(s), first, last,
                places=photos.places(s), text_read=self.text_progress(),
            )  # fmt: skip

    def status(self, model_name: str | None = None) -> LibraryStatus:
        """Folders, counts per model, the active model with its vector index's health, skipped files.

        ``problem`` says why there is no active model, or what is wrong with its pack: its files
        are checked the quick way (size and mtime against the install record, the full sha256 of
        a file that changed), as loading the pack would, so a damaged pack is not reported as ok.
        """
        from ..library.vector_index import VectorIndex
        from ..pack import check_files_quick

        with self.library.catalogue.session() as s:
            folders, models, skipped = photos.folders(s), photos.embedded_counts(s), photos.skipped(s)
        active, problem = None, None
        try:
            pack = model_store.resolve(model_name or self.model_name)
            key = model_key(pack.manifest)
            index = VectorIndex(self.library.vectors_dir, key, pack.manifest.embedding_dim, self.library.catalogue_id)
            active = ActiveModelStatus(
                pack.name, key, models.get(key, 0), index.health(self.library.catalogue), recall=index.quality()
            )
            check_files_quick(pack.path, pack.manifest)
        except PixfindError as e:
            problem = str(e)
        photo_count = sum(f.photos for f in folders)
        return LibraryStatus(
            str(self.library.directory), folders, photo_count, models, active, problem, skipped, self.text_progress()
        )

    def folders(self):
        with self.library.catalogue.session() as s:
            return photos.folders(s)

    # ------------------------------------------------------------------ changes

    def index(
        self,
        folders: list[str] | None = None,
        *,
        progress=None,
        cancel: threading.Event | None = None,
        batch_size: int = 8,  # measured: see the `pixfind index --batch-size` default
        workers: int | None = None,
        save_every: float | None = None,
        ocr_progress=None,
    ) -> IndexReport:
        """Add these folders and index their photos; None refreshes every folder of the library.
        Then, when the library has OCR on, read the text of the photos not read yet
        (:meth:`read_text`, its report in ``report.ocr``; ``ocr_progress(done, total)``).

        Setting ``cancel`` stops after the current photo: what was encoded is kept and the
        report says ``interrupted``; the next run resumes.
        """
        from ..library.indexer import Indexer

        self.require_engine()
        if not folders and not self.library.catalogue.folders():
            raise PixfindError("the library has no folders yet: run `pixfind index FOLDER`")
        extra = {} if save_every is None else {"save_every": save_every}
        indexer = Indexer(
            self.library, self.encoder, batch_size=batch_size, workers=workers, progress=progress, cancel=cancel, **extra
        )
        with self._writing:
            report = indexer.run(list(folders) if folders else None)
            if not report.interrupted:
                report.ocr = self.read_text(progress=ocr_progress, cancel=cancel)
        return report

    # ------------------------------------------------------------------ text in photos

    def ocr_enabled(self) -> bool:
        """Whether this library reads the text in its photos (a setting kept in the library)."""
        from ..library.catalogue import ocr_enabled

        return ocr_enabled(self.library.catalogue)

    def set_ocr_enabled(self, on: bool) -> None:
        from ..library.catalogue import set_ocr_enabled

        set_ocr_enabled(self.library.catalogue, on)

    def read_text(self, *, progress=None, cancel: threading.Event | None = None) -> OcrReport:
        """Read the text in the photos not read yet (library/ocr_pass.py), when the library has OCR
        on. Runs after indexing: the photos are searchable by meaning meanwhile. A PixfindError (no
        rapidocr, a damaged model) comes back as the report's one-line ``error``."""
        if not self.ocr_enabled():  # a library with OCR off imports nothing of it
            from ..library.ocr_pass import OcrReport

            return OcrReport(disabled=True)
        from ..library.ocr_pass import OcrPass, OcrReport

        with self._ocr_lock:
            try:
                if self._ocr_engine is None:
                    from ..library.ocr import OcrEngine

                    self._ocr_engine = OcrEngine()  # loads nothing until the first photo is read
                return OcrPass(self.library, self._ocr_engine, progress=progress, cancel=cancel).run()
            except PixfindError as e:
                return OcrReport(error=f"reading text in photos: {e}")

    def text_progress(self) -> tuple[int, int] | None:
        """(photos whose text is read, photos), or None when the library has OCR off."""
        if not self.ocr_enabled():
            return None
        from ..library.ocr_pass import read_counts

        try:
            return read_counts(self.library)
        except PixfindError:  # rapidocr missing: no version to count by
            with self.library.catalogue.session() as s:
                return 0, sum(f.photos for f in photos.folders(s))

    def photo_text(self, photo_id: int) -> str:
        """The text read in a photo, one line per line, top to bottom ("" when none)."""
        from ..library.text_search import photo_text

        return "\n".join(line.text for line in photo_text(self.library.catalogue, photo_id))

    def watch(self, stop: threading.Event, on_report=None, settle: float = 1.0) -> None:
        """Index the library's folders, then again whenever they change, until ``stop`` is set; after
        each pass the text of its new photos is read (when the library has OCR on)."""
        from ..library.indexer import Indexer
        from ..library.watcher import watch

        self.require_engine()
        folders = [f.path for f in self.library.catalogue.folders() if os.path.isdir(f.path)]
        if not folders:
            raise PixfindError("the library has no folders yet: run `pixfind index FOLDER`")
        report_to = on_report or (lambda report: None)

        def indexed(report) -> None:  # then the text of the new photos, as `pixfind index` reads it
            if not report.interrupted and not stop.is_set():
                report.ocr = self.read_text(cancel=stop)
            report_to(report)

        watch(lambda: Indexer(self.library, self.encoder), folders, stop, indexed, settle)

    def _folder(self, folder: int | str) -> Folder:
        with self.library.catalogue.session() as s:
            if isinstance(folder, int):
                found = s.get(Folder, folder)
            else:
                path = os.path.abspath(os.path.expanduser(folder))
                found = s.scalars(select(Folder).where(Folder.path == path)).first()
        if found is None:
            raise PixfindError(f"{folder}: not a folder of this library (see `pixfind folders list`)")
        return found

    def remove_folder(self, folder: int | str) -> int:
        """Forget a folder (by id or path) and its photos; the files stay on disk. Returns photos forgotten."""
        from ..library.indexer import delete_photos

        target = self._folder(folder)
        if not self._writing.acquire(blocking=False):
            raise PixfindError(f"{target.path}: indexing is running; remove the folder when it has finished")
        try:
            with self.library.writer_lock(), self.library.catalogue.session() as s, s.begin():
                ids = list(s.scalars(select(Photo.id).where(Photo.folder_id == target.id)))
                for i in range(0, len(ids), photos.CHUNK):
                    delete_photos(s, self.library.catalogue, ids[i : i + photos.CHUNK])
                row = s.get(Folder, target.id)
                if row is not None:
                    s.delete(row)
        finally:
            self._writing.release()
        return len(ids)

    def duplicates(self, threshold: float | None = None) -> list[DuplicateGroup]:
        """Groups of copies of one picture, largest groups first; each led by the copy to keep.

        Every member passes two checks against the group's first: the model's similarity (the
        calibrated threshold when None) and a perceptual hash with the aspect ratio. The copies
        of a confident group are suggested for the trash; nothing in any other group is.
        """
        from ..library.duplicates import find_groups

        self.require_engine()
        calibrated = self.duplicate_threshold()
        threshold = calibrated if threshold is None else threshold
        groups = find_groups(self.library, self.model, self.encoder.dim, threshold, confident_at=calibrated)
        with self.library.catalogue.session() as s:
            by_id = {it.id: it for it in photos.items(s, [(m.photo.id, 0.0) for g in groups for m in g.members])}
        out = []
        for g in groups:
            members = [
                DuplicateMember(by_id[m.photo.id], m.similarity, m.hash_distance, g.confident and i > 0)
                for i, m in enumerate(g.members)
                if m.photo.id in by_id
            ]
            if len(members) > 1:
                out.append(DuplicateGroup(members, g.confident))
        return out

    def move_to_trash(self, paths: list[str]) -> trash.TrashOutcome:
        """Move photos to the platform's trash (never delete them); re-index to forget them."""
        return trash.move_to_trash(paths)

    def restore(self, files: list[trash.TrashedFile]) -> trash.RestoreOutcome:
        return trash.restore(files)

    def export_files(self, paths: list[str], target: str, progress=None) -> int:
        return export_files(paths, target, progress)


def export_files(paths: list[str], target: str, progress=None) -> int:
    """Copy photos into a folder, never overwriting: a clash gets " (2)", " (3)"... appended.

    ``progress((done, total))`` after each file.
    """
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
