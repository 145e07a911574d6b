"""Keeping the library current: watch its folders and re-index after changes settle."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from watchdog.events import FileSystemEventHandler
from watchdog.observers import Observer

from .indexer import Indexer, IndexReport
from .library_dir import LibraryBusy

RETRY_SECONDS = 1.0


def _run_when_free(make_indexer: Callable[[], Indexer], stop: threading.Event) -> IndexReport | None:
    """One indexing pass, waiting while another process holds the library's writer lock (a
    long `pixfind index`, the window). The pass scans after it gets the lock, so every change
    seen meanwhile is included. None if stopped while waiting."""
    while not stop.is_set():
        try:
            return make_indexer().run(None)
        except LibraryBusy:
            stop.wait(RETRY_SECONDS)
    return None


class _Changed(FileSystemEventHandler):
    def __init__(self, flag: threading.Event):
        self.flag = flag
        self.last = 0.0

    def on_any_event(self, event) -> None:
        if event.event_type in ("opened", "closed_no_write"):
            return
        self.last = time.monotonic()
        self.flag.set()


def watch(
    make_indexer: Callable[[], Indexer],
    folders: list[str],
    stop: threading.Event,
    on_report: Callable[[IndexReport], None] = lambda report: None,
    settle: float = 1.0,
) -> None:
    """Index once, then again each time the folders change and stay quiet for ``settle`` seconds.

    A re-index of the whole library is cheap when little changed: unchanged files are
    recognised by size and modification time without being opened.
    """
    changed = threading.Event()
    handler = _Changed(changed)
    observer = Observer()
    for folder in folders:
        observer.schedule(handler, folder, recursive=True)
    observer.start()
    try:
        report = _run_when_free(make_indexer, stop)
        if report is not None:
            on_report(report)
        while not stop.is_set():
            if not changed.is_set() or time.monotonic() - handler.last < settle:
                stop.wait(0.2)
                continue
            changed.clear()
            report = _run_when_free(make_indexer, stop)
            if report is not None:
                on_report(report)
    finally:
        observer.stop()
        observer.join()
