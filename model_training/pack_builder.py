"""Building a model pack: the one path shared by `pixfind export` and the starter build.

Files are written into a scratch folder beside the destination, the pack is opened and checked
through the app's own :class:`~desktop_app.encoder.Encoder`, ``pack.json`` is written last, and
the finished folder is renamed into place. Any failure on the way removes the scratch folder, so
a failed build leaves nothing behind; one killed outright (SIGKILL) leaves a scratch folder that
names its process, removed by a later build into the model store.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from desktop_app import model_store, paths
from desktop_app.encoder import CPU, Encoder
from desktop_app.errors import PixfindError
from desktop_app.pack import PackManifest, write_manifest

SCRATCH_PREFIX = ".export-"
# Where the owner of a scratch folder cannot be probed (no pid in its name, or Windows),
# a folder this old is taken to be abandoned.
STALE_AFTER_S = 3600.0


def min_cosine(a: np.ndarray, b: np.ndarray) -> float:
    """The worst row-wise cosine between two [N, D] embedding matrices."""
    a = a / np.linalg.norm(a, axis=1, keepdims=True)
    b = b / np.linalg.norm(b, axis=1, keepdims=True)
    return float((a * b).sum(axis=1).min())


@contextmanager
def scratch_dir(parent: Path) -> Iterator[Path]:
    """A fresh folder in ``parent`` named after this process, removed on exit whatever happens."""
    parent = Path(parent)
    parent.mkdir(parents=True, exist_ok=True)
    path = Path(tempfile.mkdtemp(dir=parent, prefix=f"{SCRATCH_PREFIX}{os.getpid()}-"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def clean_stale_scratch(parent: Path, max_age_s: float = STALE_AFTER_S) -> list[Path]:
    """Remove the scratch folders in ``parent`` whose build was killed; returns what was removed."""
    removed = []
    for path in Path(parent).glob(f"{SCRATCH_PREFIX}*"):
        if path.is_dir() and _abandoned(path, max_age_s):
            shutil.rmtree(path, ignore_errors=True)
            removed.append(path)
    return removed


def _abandoned(path: Path, max_age_s: float) -> bool:
    pid = path.name[len(SCRATCH_PREFIX) :].split("-", 1)[0]
    if pid.isdigit() and int(pid) == os.getpid():
        return False
    if pid.isdigit() and os.name == "posix":
        return not _alive(int(pid))
    try:
        return time.time() - path.stat().st_mtime > max_age_s
    except OSError:
        return False


def _alive(pid: int) -> bool:
    # Signal 0 checks existence only (POSIX). On Windows os.kill would terminate the process.
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class PackBuilder:
    """One pack under construction::

        with PackBuilder(out_dir) as pack:
            ...write visual.onnx, textual.onnx and the tokenizer into pack.dir...
            encoder = pack.open(manifest)  # check it as the app runs it
            pack.finish(manifest)          # pack.json last, then renamed to out_dir

    ``out_dir`` must not exist yet. Leaving the block without :meth:`finish` (an exception, a
    failed check) removes everything that was written.
    """

    def __init__(self, out_dir: Path):
        self.out_dir = Path(out_dir)
        if self.out_dir.exists():
            raise PixfindError(f"{self.out_dir}: already exists; choose another output directory or remove it")
        self._scratch = None
        self.dir: Path | None = None

    def __enter__(self):
        self._scratch = scratch_dir(self.out_dir.parent)
        self.dir = self._scratch.__enter__() / "pack"
        self.dir.mkdir()
        return self

    def __exit__(self, *exc) -> None:
        self._scratch.__exit__(*exc)

    def open(self, manifest: PackManifest) -> Encoder:
        """Record the files written so far in pack.json and open the pack with the app's encoder (CPU)."""
        write_manifest(self.dir, manifest)
        return Encoder(self.dir, providers=[CPU])

    def finish(self, manifest: PackManifest, calibrate: bool = True) -> Path:
        """Calibrate the pack (see :mod:`desktop_app.calibration`), write pack.json, rename into place."""
        if calibrate and not manifest.calibration:
            manifest.calibration = calibrate_pack(self.open(manifest))
        write_manifest(self.dir, manifest)
        self.dir.rename(self.out_dir)
        return self.out_dir


def calibrate_pack(encoder: Encoder) -> dict:
    """The pack's calibration on the bundled sample photos; empty (uncalibrated) when they are missing."""
    from desktop_app import calibration

    try:
        return calibration.calibrate(encoder)
    except (FileNotFoundError, ValueError, KeyError):
        return {}


def build_and_install(build: Callable[[Path], object], *, name: str | None = None, replace: bool = False):
    """Run ``build(out_dir)`` into a scratch folder of the model store and install the pack it writes.

    Returns ``(installed, built)``: the :class:`~desktop_app.model_store.InstalledPack` and what
    ``build`` returned. Scratch folders of earlier builds that were killed are removed first.
    """
    root = paths.models_dir()
    root.mkdir(parents=True, exist_ok=True)
    clean_stale_scratch(root)
    with scratch_dir(root) as scratch:
        built = build(scratch / "pack")
        installed = model_store.install(scratch / "pack", name, replace=replace, move=True)
    return installed, built
