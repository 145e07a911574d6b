"""Schema versions of the catalogue, applied in order at open.

A plain ordered list of SQL scripts keyed by ``PRAGMA user_version`` rather than
alembic: the catalogue is a single-user SQLite file upgraded in-process when the
app starts, every step is forward-only, and this needs no migration scripts
directory shipped with the app. Each step runs in one transaction, so an upgrade
interrupted half-way leaves the previous version intact.
"""

from __future__ import annotations

import sqlite3

from ..errors import PixfindError

# Never edit a released step: add a new one. Tables mirror catalogue.py's models.
STEPS: list[str] = [
    # 1: the first release.
    """
    CREATE TABLE folders (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        path BLOB NOT NULL UNIQUE,
        added_at FLOAT NOT NULL
    );
    CREATE TABLE photos (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        folder_id INTEGER NOT NULL REFERENCES folders(id) ON DELETE CASCADE,
        path BLOB NOT NULL UNIQUE,
        size INTEGER NOT NULL,
        mtime_ns INTEGER NOT NULL,
        fingerprint VARCHAR NOT NULL,
        width INTEGER,
        height INTEGER,
        taken_at FLOAT,
        file_time FLOAT NOT NULL,
        gps_lat FLOAT,
        gps_lon FLOAT,
        camera_make VARCHAR,
        camera_model VARCHAR,
        orientation INTEGER,
        thumbnail VARCHAR,
        indexed_at FLOAT NOT NULL
    );
    CREATE INDEX ix_photos_fingerprint ON photos (fingerprint);
    CREATE INDEX ix_photos_folder_id ON photos (folder_id);
    CREATE TABLE embeddings (
        photo_id INTEGER NOT NULL REFERENCES photos(id) ON DELETE CASCADE,
        model VARCHAR NOT NULL,
        vector BLOB NOT NULL,
        seq INTEGER NOT NULL,
        PRIMARY KEY (photo_id, model)
    );
    CREATE INDEX ix_embeddings_model_seq ON embeddings (model, seq);
    CREATE TABLE vector_deletions (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        model VARCHAR NOT NULL,
        photo_id INTEGER NOT NULL,
        seq INTEGER NOT NULL
    );
    CREATE INDEX ix_vector_deletions_model_seq ON vector_deletions (model, seq);
    CREATE TABLE skipped_files (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        folder_id INTEGER REFERENCES folders(id) ON DELETE CASCADE,
        path BLOB NOT NULL UNIQUE,
        reason VARCHAR NOT NULL,
        at FLOAT NOT NULL
    );
    CREATE TABLE meta (
        key VARCHAR PRIMARY KEY,
        value VARCHAR NOT NULL
    );
    """,
]

LATEST = len(STEPS)


def upgrade(conn: sqlite3.Connection, where: str) -> int:
    """Bring the schema to LATEST; returns the version found before upgrading."""
    found = conn.execute("PRAGMA user_version").fetchone()[0]
    if found > LATEST:
        raise PixfindError(
            f"{where}: this library was written by a newer pixfind (schema {found}, this one reads up to {LATEST})"
        )
    for version in range(found + 1, LATEST + 1):
        # executescript commits first, so each step is wrapped in its own explicit transaction.
        conn.executescript(f"BEGIN IMMEDIATE; {STEPS[version - 1]}; PRAGMA user_version = {version}; COMMIT;")
    return found
