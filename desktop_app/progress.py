"""The one progress display of pixfind: a rich bar on stderr, fed by ``update(done, total)``.

Every long pass reports through a callback ``update(done, total)`` (total may be None
while unknown). The command line and the training module wrap that callback in
:func:`progress_bar`; the window passes its own callback and shows no bar. Indexing
shows photos per second, downloads bytes and transfer speed, the training passes
items per second.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager

ProgressCallback = Callable[[int, "int | None"], None]


def _no_progress(done: int, total: int | None) -> None:
    return None


@contextmanager
def progress_bar(
    label: str, unit: str = "img", *, enabled: bool | None = None, transient: bool = False
) -> Iterator[ProgressCallback]:
    """Yields ``update(done, total)``.

    ``unit`` is "img" (photos per second), "bytes" (sizes and transfer speed) or any
    other word (items of that name per second). ``enabled=None`` shows the bar only
    when stderr is a terminal. A resumed pass (the first ``done`` above 0) or one that
    starts over measures its speed from there. ``transient`` removes the bar at the
    end, for callers that report the outcome in a line of their own.
    """
    if enabled is None:
        enabled = sys.stderr.isatty()
    if not enabled:
        yield _no_progress
        return
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        DownloadColumn,
        MofNCompleteColumn,
        Progress,
        ProgressColumn,
        TextColumn,
        TimeRemainingColumn,
        TransferSpeedColumn,
    )
    from rich.text import Text

    class Rate(ProgressColumn):
        def render(self, task):
            speed = task.finished_speed or task.speed
            return Text(f"{speed:.1f} {unit}/s" if speed else "")

    if unit == "bytes":
        columns = [DownloadColumn(), TransferSpeedColumn()]
    else:
        columns = [MofNCompleteColumn(), Rate()]
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        *columns,
        TimeRemainingColumn(),
        console=Console(stderr=True),
        transient=transient,
    ) as progress:
        task = progress.add_task(label, total=None)
        last: list[int | None] = [None]

        def update(done: int, total: int | None) -> None:
            if last[0] is None or done < last[0]:
                progress.reset(task, total=total, completed=done)
            else:
                progress.update(task, completed=done, total=total)
            last[0] = done

        yield update
