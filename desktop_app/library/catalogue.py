"""The catalogue: the library's source of truth, a SQLite file read through SQLAlchemy 2.

Paths are stored as the raw bytes the OS gave us (``os.fsencode``), so file names that
are not valid UTF-8 round-trip exactly; Python sees them as ``str`` with surrogate escapes.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import urllib.parse
import uuid
from pathlib import Path

from sqlalchemy import (
    Float,
    ForeignKey,
    Integer,
    LargeBinary,
    String,
    TypeDecorator,
    bindparam,
    create_engine,
    event,
    func,
    select,
)
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, sessionmaker
from sqlalchemy.pool import QueuePool

from ..errors import PixfindError
from . import migrations

CATALOGUE_FILE = "catalogue.db"


class FsPath(TypeDecorator):
    """A filesystem path kept as OS bytes in a BLOB column."""

    impl = LargeBinary
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is None or isinstance(value, bytes):
            return value
        return os.fsencode(value)

    def process_result_value(self, value, dialect):
        return None if value is None else os.fsdecode(value)


def path_prefix_range(folder: str | Path) -> tuple[bytes, bytes]:
    """Bounds (lo, hi) such that lo <= path < hi selects everything under folder."""
    base = os.fsencode(folder).rstrip(b"/" + os.sep.encode()) + os.sep.encode()
    return base, base[:-1] + bytes([base[-1] + 1])


class Base(DeclarativeBase):
    pass


class Folder(Base):
    __tablename__ = "folders"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    path: Mapped[str] = mapped_column(FsPath, unique=True)
    added_at: Mapped[float] = mapped_column(Float)


class Photo(Base):
    __tablename__ = "photos"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    folder_id: Mapped[int] = mapped_column(ForeignKey("folders.id", ondelete="CASCADE"), index=True)
    path: Mapped[str] = mapped_column(FsPath, unique=True)
    size: Mapped[int] = mapped_column(Integer)
    mtime_ns: Mapped[int] = mapped_column(Integer)
    fingerprint: Mapped[str] = mapped_column(String, index=True)
    width: Mapped[int | None] = mapped_column(Integer)
    height: Mapped[int | None] = mapped_column(Integer)
    taken_at: Mapped[float | None] = mapped_column(Float)  # EXIF capture time, seconds since the epoch
    file_time: Mapped[float] = mapped_column(Float)
    gps_lat: Mapped[float | None] = mapped_column(Float)
    gps_lon: Mapped[float | None] = mapped_column(Float)
    place: Mapped[str | None] = mapped_column(String)  # nearest town of the GPS position; '' none near, NULL not looked up
    camera_make: Mapped[str | None] = mapped_column(String)
    camera_model: Mapped[str | None] = mapped_column(String)
    orientation: Mapped[int | None] = mapped_column(Integer)
    thumbnail: Mapped[str | None] = mapped_column(String)  # file name in the library's thumbnail cache
    indexed_at: Mapped[float] = mapped_column(Float)

    @property
    def date(self) -> float:
        return self.taken_at if self.taken_at is not None else self.file_time


class Embedding(Base):
    __tablename__ = "embeddings"
    photo_id: Mapped[int] = mapped_column(ForeignKey("photos.id", ondelete="CASCADE"), primary_key=True)
    model: Mapped[str] = mapped_column(String, primary_key=True)
    vector: Mapped[bytes] = mapped_column(LargeBinary)  # float32, L2-normalised
    seq: Mapped[int] = mapped_column(Integer)  # change counter the vector index catches up from


class VectorDeletion(Base):
    """A photo whose vector must leave the index of one model (kept until the index file has caught up)."""

    __tablename__ = "vector_deletions"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    model: Mapped[str] = mapped_column(String)
    photo_id: Mapped[int] = mapped_column(Integer)
    seq: Mapped[int] = mapped_column(Integer)


class SkippedFile(Base):
    __tablename__ = "skipped_files"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    folder_id: Mapped[int | None] = mapped_column(ForeignKey("folders.id", ondelete="CASCADE"))
    path: Mapped[str] = mapped_column(FsPath, unique=True)
    reason: Mapped[str] = mapped_column(String)
    at: Mapped[float] = mapped_column(Float)


class Meta(Base):
    __tablename__ = "meta"
    key: Mapped[str] = mapped_column(String, primary_key=True)
    value: Mapped[str] = mapped_column(String)


_META_VALUE = select(Meta.value).where(Meta.key == bindparam("key"))


def _on_connect(dbapi_conn, _record) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA foreign_keys = ON")
    cur.execute("PRAGMA synchronous = NORMAL")  # safe with WAL: a crash loses at most the last commits
    cur.execute("PRAGMA busy_timeout = 30000")
    cur.close()


# Tables every command needs; the others are disposable and recreated empty when missing.
CORE_TABLES = ("folders", "photos", "embeddings")
REPAIR_HINT = "run `pixfind library check` for details and `pixfind library repair` to salvage it"


def human_bytes(n: float) -> str:
    n = float(max(0, n))
    for unit in ("bytes", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TB"  # pragma: no cover


def free_space(path: Path) -> int | None:
    try:
        return shutil.disk_usage(path).free
    except OSError:
        return None


class CatalogueDamaged(PixfindError):
    """The catalogue file is not a readable pixfind catalogue: `pixfind library repair` salvages it."""

    def __init__(self, path: Path, problem: str):
        self.path, self.problem = Path(path), problem
        super().__init__(f"{path}: the catalogue is damaged ({problem}); {REPAIR_HINT}")


class LibraryReadOnly(PixfindError):
    """A change was asked of a library that cannot be written."""


class DiskFull(PixfindError):
    """The disk holding the library is full; everything committed before stays in the catalogue."""

    def __init__(self, path: Path, needed: int | None = None):
        self.path, self.needed = Path(path), needed
        self.free = free_space(self.path.parent)
        free = "unknown space" if self.free is None else human_bytes(self.free)
        need = f"; about {human_bytes(needed)} more is needed to finish" if needed else ""
        super().__init__(
            f"{self.path.parent}: the disk is full ({free} free{need}); nothing indexed so far is lost: "
            "free some space and run `pixfind index` again to resume"
        )

    def needing(self, needed: int) -> DiskFull:
        return DiskFull(self.path, needed)


def _is_read_only_error(message: str) -> bool:
    return "readonly" in message or "read-only" in message or "read only" in message


def translate(error: BaseException, path: Path, read_only: bool = False) -> PixfindError | None:
    """The one-line PixfindError for a SQLite error on the catalogue at path, or None for a bug."""
    if isinstance(error, PixfindError):
        return error
    if not isinstance(error, sqlite3.Error):
        return None
    message = " ".join(str(error).split()) or type(error).__name__
    low = message.lower()
    if "database or disk is full" in low or getattr(error, "sqlite_errorcode", None) == sqlite3.SQLITE_FULL:
        return DiskFull(path)
    if _is_read_only_error(low):
        return LibraryReadOnly(f"{path.parent}: the library is read-only ({message})")
    if "database is locked" in low or "database is busy" in low:
        return PixfindError(f"{path}: another process kept the catalogue locked for too long ({message}); try again")
    if "unable to open database file" in low or "disk i/o error" in low:
        return PixfindError(f"{path}: cannot read or write the catalogue ({message})")
    damage = ("malformed", "not a database", "no such table", "no such column", "corrupt", "encrypted")
    if any(word in low for word in damage) or type(error) is sqlite3.DatabaseError:
        return CatalogueDamaged(path, message)
    return None  # an integrity or programming error is a bug in pixfind: keep its traceback


def _writable(path: Path) -> bool:
    folder = path.parent
    if not os.access(folder, os.W_OK):
        return False
    return not path.exists() or os.access(path, os.W_OK)


def _uri(path: Path, **params: str) -> str:
    query = "&".join(f"{k}={v}" for k, v in params.items())
    return f"file:{urllib.parse.quote(str(path.absolute()))}?{query}"


class Catalogue:
    """An open catalogue file: an engine plus a session factory.

    Writable folders get a WAL catalogue whose schema is created or upgraded once, inside a
    write transaction (concurrent first users wait for each other, then see it done). A
    catalogue whose folder or file cannot be written (read-only mount, immutable folder) is
    opened read-only, without a lock or journal files; writes then fail with one line.
    """

    def __init__(self, path: Path, read_only: bool | None = None):
        self.path = Path(path)
        self.read_only = not _writable(self.path) if read_only is None else read_only
        self.catalogue_id: str | None = None
        self._immutable = False
        if not self.read_only:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        elif not self.path.is_file():
            raise PixfindError(f"{self.path.parent}: not a pixfind library (no {self.path.name}) and the folder is read-only")
        try:
            conn = self._connect_raw()
            try:
                self._prepare(conn)
            finally:
                conn.close()
        except sqlite3.Error as e:
            raise self._translate(e) from None
        self.engine: Engine = create_engine(
            "sqlite://", creator=self._connect_raw, poolclass=QueuePool, pool_size=5, max_overflow=10
        )
        event.listen(self.engine, "connect", _on_connect)
        event.listen(self.engine, "handle_error", self._on_error)
        self.sessions = sessionmaker(self.engine, expire_on_commit=False)

    # ------------------------------------------------------------------ opening

    def _connect_raw(self) -> sqlite3.Connection:
        if not self.read_only:
            return sqlite3.connect(self.path, timeout=30, check_same_thread=False)
        if self._immutable:
            return sqlite3.connect(_uri(self.path, mode="ro", immutable="1"), uri=True, check_same_thread=False)
        return sqlite3.connect(_uri(self.path, mode="ro"), uri=True, timeout=30, check_same_thread=False)

    def _prepare(self, conn: sqlite3.Connection) -> None:
        conn.isolation_level = None  # explicit transactions only
        if self.read_only:
            try:
                conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
            except sqlite3.OperationalError:
                # A WAL catalogue closed cleanly has no -shm file, and none can be created on a
                # read-only folder: nobody can be writing it, so read it as an immutable file.
                conn.close()
                self._immutable = True
                conn = self._connect_raw()
                conn.isolation_level = None
            try:
                found = conn.execute("PRAGMA user_version").fetchone()[0]
                migrations.check_version(found, str(self.path))
                if found < migrations.LATEST:
                    raise LibraryReadOnly(
                        f"{self.path}: this library was written by an older pixfind and must be upgraded, "
                        "but it is read-only"
                    )
                self._check_tables(conn)
                row = conn.execute("SELECT value FROM meta WHERE key = 'catalogue_id'").fetchone()
            finally:
                conn.close()
            self.catalogue_id = row[0] if row else "read-only"
            return
        conn.execute("PRAGMA journal_mode = WAL")
        # The schema is created or upgraded under SQLite's write lock, the version read inside
        # the same transaction: of several processes opening a new library at once, the first
        # creates it and the others find it done.
        conn.execute("BEGIN IMMEDIATE")
        try:
            found = conn.execute("PRAGMA user_version").fetchone()[0]
            migrations.check_version(found, str(self.path))
            for version in range(found + 1, migrations.LATEST + 1):
                if version == 1 and self._has_tables(conn):
                    # Tables but no version: not something this pixfind wrote.
                    raise CatalogueDamaged(self.path, "schema version missing")
                for statement in migrations.split_statements(migrations.STEPS[version - 1]):
                    conn.execute(statement)
                conn.execute(f"PRAGMA user_version = {version}")
            self._check_tables(conn)
            # Disposable tables and indexes lost to damage come back empty.
            had_meta = conn.execute("SELECT count(*) FROM sqlite_master WHERE name = 'meta'").fetchone()[0]
            for statement in migrations.split_statements(migrations.STEPS_IF_MISSING):
                conn.execute(statement)
            if not had_meta:  # the change counter must stay above every change number in use
                conn.execute(
                    "INSERT INTO meta (key, value) SELECT 'seq', CAST(coalesce(max(seq), 0) AS TEXT) FROM embeddings"
                )
            conn.execute(
                "INSERT OR IGNORE INTO meta (key, value) VALUES ('catalogue_id', ?)", (uuid.uuid4().hex,)
            )
            self.catalogue_id = conn.execute("SELECT value FROM meta WHERE key = 'catalogue_id'").fetchone()[0]
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise

    @staticmethod
    def _has_tables(conn: sqlite3.Connection) -> bool:
        return bool(conn.execute("SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'").fetchone()[0])

    def _check_tables(self, conn: sqlite3.Connection) -> None:
        names = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        missing = [t for t in CORE_TABLES if t not in names]
        if missing:
            raise CatalogueDamaged(self.path, f"table {', '.join(missing)} is missing")

    def _translate(self, error: BaseException) -> BaseException:
        return translate(error, self.path, self.read_only) or error

    def _on_error(self, context) -> None:
        converted = translate(context.original_exception, self.path, self.read_only)
        if converted is not None:
            raise converted

    def session(self) -> Session:
        return self.sessions()

    def reader(self) -> Connection:
        """A Core connection for reads that build no ORM object: a search's rows cost 0.4 ms less
        than through a session."""
        return self.engine.connect()

    def close(self) -> None:
        self.engine.dispose()

    # Small queries used by several modules.
    def get_meta(self, session: Session, key: str, default: str | None = None) -> str | None:
        # A Core select, not session.get: every query reads the change number two or three times,
        # and the ORM's identity lookup costs 0.28 ms against 0.09.
        value = session.scalar(_META_VALUE, {"key": key})
        return default if value is None else value

    def set_meta(self, session: Session, key: str, value: str) -> None:
        session.merge(Meta(key=key, value=value))

    def current_seq(self, session: Session) -> int:
        """The last change number; a damaged counter is recomputed from the changes themselves."""
        value = self.get_meta(session, "seq", "0")
        try:
            seq = int(value)
        except (TypeError, ValueError):
            seq = -1
        if seq >= 0:
            return seq
        highest = [
            session.scalar(select(func.max(Embedding.seq))),
            session.scalar(select(func.max(VectorDeletion.seq))),
        ]
        return max([int(h) for h in highest if h is not None] + [0])

    def next_seq(self, session: Session, count: int = 1) -> int:
        """Reserve ``count`` change numbers inside the caller's transaction; returns the first."""
        current = self.current_seq(session)
        self.set_meta(session, "seq", str(current + count))
        return current + 1

    def folders(self) -> list[Folder]:
        with self.session() as s:
            return list(s.scalars(select(Folder).order_by(Folder.path)))


