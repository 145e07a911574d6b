"""The vector index of one model: an hnswlib graph derived from the catalogue.

The catalogue is the truth; this file only makes search fast. It is saved under a new
name each time, and a small JSON marker, replaced atomically, names the current file and
the catalogue state it reflects: the catalogue's identity and the last change number
(``seq``) it includes. Opening the index loads the file the marker names, applies the
catalogue changes made since (a crash between saves costs no rebuild), checks that the
index holds exactly the catalogue's photos, and rebuilds from the catalogue when the
file is missing, stale or corrupt.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import hnswlib
import numpy as np
from sqlalchemy import func, select

from .catalogue import Catalogue, Embedding, VectorDeletion

FORMAT = 2  # 2: the marker records the index file's blake2b checksum
M = 16
EF_CONSTRUCTION = 200
EF_SEARCH = 128
MIN_CAPACITY = 1024


CHUNK = 1 << 20


def file_checksum(path: str | os.PathLike) -> str:
    """blake2b of a file, read in chunks."""
    digest = hashlib.blake2b(digest_size=32)
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def marker_shape_problem(marker: dict) -> str | None:
    """What is wrong with a marker's fields (types and ranges), or None."""
    checks = {
        "seq": lambda v: _is_int(v) and v >= 0,
        "count": lambda v: _is_int(v) and v >= 0,
        "file_size": lambda v: _is_int(v) and v > 0,
        "file": lambda v: isinstance(v, str) and v == os.path.basename(v) and v.endswith(".hnsw") and not v.startswith("."),
        "checksum": lambda v: isinstance(v, str) and len(v) == 64,
        "deleted": lambda v: isinstance(v, list) and all(_is_int(x) for x in v),
    }
    for key, ok in checks.items():
        if key not in marker:
            return f"its marker has no {key!r}"
        if not ok(marker[key]):
            return f"its marker has an invalid {key!r}"
    return None


class IndexWriteError(OSError):
    """The index file could not be written (disk full, read-only folder, ...)."""


