"""`pixfind library check` and `repair`: find damage in a library, and salvage what is readable.

The catalogue is the library's only irreplaceable file; everything else (vector indexes,
thumbnails) is rebuilt from it and the photos. Check runs SQLite's integrity check, the
catalogue's own consistency rules (vector lengths, orphaned rows, the change counter) and
verifies each vector index file against the checksum in its marker, reading the catalogue
read-only. Repair backs the damaged catalogue up, copies every readable row, table by table
and row by row, into a fresh catalogue (Python's sqlite3 has no `.recover`), skipping
unreadable regions of a table, rebuilds the vector indexes and says how many photos the next
`pixfind index` will encode again.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import time
from dataclasses import dataclass, field
from pathlib import Path

import filelock

from ..errors import PixfindError, one_line
from . import migrations
from .catalogue import CATALOGUE_FILE, CORE_TABLES, _uri
from .library_dir import LOCK_FILE, Library
from .vector_index import FORMAT, VectorIndex, file_checksum, marker_shape_problem

# Tables copied by repair, parents first. vector_deletions is not copied: the indexes are rebuilt.
# The text read in photos is copied with them: its full-text index (ocr_fts) fills through the
# new catalogue's triggers as the lines go in.
SALVAGED_TABLES = ("folders", "photos", "embeddings", "skipped_files", "meta", "ocr_lines", "ocr_done")


@dataclass
class CheckReport:
    catalogue: Path
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


@dataclass
class RepairReport:
    backup: Path | None = None
    salvaged: dict[str, int] = field(default_factory=dict)  # table -> rows copied
    dropped: dict[str, int] = field(default_factory=dict)  # table -> readable rows refused (broken links, bad values)
    unreadable: dict[str, int] = field(default_factory=dict)  # table -> unreadable regions skipped
    bad_vectors: int = 0
    to_reindex: int = 0  # photos left without a vector for some model
    models: list[str] = field(default_factory=list)
    folders_rebuilt: list[str] = field(default_factory=list)  # folder rows lost, rebuilt from their photos' paths


def _open_read_only(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(_uri(path, mode="ro"), uri=True)
    try:
        conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
    except sqlite3.OperationalError:
        conn.close()
        conn = sqlite3.connect(_uri(path, mode="ro", immutable="1"), uri=True)
    return conn


def _tables(conn: sqlite3.Connection) -> set[str]:
    return {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}


def _usual_lengths(conn: sqlite3.Connection) -> dict[str, tuple[int, int]]:
    """model -> (usual vector length in bytes, vectors of another length)."""
    counts: dict[str, dict[int, int]] = {}
    for model, length, n in conn.execute("SELECT model, length(vector), count(*) FROM embeddings GROUP BY 1, 2"):
        counts.setdefault(model, {})[length or 0] = n
    result = {}
    for model, by_length in counts.items():
        plausible = [(n, length) for length, n in by_length.items() if length and length % 4 == 0]
        usual = max(plausible)[1] if plausible else -1
        result[model] = (usual, sum(n for length, n in by_length.items() if length != usual))
    return result


# --------------------------------------------------------------------------- check


def check(directory: str | os.PathLike) -> CheckReport:
    directory = Path(directory).expanduser().absolute()
    path = directory / CATALOGUE_FILE
    report = CheckReport(path)
    if not path.is_file():
        raise PixfindError(f"{directory}: not a pixfind library (no {CATALOGUE_FILE})")
    try:
        conn = _open_read_only(path)
    except sqlite3.Error as e:
        report.problems.append(f"the catalogue cannot be opened ({one_line(e)})")
        return report
    try:
        _check_catalogue(conn, report)
    except sqlite3.Error as e:
        report.problems.append(f"the catalogue cannot be read ({one_line(e)})")
    finally:
        conn.close()
    _check_indexes(directory, report)
    return report


def _check_catalogue(conn: sqlite3.Connection, report: CheckReport) -> None:
    try:
        found = [r[0] for r in conn.execute("PRAGMA integrity_check(20)")]
    except sqlite3.DatabaseError as e:
        found = [one_line(e)]
    if found != ["ok"]:
        report.problems.append(f"SQLite integrity check failed: {'; '.join(one_line(f, 120) for f in found[:3])}")
    version = conn.execute("PRAGMA user_version").fetchone()[0]
    if version > migrations.LATEST:
        report.problems.append(f"written by a newer pixfind (schema {version})")
        return
    tables = _tables(conn)
    missing = [t for t in CORE_TABLES + ("meta",) if t not in tables]
    if missing:
        report.problems.append(f"missing tables: {', '.join(missing)}")
    if "embeddings" in tables:
        for model, (usual, bad) in sorted(_usual_lengths(conn).items()):
            if bad:
                report.problems.append(
                    f"{bad} vectors of model {model} have the wrong length (not {usual} bytes): "
                    "their photos are encoded again by `pixfind index`"
                )
    orphans = conn.execute("PRAGMA foreign_key_check").fetchall() if not missing else []
    if orphans:
        by_table: dict[str, int] = {}
        for row in orphans:
            by_table[row[0]] = by_table.get(row[0], 0) + 1
        report.problems.append(
            "orphaned rows: " + ", ".join(f"{n} in {t}" for t, n in sorted(by_table.items()))
        )
    if "meta" in tables:
        row = conn.execute("SELECT value FROM meta WHERE key = 'seq'").fetchone()
        if row is not None:
            try:
                int(row[0])
            except (TypeError, ValueError):
                report.notes.append("the change counter is damaged (restored automatically on the next index run)")
        photos = conn.execute("SELECT count(*) FROM photos").fetchone()[0] if "photos" in tables else 0
        report.notes.append(f"{photos} photos catalogued")


def _check_indexes(directory: Path, report: CheckReport) -> None:
    vectors = directory / "vectors"
    for marker_path in sorted(vectors.glob("*.json")) if vectors.is_dir() else []:
        name = marker_path.stem
        try:
            marker = json.loads(marker_path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as e:
            report.problems.append(f"vector index {name}: unreadable marker ({one_line(e)}); rebuilt on the next index run")
            continue
        problem = marker_shape_problem(marker) if isinstance(marker, dict) else "its marker is not an object"
        if problem is None and marker.get("format") != FORMAT:
            problem = "made by another version (rebuilt on the next index run)"
        if problem is None:
            index_file = vectors / marker["file"]
            if not index_file.is_file():
                problem = "the index file is missing"
            elif index_file.stat().st_size != marker["file_size"]:
                problem = "the index file has the wrong size"
            elif file_checksum(index_file) != marker["checksum"]:
                problem = "the index file is corrupt (it does not match its checksum)"
        if problem:
            report.problems.append(f"vector index {name}: {problem}; rebuilt on the next index run or by repair")
        else:
            report.notes.append(f"vector index {name}: ok, {marker['count']} vectors, checksum verified")


# --------------------------------------------------------------------------- repair


def _columns(conn: sqlite3.Connection, table: str) -> list[str]:
    return [r[1] for r in conn.execute(f'PRAGMA table_info("{table}")')]


def _readable_from(conn: sqlite3.Connection, table: str, after: int | None) -> int | None:
    """The first rowid after ``after`` from which the table can be read again, or None."""
    def seek(start: int):
        return conn.execute(f'SELECT rowid FROM "{table}" WHERE rowid >= ? ORDER BY rowid LIMIT 1', (start,)).fetchone()

    base = after if after is not None else -(2**62)
    step = 1
    failed = base
    while step < 2**62:
        probe = base + step
        try:
            row = seek(probe)
        except sqlite3.DatabaseError:
            failed, step = probe, step * 2
            continue
        if row is None:
            return None
        lo, hi = failed, probe  # seeking from lo fails, from hi works: the first start that works
        while hi - lo > 1:
            mid = (lo + hi) // 2
            try:
                seek(mid)
                hi = mid
            except sqlite3.DatabaseError:
                lo = mid
        row = seek(hi)
        return None if row is None else row[0]
    return None


def _salvage_rows(conn: sqlite3.Connection, table: str, columns: list[str], report: RepairReport):
    """Every readable row of a table, in rowid order, skipping unreadable regions."""
    names = ", ".join(f'"{c}"' for c in columns)
    last: int | None = None
    while True:
        where, args = ("", ()) if last is None else ("WHERE rowid > ?", (last,))
        try:
            for row in conn.execute(f'SELECT rowid, {names} FROM "{table}" {where} ORDER BY rowid', args):
                last = row[0]
                yield row[1:]
            return
        except sqlite3.DatabaseError:
            report.unreadable[table] = report.unreadable.get(table, 0) + 1
            start = _readable_from(conn, table, last)
            if start is None:
                return
            try:  # the row itself may be what cannot be read (a broken overflow page)
                conn.execute(f'SELECT {names} FROM "{table}" WHERE rowid = ?', (start,)).fetchall()
                last = start - 1
            except sqlite3.DatabaseError:
                last = start
            if report.unreadable[table] > 100000:  # pragma: no cover - a hopeless file
                return


def _insert_row(dst: sqlite3.Connection, insert: str, row: tuple) -> bool:
    try:
        dst.execute("SAVEPOINT row")
        dst.execute(insert, row)
        dst.execute("RELEASE row")
        return True
    except sqlite3.DatabaseError:
        dst.execute("ROLLBACK TO row")
        dst.execute("RELEASE row")
        return False


def _rebuild_folder(dst: sqlite3.Connection, folder_id, photo_paths: list, report: RepairReport) -> int:
    """A folder row lost to damage, rebuilt as the deepest folder holding all of its photos.

    Its photos and their vectors are kept instead of being encoded again. Returns the id the
    photos now belong to (an existing folder at that path is reused).
    """
    parents = [os.path.dirname(os.fsencode(p)) for p in photo_paths if isinstance(p, (bytes, str))]
    try:
        path = os.path.commonpath(parents) if parents else None
    except ValueError:  # a mix of absolute and relative paths: nothing sensible to rebuild
        path = None
    if not path:
        return folder_id
    existing = dst.execute("SELECT id FROM folders WHERE path = ?", (path,)).fetchone()
    if existing:
        return existing[0]
    dst.execute("INSERT INTO folders (id, path, added_at) VALUES (?, ?, ?)", (folder_id, path, time.time()))
    report.folders_rebuilt.append(os.fsdecode(path))
    return folder_id


def repair(directory: str | os.PathLike) -> RepairReport:
    directory = Path(directory).expanduser().absolute()
    path = directory / CATALOGUE_FILE
    if not path.is_file():
        raise PixfindError(f"{directory}: not a pixfind library (no {CATALOGUE_FILE})")
    if not os.access(directory, os.W_OK):
        raise PixfindError(f"{directory}: the library is read-only; copy it somewhere writable to repair it")
    lock_path = directory / LOCK_FILE
    if lock_path.is_dir():
        try:
            lock_path.rmdir()
        except OSError:
            raise PixfindError(f"{lock_path}: the lock path is a folder with files in it; move it away") from None
    lock = filelock.FileLock(str(lock_path))
    try:
        lock.acquire(timeout=0)
    except filelock.Timeout:
        raise PixfindError(f"{directory}: another pixfind is updating this library; repair it when that is done") from None
    try:
        return _repair_locked(directory, path)
    finally:
        lock.release()


def _repair_locked(directory: Path, path: Path) -> RepairReport:
    report = RepairReport()
    stamp = time.strftime("%Y%m%d-%H%M%S")
    backup = directory / f"{CATALOGUE_FILE}.damaged-{stamp}"
    n = 1
    while backup.exists():
        backup, n = directory / f"{CATALOGUE_FILE}.damaged-{stamp}-{n}", n + 1
    need = sum(p.stat().st_size for p in (path, Path(f"{path}-wal")) if p.exists())
    free = shutil.disk_usage(directory).free
    if free < 2 * need + (1 << 20):
        raise PixfindError(f"{directory}: not enough free space to repair ({free} bytes free, about {2 * need} needed)")
    # The backup keeps the WAL next to it under the name SQLite looks for: reading it sees
    # every committed change.
    shutil.copy2(path, backup)
    if Path(f"{path}-wal").exists():
        shutil.copy2(f"{path}-wal", f"{backup}-wal")
    report.backup = backup

    fresh = directory / f"{CATALOGUE_FILE}.repair-tmp"
    for leftover in (fresh, Path(f"{fresh}-wal"), Path(f"{fresh}-shm"), Path(f"{fresh}-journal")):
        leftover.unlink(missing_ok=True)
    dst = sqlite3.connect(fresh)
    try:
        migrations.upgrade(dst, str(fresh))
        dst.execute("PRAGMA foreign_keys = ON")
        try:
            src = sqlite3.connect(_uri(backup, mode="ro"), uri=True)
            src_tables = _tables(src)
        except sqlite3.DatabaseError:
            src, src_tables = None, set()
        dst.execute("BEGIN")
        for table in SALVAGED_TABLES:
            if src is None or table not in src_tables:
                report.salvaged[table] = 0
                continue
            try:
                wanted = _columns(dst, table)
                columns = [c for c in wanted if c in set(_columns(src, table))]
            except sqlite3.DatabaseError:
                report.unreadable[table] = report.unreadable.get(table, 0) + 1
                continue
            insert = f'INSERT INTO "{table}" ({", ".join(columns)}) VALUES ({", ".join("?" * len(columns))})'
            copied = dropped = 0
            orphans: dict[int, list[tuple]] = {}  # photos whose folder row was lost, by folder id
            known_folders = {r[0] for r in dst.execute("SELECT id FROM folders")} if table == "photos" else set()
            for row in _salvage_rows(src, table, columns, report):
                if table == "photos" and "folder_id" in columns and "path" in columns:
                    folder_id = row[columns.index("folder_id")]
                    if folder_id not in known_folders:
                        orphans.setdefault(folder_id, []).append(row)
                        continue
                if _insert_row(dst, insert, row):
                    copied += 1
                else:
                    dropped += 1
            for folder_id, rows in orphans.items():
                new_id = _rebuild_folder(dst, folder_id, [r[columns.index("path")] for r in rows], report)
                for row in rows:
                    row = list(row)
                    row[columns.index("folder_id")] = new_id
                    if _insert_row(dst, insert, tuple(row)):
                        copied += 1
                    else:
                        dropped += 1
            report.salvaged[table] = copied
            if dropped:
                report.dropped[table] = dropped
        if src is not None:
            src.close()
        # Vectors of the wrong length are dropped: their photos are encoded again.
        for model, (usual, bad) in _usual_lengths(dst).items():
            if bad:
                dst.execute("DELETE FROM embeddings WHERE model = ? AND length(vector) != ?", (model, usual))
                report.bad_vectors += bad
        # A new identity makes every saved vector index stale; the counter restarts above every change.
        dst.execute("DELETE FROM meta WHERE key IN ('catalogue_id', 'seq')")
        dst.execute("INSERT INTO meta (key, value) SELECT 'seq', CAST(coalesce(max(seq), 0) AS TEXT) FROM embeddings")
        dst.execute("COMMIT")
        report.models = [r[0] for r in dst.execute("SELECT DISTINCT model FROM embeddings ORDER BY model")]
        if report.models:
            report.to_reindex = dst.execute(
                "SELECT count(*) FROM photos WHERE (SELECT count(*) FROM embeddings e WHERE e.photo_id = photos.id) < ?",
                (len(report.models),),
            ).fetchone()[0]
        else:
            report.to_reindex = dst.execute("SELECT count(*) FROM photos").fetchone()[0]
        dims = {m: n // 4 for m, (n, _) in _usual_lengths(dst).items()}
        dst.execute("PRAGMA journal_mode = WAL")
    finally:
        dst.close()
    # Swap: the damaged files are in the backup; the fresh catalogue takes their place.
    for stale in (Path(f"{path}-wal"), Path(f"{path}-shm")):
        stale.unlink(missing_ok=True)
    os.replace(fresh, path)
    for stale in (Path(f"{fresh}-wal"), Path(f"{fresh}-shm")):
        stale.unlink(missing_ok=True)

    with Library(directory) as library:
        for model, dim in dims.items():
            index = VectorIndex(library.vectors_dir, model, dim, library.catalogue_id)
            index.rebuild(library.catalogue)
            try:
                index.save()
            except OSError as e:
                raise PixfindError(
                    f"{library.vectors_dir}: the catalogue is repaired but the vector index could not be saved "
                    f"({e.strerror or e}); it is rebuilt on the next index run"
                ) from None
    return report
