"""`pixfind ...` run in a real process that holds still at a known point of indexing.

    python -m tests.integration.paused_indexer PAUSED_FILE BATCHES pixfind-args...

runs the real console entry point (``desktop_app.cli.main``) with one addition: after the
indexer has committed BATCHES batches it creates PAUSED_FILE and waits there (holding the
library's writer lock, with those batches committed and the rest not) until PAUSED_FILE is
removed or the run is cancelled (Ctrl-C). Tests use it to stop an indexer mid-run without
racing it: the test waits for PAUSED_FILE instead of hoping the indexer is still busy.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def start(paused: Path, batches: int, *args) -> subprocess.Popen:
    """The real `pixfind ARGS` in a process that pauses after ``batches`` committed batches."""
    from tests.library_helpers import _default_sigint

    return subprocess.Popen(
        [sys.executable, "-m", "tests.integration.paused_indexer", str(paused), str(batches), *[str(a) for a in args]],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        preexec_fn=_default_sigint,
    )


def wait(proc: subprocess.Popen, paused: Path, timeout: float = 120) -> None:
    """Until the process holds still at its pause point (fails if it exits first)."""
    deadline = time.monotonic() + timeout
    while not paused.exists():
        if proc.poll() is not None:
            raise AssertionError(f"the indexer exited ({proc.returncode}) before pausing: {proc.stderr.read().decode()}")
        assert time.monotonic() < deadline, "the indexer never reached its pause point"
        time.sleep(0.02)


def _install(paused_file: str, batches: int) -> None:
    from desktop_app.library import indexer

    commit = indexer.Indexer._commit
    done = [0]

    def pausing_commit(self, *args, **kwargs):
        commit(self, *args, **kwargs)
        done[0] += 1
        if done[0] == batches:
            with open(paused_file, "w") as f:
                f.write(str(os.getpid()))
            while os.path.exists(paused_file) and not self.cancel.is_set():
                time.sleep(0.01)

    indexer.Indexer._commit = pausing_commit


if __name__ == "__main__":
    from desktop_app.cli import main

    _install(sys.argv[1], int(sys.argv[2]))
    sys.exit(main(sys.argv[3:]))
