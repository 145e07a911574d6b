"""Background work for the window: every slow call runs here, never on the GUI thread.

A :class:`Task` runs one function in a :class:`QThreadPool` and reports back through
queued signals, so its slots run on the GUI thread. A user error (:class:`PixfindError`)
arrives as one line for the window to show; a bug is logged with its traceback and shown
as one line too, never as a traceback dialog.
"""

from __future__ import annotations

import logging
import traceback

import shiboken6
from PySide6.QtCore import QObject, QRunnable, QThreadPool, Signal

from ..errors import PixfindError

log = logging.getLogger("pixfind.gui")


class TaskSignals(QObject):
    done = Signal(object)
    failed = Signal(str)
    progress = Signal(object)


class Task(QRunnable):
    """fn(*args, **kwargs) on a worker thread; ``progress`` is passed in when ``with_progress``."""

    def __init__(self, fn, *args, with_progress: bool = False, **kwargs):
        super().__init__()
        self.fn, self.args, self.kwargs = fn, args, kwargs
        self.signals = TaskSignals()
        self.with_progress = with_progress
        self.setAutoDelete(True)

    def run(self) -> None:
        signals = self.signals
        try:
            if self.with_progress:
                self.kwargs["progress"] = signals.progress.emit
            result = self.fn(*self.args, **self.kwargs)
        except PixfindError as e:
            _emit(signals.failed, str(e))
        except MemoryError:
            _emit(signals.failed, "not enough memory for this operation")
        except Exception as e:  # noqa: BLE001 - a bug must not kill the app: log it, tell the user in one line
            log.error("background task failed:\n%s", traceback.format_exc())
            _emit(signals.failed, f"unexpected error: {type(e).__name__}: {e}")
        else:
            _emit(signals.done, result)


def _emit(signal, value) -> None:
    try:
        signal.emit(value)
    except RuntimeError:  # the receiver (a closed window) is gone
        pass


_pool: QThreadPool | None = None


def pool() -> QThreadPool:
    """The pool for catalogue, search and encoding work (thumbnails have their own)."""
    global _pool
    if _pool is None:
        _pool = QThreadPool()
        _pool.setMaxThreadCount(3)
        _pool.setExpiryTimeout(30000)
    return _pool


_live: set[TaskSignals] = set()  # signal objects stay alive until their last slot ran on the GUI thread


def _guard(owner, callback):
    """Drop a result that arrives after its window or dialog was closed and deleted."""
    if owner is None or callback is None:
        return callback

    def guarded(*args):
        if shiboken6.isValid(owner) and not getattr(owner, "closed_for_good", False):
            callback(*args)

    return guarded


def start(fn, *args, done=None, failed=None, progress=None, owner=None, **kwargs) -> Task:
    """Run fn on the pool; ``owner`` (a widget) stops the callbacks once it is gone."""
    done, failed, progress = _guard(owner, done), _guard(owner, failed), _guard(owner, progress)
    task = Task(fn, *args, with_progress=progress is not None, **kwargs)
    signals = task.signals
    if done is not None:
        signals.done.connect(done)
    if failed is not None:
        signals.failed.connect(failed)
    if progress is not None:
        signals.progress.connect(progress)
    _live.add(signals)
    signals.done.connect(lambda *_: _live.discard(signals))
    signals.failed.connect(lambda *_: _live.discard(signals))
    pool().start(task)
    return task


class TaskOwner:
    """Mixin for widgets: ``self._run_task(fn, ...)`` whose callbacks stop when the widget is gone."""

    def _run_task(self, fn, *args, **kwargs) -> Task:
        return start(fn, *args, owner=self, **kwargs)
