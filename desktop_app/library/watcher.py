"""Keeping the library current: watch its folders and re-index after changes settle."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from watchdog.events import FileSystemEventHandler
from watchdog.observers import Observer

from .indexer import IndexReport, Indexer


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
        on_report(make_indexer().run(None))
        while not stop.is_set():
            if not changed.is_set() or time.monotonic() - handler.last < settle:
                stop.wait(0.2)
                continue
            changed.clear()
            on_report(make_indexer().run(None))
    finally:
        observer.stop()
        observer.join()
