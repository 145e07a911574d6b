"""The catalogue: the library's source of truth, a SQLite file read through SQLAlchemy 2.

Paths are stored as the raw bytes the OS gave us (``os.fsencode``), so file names that
are not valid UTF-8 round-trip exactly; Python sees them as ``str`` with surrogate escapes.
"""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

from sqlalchemy import (
    Float,
    ForeignKey,
    Integer,
    LargeBinary,
    String,
    TypeDecorator,
    create_engine,
    event,
    select,
)
from sqlalchemy.engine import Engine
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, sessionmaker

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


def _on_connect(dbapi_conn, _record) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA foreign_keys = ON")
    cur.execute("PRAGMA synchronous = NORMAL")  # safe with WAL: a crash loses at most the last commits
    cur.execute("PRAGMA busy_timeout = 30000")
    cur.close()


class Catalogue:
    """An open catalogue file: an engine plus a session factory."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            conn = sqlite3.connect(self.path)
            try:
                conn.execute("PRAGMA journal_mode = WAL")
                migrations.upgrade(conn, str(self.path))
            finally:
                conn.close()
        except sqlite3.DatabaseError as e:
            raise PixfindError(f"{self.path}: not a pixfind library or damaged ({e})") from None
        except sqlite3.OperationalError as e:
            raise PixfindError(f"{self.path}: cannot open the catalogue ({e})") from None
        self.engine: Engine = create_engine(f"sqlite:///{self.path}")
        event.listen(self.engine, "connect", _on_connect)
        self.sessions = sessionmaker(self.engine, expire_on_commit=False)

    def session(self) -> Session:
        return self.sessions()

    def close(self) -> None:
        self.engine.dispose()

    # Small queries used by several modules.
    def get_meta(self, session: Session, key: str, default: str | None = None) -> str | None:
        row = session.get(Meta, key)
        return row.value if row else default

    def set_meta(self, session: Session, key: str, value: str) -> None:
        session.merge(Meta(key=key, value=value))

    def next_seq(self, session: Session, count: int = 1) -> int:
        """Reserve ``count`` change numbers inside the caller's transaction; returns the first."""
        current = int(self.get_meta(session, "seq", "0"))
        self.set_meta(session, "seq", str(current + count))
        return current + 1

    def folders(self) -> list[Folder]:
        with self.session() as s:
            return list(s.scalars(select(Folder).order_by(Folder.path)))
