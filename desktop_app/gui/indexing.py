"""Background indexing for the window: progress, photos/s, time left, pause, cancel, watching.

The run itself is the library service's ``index`` (the same as ``pixfind index``) on its own
thread: the photos are encoded, then (with OCR on) their text is read, a second phase with
progress of its own. Pausing holds either phase in its progress callback, between two
photos; cancelling sets its cancel event, and what was done so far is kept (the next run
resumes).
"""

from __future__ import annotations

import os
import threading
import time
from collections import deque
from dataclasses import dataclass

from PySide6.QtCore import QObject, QTimer, Signal

from ..errors import PixfindError


@dataclass
class IndexProgress:
    done: int
    total: int
    rate: float  # photos per second over the last seconds
    eta: float | None  # seconds left
    paused: bool
    phase: str = "photos"  # "photos": encoding them; "text": reading the text in them
    held: bool = False  # paused, and the pass has stopped: nothing more is written until it resumes


class IndexController(QObject):
    started = Signal()
    progressed = Signal(object)  # IndexProgress
    finished = Signal(object, str)  # IndexReport or None, error line ("" when none)
    changed_on_disk = Signal()  # from the watcher's thread

    def __init__(self, service, parent=None, watch: bool = True):
        super().__init__(parent)
        self.service = service  # a LibraryService
        self._thread: threading.Thread | None = None
        self._cancel = threading.Event()
        self._resume = threading.Event()
        self._resume.set()
        self._queued: list[str] | None = None  # folders waiting for the running pass to end
        self._queued_all = False
        self._samples: deque = deque(maxlen=64)
        self._last_emit = 0.0
        self.last_progress: IndexProgress | None = None
        self._observer = None
        self._watched: list[str] = []
        self._watch = watch
        self._settle = QTimer(self, singleShot=True, interval=2000)
        self._settle.timeout.connect(self._changes_settled)
        self.changed_on_disk.connect(self._settle.start)

    # ------------------------------------------------------------------ control

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    @property
    def paused(self) -> bool:
        return not self._resume.is_set()

    def index(self, folders: list[str] | None = None) -> None:
        """Index these new folders (None: refresh every folder); queued if a pass is running."""
        if self.running:
            if folders:
                self._queued = (self._queued or []) + [f for f in folders if f not in (self._queued or [])]
            else:
                self._queued_all = True
            return
        if self.service.encoder is None:
            self.finished.emit(None, "no model is active: install or import a model first")
            return
        self._cancel = threading.Event()
        self._resume.set()
        self._samples.clear()
        self.last_progress = IndexProgress(0, 0, 0.0, None, False)
        self._thread = threading.Thread(target=self._run, args=(folders,), name="pixfind-index", daemon=True)
        self._thread.start()
        self.started.emit()

    def pause(self, paused: bool = True) -> None:
        if paused:
            self._resume.clear()
        else:
            self._resume.set()
        if self.last_progress is not None and self.running:
            self.last_progress.paused = paused
            self.last_progress.held = self.last_progress.held and paused  # held only once the pass says so
            self.progressed.emit(self.last_progress)

    def cancel(self) -> None:
        self._queued, self._queued_all = None, False
        self._cancel.set()
        self._resume.set()

    def shutdown(self, timeout: float = 10.0) -> None:
        self.stop_watching()
        self.cancel()
        if self._thread is not None:
            self._thread.join(timeout)

    # ------------------------------------------------------------------ the run (indexing thread)

    def _text_progress(self, done: int, total: int) -> None:
        self._progress(done, total, "text")

    def _progress(self, done: int, total: int, phase: str = "photos") -> None:
        if self.last_progress is not None and self.last_progress.phase != phase:
            self._samples.clear()  # a new phase: its own rate
            self._last_emit = 0.0
        now = time.monotonic()
        self._samples.append((now, done))
        if not self._resume.is_set() and not self._cancel.is_set():
            # Asked to pause while a batch was being written: it is written now, and the pass
            # stops here. The window shows what is indexed when this arrives, not at the click.
            self._emit(IndexProgress(done, total, 0.0, None, True, phase, held=True))
        while not self._resume.is_set() and not self._cancel.is_set():
            self._resume.wait(0.2)
            self._samples.clear()
            self._samples.append((time.monotonic(), done))
        if now - self._last_emit < 0.1 and done not in (0, total):
            return
        self._last_emit = now
        rate = 0.0
        if len(self._samples) >= 2:
            (t0, d0), (t1, d1) = self._samples[0], self._samples[-1]
            rate = (d1 - d0) / (t1 - t0) if t1 > t0 else 0.0
        eta = (total - done) / rate if rate > 0 else None
        self._emit(IndexProgress(done, total, rate, eta, self.paused, phase))

    def _emit(self, progress: IndexProgress) -> None:
        self.last_progress = progress
        try:
            self.progressed.emit(progress)
        except RuntimeError:  # the window is gone
            pass

    def _run(self, folders) -> None:
        report, error = None, ""
        try:
            report = self.service.index(
                folders,
                progress=self._progress,
                cancel=self._cancel,
                workers=max(1, (os.cpu_count() or 2) - 1),
                save_every=30.0,
                ocr_progress=self._text_progress,
            )
            error = report.index_error or ""
        except PixfindError as e:
            error = str(e)
        except Exception as e:  # noqa: BLE001 - shown as one line; the catalogue keeps what was done
            import logging
            import traceback

            logging.getLogger("pixfind.gui").error("indexing failed:\n%s", traceback.format_exc())
            error = f"indexing stopped: {type(e).__name__}: {e}"
        try:
            self.finished.emit(report, error)
        except RuntimeError:
            pass

    def start_queued(self) -> None:
        """Start what was asked for during the pass that just ended; the window calls it once it handled ``finished``."""
        queued, everything = self._queued, self._queued_all
        self._queued, self._queued_all = None, False
        if queued or everything:
            self.index(None if everything else queued)

    # ------------------------------------------------------------------ watching

    def watch(self, folders: list[str]) -> None:
        """Re-index when files in these folders change (new, edited, moved, deleted photos).

        Watching the same folders again keeps the running observer: restarting it after every
        overview refresh cost a recursive scan and lost the changes made in between.
        """
        folders = sorted(f for f in folders if os.path.isdir(f))
        if self._observer is not None and self._observer.is_alive() and folders == self._watched:
            return
        self.stop_watching()
        if not self._watch or not folders:
            return
        from watchdog.events import FileSystemEventHandler
        from watchdog.observers import Observer

        library_dir = str(self.service.library.directory)
        signal = self.changed_on_disk

        class Handler(FileSystemEventHandler):
            def on_any_event(self, event) -> None:
                if event.event_type in ("opened", "closed_no_write"):
                    return
                if str(event.src_path).startswith(library_dir):
                    return
                try:
                    signal.emit()
                except RuntimeError:
                    pass

        observer = Observer()
        handler = Handler()
        try:
            for folder in folders:
                observer.schedule(handler, folder, recursive=True)
            observer.start()
        except OSError:  # e.g. out of inotify watches: the library still works, just not live
            return
        self._observer, self._watched = observer, folders

    def stop_watching(self) -> None:
        if self._observer is not None:
            self._observer.stop()
            self._observer.join(5)
            self._observer, self._watched = None, []

    def _changes_settled(self) -> None:
        self.index(None)