# ---------------------------------------------------------------------- text read in photos (OCR)
# Schema step 4 (migrations.py) also creates the FTS5 index ocr_fts over these lines, the view it
# reads them through and the triggers that keep it in step; SQLAlchemy never touches those.


class OcrLine(Base):
    """One line of text recognised in a photo (library/ocr_pass.py)."""

    __tablename__ = "ocr_lines"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    photo_id: Mapped[int] = mapped_column(ForeignKey("photos.id", ondelete="CASCADE"), index=True)
    text: Mapped[str] = mapped_column(String)
    terms: Mapped[str | None] = mapped_column(String)  # the line as indexed, when that differs from text
    box: Mapped[str] = mapped_column(String)  # JSON [[x, y] * 4], fractions of the upright photo's size
    confidence: Mapped[float] = mapped_column(Float)


class OcrDone(Base):
    """A photo whose text was read by one OCR model version (its lines may be none)."""

    __tablename__ = "ocr_done"
    photo_id: Mapped[int] = mapped_column(ForeignKey("photos.id", ondelete="CASCADE"), primary_key=True)
    model: Mapped[str] = mapped_column(String, index=True)
    at: Mapped[float] = mapped_column(Float)


OCR_SETTING = "ocr"  # meta key: 'on' or 'off'; absent means on (migrations.py, step 4)


def ocr_enabled(catalogue: Catalogue) -> bool:
    """Whether this library reads the text in its photos."""
    with catalogue.session() as s:
        return catalogue.get_meta(s, OCR_SETTING, "on") != "off"


def set_ocr_enabled(catalogue: Catalogue, on: bool) -> None:
    with catalogue.session() as s, s.begin():
        catalogue.set_meta(s, OCR_SETTING, "on" if on else "off")
