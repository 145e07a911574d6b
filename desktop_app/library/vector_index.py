"""The vector index of one model: an hnswlib graph derived from the catalogue.

The catalogue is the truth; this file only makes search fast. It is saved under a new
name each time, and a small JSON marker, replaced atomically, names the current file and
the catalogue state it reflects: the catalogue's identity and the last change number
(``seq``) it includes. Opening the index loads the file the marker names, applies the
catalogue changes made since (a crash between saves costs no rebuild), checks that the
index holds exactly the catalogue's photos, and rebuilds from the catalogue when the
file is missing, stale or corrupt. When the marker's change number is the catalogue's, nothing
changed since the save: the index is trusted after a count check, without reading every photo
id from the catalogue.

Recall is measured, not assumed: when the index is built, or has grown by more than a tenth
since the last measurement, ``save`` compares its top 10 for a sample of the stored vectors
with exact search, raises ef (and rebuilds with a larger M when ef alone is not enough) until
recall@10 reaches ``RECALL_TARGET``, and records the recall, ef and M in the marker; `pixfind
status` shows them.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import func, select

from .catalogue import Catalogue, Embedding, VectorDeletion
from .index_recall import (  # noqa: F401 - part of this module's interface
    RECALL_GROWTH,
    RECALL_K,
    RECALL_QUERIES,
    RECALL_TARGET,
    describe_recall,
    exact_top_k,
    exact_truth,
    measure_recall,
)

if TYPE_CHECKING:
    import hnswlib
    import numpy as np

FORMAT = 2  # 2: the marker records the index file's blake2b checksum
M = 16
EF_CONSTRUCTION = 200
EF_SEARCH = 128
MIN_CAPACITY = 1024

# Recall you can trust (see the module docstring).
EF_STEPS = (128, 192, 256, 384, 512, 768, 1024, 1536, 2048)  # tried in turn, from the floor EF_SEARCH
M_STEPS = (16, 32, 48)  # a larger M is built when the largest ef is not enough


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
    optional = {  # written since recall is measured; a marker without them is still good
        "ef": lambda v: _is_int(v) and 1 <= v <= 100_000,
        "M": lambda v: _is_int(v) and 2 <= v <= 1024,
        "recall": lambda v: v is None or isinstance(v, float | int) and not isinstance(v, bool) and 0 <= v <= 1,
        "recall_count": lambda v: v is None or _is_int(v) and v >= 0,
        "file_mtime_ns": lambda v: _is_int(v) and v >= 0,
    }
    for key, ok in optional.items():
        if key in marker and not ok(marker[key]):
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


def _recall_due(count: int, recall: float | None, measured_at: int | None) -> bool:
    """Whether an index of ``count`` vectors should have its recall measured before its next save:
    never measured, or grown by more than RECALL_GROWTH since (with at most RECALL_K, a search returns them all)."""
    if count <= RECALL_K:
        return False
    return recall is None or measured_at is None or count > measured_at * (1 + RECALL_GROWTH)


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
        self.ef = EF_SEARCH
        self.M = M
        self.recall: float | None = None  # recall@10 measured at self.ef, None until measured
        self.recall_count: int | None = None  # vectors in the index when it was measured
        self.checked_catalogue = False  # whether the last open compared every photo id

    # ------------------------------------------------------------------ opening

    def open(self, catalogue: Catalogue) -> VectorIndex:
        """Load the saved index, catch up with the catalogue, rebuild if that is impossible."""
        problem = self._load()
        if problem is None:
            saved_seq = self.seq
            self.catch_up(catalogue)
            if self.seq == saved_seq and self._catalogue_count(catalogue) == len(self.live):
                # Nothing changed since the index was saved, and it was consistent then.
                self.checked_catalogue = False
            else:
                self.checked_catalogue = True
                if self.live != self._catalogue_ids(catalogue):
                    problem = "it does not hold the same photos as the catalogue"
        if problem is not None:
            self.rebuilt_because = problem
            self.rebuild(catalogue)
        elif self.needs_recall():
            self.dirty = True  # an index saved before recall was measured: measured at the next save
        return self

    def is_current(self, catalogue: Catalogue, writer: bool = False) -> bool:
        """Whether the saved index reflects the catalogue as it is, so that opening it would change
        nothing: a valid marker for this catalogue and model whose file passes its size and checksum,
        whose change number is the catalogue's latest, whose count is the catalogue's and whose recall
        needs no measuring. Loads neither hnswlib nor the index file (hashing reads it).

        ``writer`` (the caller holds the library's writer lock): a marker written before markers
        recorded the file's mtime gets it once the file has been hashed, so later opens skip the hash."""
        marker = self.read_marker()
        if marker is None or self._marker_problem(marker, verify=True, trust_unchanged=True) is not None:
            return False
        if writer and "file_mtime_ns" not in marker:
            try:
                self._write_marker({**marker, "file_mtime_ns": (self.directory / marker["file"]).stat().st_mtime_ns})
            except OSError:
                pass  # only the next open's speed depends on it
        if _recall_due(marker["count"], marker.get("recall"), marker.get("recall_count")):
            return False  # the next save measures it
        with catalogue.session() as s:
            if catalogue.current_seq(s) != marker["seq"]:
                return False
        return self._catalogue_count(catalogue) == marker["count"]

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
        state = f"ok, {marker['count']} vectors, {size / 2**20:.1f} MiB, {describe_recall(marker)}"
        return state + (f", {pending} changes to apply on next open" if pending else "")

    def quality(self) -> dict | None:
        """The saved index's measured recall: {"recall", "k", "ef", "M", "measured_at"}, None without a
        readable marker. Reads the marker only."""
        marker = self.read_marker()
        if marker is None or marker_shape_problem(marker):
            return None
        return {
            "recall": marker.get("recall"),
            "k": RECALL_K,
            "ef": marker.get("ef", EF_SEARCH),
            "M": marker.get("M", M),
            "measured_at": marker.get("recall_count"),
            "target": RECALL_TARGET,
        }

    def _marker_problem(self, marker: dict, verify: bool = False, trust_unchanged: bool = False) -> str | None:
        """What makes the saved index unusable, or None. ``verify`` hashes the file against the
        marker's checksum; with ``trust_unchanged`` only when its mtime differs from the one recorded
        when it was written and hashed (the trust a pack's files get at load: see pack.py)."""
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
            st = path.stat()
            if st.st_size != marker["file_size"]:
                return "the index file has the wrong size (truncated or replaced)"
            unchanged = trust_unchanged and marker.get("file_mtime_ns") == st.st_mtime_ns
            if verify and not unchanged and file_checksum(path) != marker["checksum"]:
                return "the index file is corrupt (it does not match its checksum)"
        except OSError as e:
            return f"the index file cannot be read ({e.strerror or e})"
        return None

    def _load(self) -> str | None:
        marker = self.read_marker()
        if marker is None:
            return "there was no index" if not self.marker_path.exists() else "its marker is unreadable"
        # hnswlib trusts its file completely (bad links crash the process): it only ever reads
        # bytes whose checksum was verified, now or when the file was written (same size and mtime).
        problem = self._marker_problem(marker, verify=True, trust_unchanged=True)
        if problem:
            return problem
        import hnswlib

        index = hnswlib.Index(space="ip", dim=self.dim)
        try:
            index.load_index(str(self.directory / marker["file"]), allow_replace_deleted=True)
        except (RuntimeError, MemoryError, ValueError) as e:
            return f"the index file is corrupt ({e})"
        self.ef = marker.get("ef", EF_SEARCH)
        self.M = index.M
        self.recall = marker.get("recall")
        self.recall_count = marker.get("recall_count")
        index.set_ef(self.ef)
        index.set_num_threads(self.threads)
        ids = set(index.get_ids_list())
        self.index = index
        self.seq = marker["seq"]
        self.deleted = set(marker["deleted"]) & ids
        self.live = ids - self.deleted
        self.dirty = False
        return None

    def _catalogue_count(self, catalogue: Catalogue) -> int:
        with catalogue.session() as s:
            return s.scalar(
                select(func.count())
                .select_from(Embedding)
                .where(Embedding.model == self.model, func.length(Embedding.vector) == self.dim * 4)
            )

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
        import numpy as np

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

    def _new_index(self, capacity: int, m: int = M) -> None:
        import hnswlib

        self.index = hnswlib.Index(space="ip", dim=self.dim)
        self.index.init_index(
            max_elements=max(MIN_CAPACITY, capacity), M=m, ef_construction=max(EF_CONSTRUCTION, 8 * m),
            allow_replace_deleted=True,
        )  # fmt: skip
        self.M, self.ef = m, EF_SEARCH
        self.recall = self.recall_count = None
        self.index.set_ef(self.ef)
        self.index.set_num_threads(self.threads)
        self.live, self.deleted = set(), set()

    def rebuild(self, catalogue: Catalogue) -> None:
        with catalogue.session() as s:
            count = s.scalar(select(func.count()).select_from(Embedding).where(Embedding.model == self.model))
            self.seq = catalogue.current_seq(s)
        self._new_index(int(count * 1.25), self.M)
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

    # ------------------------------------------------------------------ recall

    def needs_recall(self) -> bool:
        """Whether recall should be measured before the next save: never measured, or grown by more
        than RECALL_GROWTH since."""
        return self.index is not None and _recall_due(len(self.live), self.recall, self.recall_count)

    def tune(self, queries: int = RECALL_QUERIES, target: float = RECALL_TARGET, seed: int = 0) -> float:
        """Measure recall@10 on ``queries`` stored vectors against exact search and raise ef (then
        M, rebuilding) until it reaches ``target``; returns the recall reached (also in self.recall)."""
        import numpy as np

        labels = np.fromiter(sorted(self.live), dtype=np.int64, count=len(self.live))
        rng = np.random.default_rng(seed)
        sample = np.sort(rng.choice(len(labels), size=min(queries, len(labels)), replace=False))
        truth = None
        while True:
            floor = max(EF_SEARCH, self.ef if self.recall is not None and self.recall < target else EF_SEARCH)
            recall = 0.0
            for ef in [e for e in EF_STEPS if e >= floor] or [floor]:
                # vectors=None: read back from the index in chunks, never all at once
                recall, truth = measure_recall(self.index, labels, None, sample, ef=ef, truth=truth)
                self.ef = ef
                if recall >= target:
                    break
            bigger = [m for m in M_STEPS if m > self.M]
            if recall >= target or not bigger:
                break
            self._rebuild_from(labels, bigger[0])
        self.index.set_ef(self.ef)
        self.recall, self.recall_count = recall, len(self.live)
        self.dirty = True
        return recall

    def _rebuild_from(self, labels: np.ndarray, m: int, chunk: int = 20000) -> None:
        """A new graph with M = m from the live vectors of the current one (drops deleted slots)."""
        import numpy as np

        old = self.index
        self._new_index(int(len(labels) * 1.25), m)
        for i in range(0, len(labels), chunk):
            part = labels[i : i + chunk]
            self._add(part, np.asarray(old.get_items(part, return_type="numpy"), dtype=np.float32))

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
        """Write the index under a new name, then switch the marker to it (the commit point).

        Recall is measured (and ef/M raised) first when the index is new or has grown enough."""
        if self.needs_recall():
            self.tune()
        self.directory.mkdir(parents=True, exist_ok=True)
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
            written = os.stat(tmp_index)
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
                "file_mtime_ns": written.st_mtime_ns,  # hashed as it was then: see _marker_problem
                "ef": self.ef,
                "M": self.M,
                "recall": None if self.recall is None else round(float(self.recall), 4),
                "recall_count": self.recall_count,
            }
            self._write_marker(marker)
        except BaseException:
            try:
                os.unlink(tmp_index)
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

    def _write_marker(self, marker: dict) -> None:
        """Replace the marker atomically (the commit point of a save)."""
        fd, tmp_marker = tempfile.mkstemp(dir=self.directory, prefix=f".{self.model}.", suffix=".json")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                json.dump(marker, f)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp_marker, self.marker_path)
        except BaseException:
            try:
                os.unlink(tmp_marker)
            except OSError:
                pass
            raise

    # ------------------------------------------------------------------ search

    def __len__(self) -> int:
        return len(self.live)

    def search(self, query: np.ndarray, k: int, allowed=None) -> tuple[np.ndarray, np.ndarray]:
        """Top-k (labels, cosine similarities) for one normalised query vector."""
        import numpy as np

        k = min(k, len(self.live))
        if k == 0:
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32)
        self.index.set_ef(max(self.ef, k))
        labels, distances = self.index.knn_query(query.reshape(1, -1), k=k, filter=allowed)
        return labels[0].astype(np.int64), 1.0 - distances[0]