def _fsync(path: str) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class VectorIndex:
    def __init__(self, directory: Path, model: str, dim: int, catalogue_id: str, threads: int | None = None):
        self.directory = Path(directory)
        self.model = model
        self.dim = dim
        self.catalogue_id = catalogue_id
        self.marker_path = self.directory / f"{model}.json"
        self.threads = threads or os.cpu_count() or 1
        self.index: hnswlib.Index | None = None
        self.seq = 0
        self.live: set[int] = set()
        self.deleted: set[int] = set()  # marked deleted, slot not reused yet
        self.dirty = False
        self.rebuilt_because: str | None = None  # why the last open rebuilt, for `status`

    # ------------------------------------------------------------------ opening

    def open(self, catalogue: Catalogue) -> VectorIndex:
        """Load the saved index, catch up with the catalogue, rebuild if that is impossible."""
        problem = self._load()
        if problem is None:
            self.catch_up(catalogue)
            if self.live != self._catalogue_ids(catalogue):
                problem = "it does not hold the same photos as the catalogue"
        if problem is not None:
            self.rebuilt_because = problem
            self.rebuild(catalogue)
        return self

    def read_marker(self) -> dict | None:
        try:
            marker = json.loads(self.marker_path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        return marker if isinstance(marker, dict) else None

    def health(self, catalogue: Catalogue) -> str:
        """A one-line description of the saved index against the catalogue, without loading it
        (the file's checksum is verified: that is what makes "ok" true)."""
        marker = self.read_marker()
        if marker is None:
            if self.marker_path.exists():
                return "needs a rebuild: its marker is unreadable (rebuilt on the next search or index run)"
            return "no index file yet (built on the next search or index run)"
        problem = self._marker_problem(marker, verify=True)
        if problem:
            return f"needs a rebuild: {problem} (rebuilt on the next search or index run)"
        with catalogue.session() as s:
            pending = s.scalar(
                select(func.count()).select_from(Embedding).where(Embedding.model == self.model, Embedding.seq > marker["seq"])
            )
        size = marker["file_size"]
        state = f"ok, {marker['count']} vectors, {size / 2**20:.1f} MiB"
        return state + (f", {pending} changes to apply on next open" if pending else "")

    def _marker_problem(self, marker: dict, verify: bool = False) -> str | None:
        expected = {"format": FORMAT, "model": self.model, "dim": self.dim, "catalogue": self.catalogue_id}
        for key, value in expected.items():
            if marker.get(key) != value:
                return f"it was made for another {key}"
        problem = marker_shape_problem(marker)
        if problem:
            return problem
        path = self.directory / marker["file"]
        try:
            if not path.is_file():
                return "the index file is missing"
            if path.stat().st_size != marker["file_size"]:
                return "the index file has the wrong size (truncated or replaced)"
            if verify and file_checksum(path) != marker["checksum"]:
                return "the index file is corrupt (it does not match its checksum)"
        except OSError as e:
            return f"the index file cannot be read ({e.strerror or e})"
        return None

    def _load(self) -> str | None:
        marker = self.read_marker()
        if marker is None:
            return "there was no index" if not self.marker_path.exists() else "its marker is unreadable"
        # hnswlib trusts its file completely (bad links crash the process): it only ever reads
        # bytes whose checksum was just verified.
        problem = self._marker_problem(marker, verify=True)
        if problem:
            return problem
        index = hnswlib.Index(space="ip", dim=self.dim)
        try:
            index.load_index(str(self.directory / marker["file"]), allow_replace_deleted=True)
        except (RuntimeError, MemoryError, ValueError) as e:
            return f"the index file is corrupt ({e})"
        index.set_ef(EF_SEARCH)
        index.set_num_threads(self.threads)
        ids = set(index.get_ids_list())
        self.index = index
        self.seq = marker["seq"]
        self.deleted = set(marker["deleted"]) & ids
        self.live = ids - self.deleted
        self.dirty = False
        return None

    def _catalogue_ids(self, catalogue: Catalogue) -> set[int]:
        with catalogue.session() as s:
            return set(
                s.scalars(
                    select(Embedding.photo_id).where(
                        Embedding.model == self.model, func.length(Embedding.vector) == self.dim * 4
                    )
                )
            )

    def _vectors_since(self, catalogue: Catalogue, seq: int, chunk: int = 20000) -> Iterator[tuple[np.ndarray, np.ndarray, int]]:
        """(labels, vectors, max seq) chunks of the model's embeddings changed after seq."""
        with catalogue.session() as s:
            result = s.execute(
                select(Embedding.photo_id, Embedding.vector, Embedding.seq)
                .where(Embedding.model == self.model, Embedding.seq > seq)
                .order_by(Embedding.seq)
                .execution_options(yield_per=chunk)
            )
            for rows in result.partitions(chunk):
                last = rows[-1][2]
                rows = [r for r in rows if len(r[1]) == self.dim * 4]  # damaged blobs: see Library
                if not rows:
                    continue
                labels = np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))
                vectors = np.frombuffer(b"".join(r[1] for r in rows), dtype=np.float32).reshape(len(rows), self.dim)
                yield labels, vectors, last

    # ------------------------------------------------------------------ changes

    def _new_index(self, capacity: int) -> None:
        self.index = hnswlib.Index(space="ip", dim=self.dim)
        self.index.init_index(
            max_elements=max(MIN_CAPACITY, capacity), M=M, ef_construction=EF_CONSTRUCTION, allow_replace_deleted=True
        )
        self.index.set_ef(EF_SEARCH)
        self.index.set_num_threads(self.threads)
        self.live, self.deleted = set(), set()

    def rebuild(self, catalogue: Catalogue) -> None:
        with catalogue.session() as s:
            count = s.scalar(select(func.count()).select_from(Embedding).where(Embedding.model == self.model))
            self.seq = catalogue.current_seq(s)
        self._new_index(int(count * 1.25))
        for labels, vectors, _ in self._vectors_since(catalogue, 0):
            self._add(labels, vectors)
        self.dirty = True

    def catch_up(self, catalogue: Catalogue) -> int:
        """Apply the catalogue's changes after self.seq; returns how many vectors changed."""
        with catalogue.session() as s:
            latest = catalogue.current_seq(s)
            if latest == self.seq:
                return 0
            gone = list(
                s.scalars(
                    select(VectorDeletion.photo_id).where(VectorDeletion.model == self.model, VectorDeletion.seq > self.seq)
                )
            )
        changed = 0
        for label in gone:
            if label in self.live:
                self.index.mark_deleted(label)
                self.live.discard(label)
                self.deleted.add(label)
                changed += 1
        for labels, vectors, _ in self._vectors_since(catalogue, self.seq):
            self._add(labels, vectors)
            changed += len(labels)
        self.seq = latest
        self.dirty = True
        return changed

    def _add(self, labels: np.ndarray, vectors: np.ndarray) -> None:
        new = [int(label) for label in labels if int(label) not in self.live]
        needed = len(self.live) + len(self.deleted) + len(new)
        if needed > self.index.get_max_elements():
            self.index.resize_index(max(needed, int(self.index.get_max_elements() * 1.5)))
        self.index.add_items(vectors, labels, num_threads=self.threads, replace_deleted=True)
        self.live.update(new)
        if new and self.deleted:
            # Slots of deleted labels were reused; find which labels hnswlib dropped.
            self.deleted &= set(self.index.get_ids_list())
            self.deleted -= self.live

    # ------------------------------------------------------------------ saving

    def save(self) -> None:
        """Write the index under a new name, then switch the marker to it (the commit point)."""
        self.directory.mkdir(parents=True, exist_ok=True)
        tmp_marker = None
        fd, tmp_index = tempfile.mkstemp(dir=self.directory, prefix=f"{self.model}.", suffix=".hnsw")
        os.close(fd)
        try:
            self.index.save_index(tmp_index)
            # hnswlib does not report write errors: check the size it should have.
            expected, actual = self.index.index_file_size(), os.path.getsize(tmp_index)
            if actual != expected:
                raise IndexWriteError(f"only {actual} of {expected} bytes could be written (is the disk full?)")
            _fsync(tmp_index)
            checksum = file_checksum(tmp_index)
            marker = {
                "format": FORMAT,
                "model": self.model,
                "dim": self.dim,
                "catalogue": self.catalogue_id,
                "seq": self.seq,
                "count": len(self.live),
                "deleted": sorted(self.deleted),
                "file": os.path.basename(tmp_index),
                "file_size": actual,
                "checksum": checksum,
            }
            fd, tmp_marker = tempfile.mkstemp(dir=self.directory, prefix=f".{self.model}.", suffix=".json")
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                json.dump(marker, f)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp_marker, self.marker_path)
        except BaseException:
            for leftover in (tmp_index, tmp_marker):
                if leftover:
                    try:
                        os.unlink(leftover)
                    except OSError:
                        pass
            raise
        self.dirty = False
        # The previous file, and any left by a save that was killed half-way.
        for stale in self.directory.glob(f"{self.model}.*.hnsw"):
            if stale.name != marker["file"]:
                try:
                    stale.unlink()
                except OSError:
                    pass

    # ------------------------------------------------------------------ search

    def __len__(self) -> int:
        return len(self.live)

    def search(self, query: np.ndarray, k: int, allowed=None) -> tuple[np.ndarray, np.ndarray]:
        """Top-k (labels, cosine similarities) for one normalised query vector."""
        k = min(k, len(self.live))
        if k == 0:
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32)
        self.index.set_ef(max(EF_SEARCH, k))
        labels, distances = self.index.knn_query(query.reshape(1, -1), k=k, filter=allowed)
        return labels[0].astype(np.int64), 1.0 - distances[0]
