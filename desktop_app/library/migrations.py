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
    # 2: vector lengths indexed, so a damaged vector blob is found without reading every vector.
    """
    CREATE INDEX ix_embeddings_model_length ON embeddings (model, length(vector));
    """,
    # 3: the place name of a photo's GPS position (library/places.py): NULL until looked up
    # (rows of older versions are filled in by the next index run), '' when no town is near.
    """
    ALTER TABLE photos ADD COLUMN place VARCHAR;
    """,
    # 4: the text read in photos (library/ocr_pass.py). ocr_lines holds each recognised line with
    # its box (four corners, fractions of the upright photo's width and height, as JSON) and
    # confidence; `terms` is the line as the full-text index sees it when that differs from the
    # text (NFKC, CJK characters spaced apart: library/text_search.py), else NULL. ocr_fts is an
    # FTS5 index over that, its content read through a view and kept in step by triggers, so a
    # deleted photo (cascade) takes its lines and index entries along. ocr_done marks a photo as
    # read by one OCR model version (the pass resumes from it); new content under a known photo
    # id clears both. OCR is on by default ('ocr' absent from meta), except in libraries that
    # already had photos: an upgrade never starts hours of OCR unasked.
    """
    CREATE TABLE ocr_lines (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        photo_id INTEGER NOT NULL REFERENCES photos(id) ON DELETE CASCADE,
        text VARCHAR NOT NULL,
        terms VARCHAR,
        box VARCHAR NOT NULL,
        confidence FLOAT NOT NULL
    );
    CREATE INDEX ix_ocr_lines_photo_id ON ocr_lines (photo_id);
    CREATE TABLE ocr_done (
        photo_id INTEGER PRIMARY KEY REFERENCES photos(id) ON DELETE CASCADE,
        model VARCHAR NOT NULL,
        at FLOAT NOT NULL
    );
    CREATE INDEX ix_ocr_done_model ON ocr_done (model);
    CREATE VIEW ocr_terms AS SELECT id, coalesce(terms, text) AS terms FROM ocr_lines;
    CREATE VIRTUAL TABLE ocr_fts USING fts5(
        terms, content='ocr_terms', content_rowid='id', tokenize='unicode61 remove_diacritics 2', prefix='2 3'
    );
    CREATE TRIGGER ocr_lines_insert AFTER INSERT ON ocr_lines BEGIN
        INSERT INTO ocr_fts (rowid, terms) VALUES (new.id, coalesce(new.terms, new.text));
    END;
    CREATE TRIGGER ocr_lines_delete AFTER DELETE ON ocr_lines BEGIN
        INSERT INTO ocr_fts (ocr_fts, rowid, terms) VALUES ('delete', old.id, coalesce(old.terms, old.text));
    END;
    CREATE TRIGGER ocr_lines_update AFTER UPDATE ON ocr_lines BEGIN
        INSERT INTO ocr_fts (ocr_fts, rowid, terms) VALUES ('delete', old.id, coalesce(old.terms, old.text));
        INSERT INTO ocr_fts (rowid, terms) VALUES (new.id, coalesce(new.terms, new.text));
    END;
    CREATE TRIGGER photos_content_changed AFTER UPDATE OF fingerprint ON photos
    WHEN old.fingerprint IS NOT new.fingerprint BEGIN
        DELETE FROM ocr_lines WHERE photo_id = old.id;
        DELETE FROM ocr_done WHERE photo_id = old.id;
    END;
    INSERT INTO meta (key, value) SELECT 'ocr', 'off' WHERE EXISTS (SELECT 1 FROM photos);
    """,
]

LATEST = len(STEPS)

def _if_missing(script: str) -> str:
    """The script with every CREATE made conditional (IF NOT EXISTS)."""
    for kind in ("TABLE", "INDEX", "VIEW", "VIRTUAL TABLE", "TRIGGER"):
        script = script.replace(f"CREATE {kind} ", f"CREATE {kind} IF NOT EXISTS ")
    return script


# Disposable parts of the latest schema, recreated (empty) at open when damage removed them;
# losing them costs at most a rebuild of the vector index or a re-scan.
STEPS_IF_MISSING = """
    CREATE TABLE IF NOT EXISTS vector_deletions (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        model VARCHAR NOT NULL,
        photo_id INTEGER NOT NULL,
        seq INTEGER NOT NULL
    );
    CREATE TABLE IF NOT EXISTS skipped_files (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        folder_id INTEGER REFERENCES folders(id) ON DELETE CASCADE,
        path BLOB NOT NULL UNIQUE,
        reason VARCHAR NOT NULL,
        at FLOAT NOT NULL
    );
    CREATE TABLE IF NOT EXISTS meta (
        key VARCHAR PRIMARY KEY,
        value VARCHAR NOT NULL
    );
    CREATE INDEX IF NOT EXISTS ix_photos_fingerprint ON photos (fingerprint);
    CREATE INDEX IF NOT EXISTS ix_photos_folder_id ON photos (folder_id);
    CREATE INDEX IF NOT EXISTS ix_embeddings_model_seq ON embeddings (model, seq);
    CREATE INDEX IF NOT EXISTS ix_vector_deletions_model_seq ON vector_deletions (model, seq);
    CREATE INDEX IF NOT EXISTS ix_embeddings_model_length ON embeddings (model, length(vector));
""" + _if_missing(STEPS[3].split("    INSERT INTO meta")[0])
# OCR data lost to damage is read again by the next OCR pass; text_search.check_index rebuilds
# an index that no longer matches its lines.


def split_statements(script: str) -> list[str]:
    """A script's statements, split where SQLite says a statement is complete (triggers included)."""
    statements, current = [], ""
    for piece in script.split(";"):
        current += piece + ";"
        if sqlite3.complete_statement(current):
            if current.strip(" \t\r\n;"):
                statements.append(current.strip())
            current = ""
    return statements


def check_version(found: int, where: str) -> None:
    if found > LATEST:
        raise PixfindError(
            f"{where}: this library was written by a newer pixfind (schema {found}, this one reads up to {LATEST})"
        )


def upgrade(conn: sqlite3.Connection, where: str) -> int:
    """Bring the schema to LATEST on a fresh connection (used for new catalogues, e.g. by repair);
    returns the version found before upgrading. The whole upgrade is one write transaction that
    reads the version under the write lock, so concurrent callers apply each step once."""
    conn.isolation_level = None
    conn.execute("BEGIN IMMEDIATE")
    try:
        found = conn.execute("PRAGMA user_version").fetchone()[0]
        check_version(found, where)
        for version in range(found + 1, LATEST + 1):
            for statement in split_statements(STEPS[version - 1]):
                conn.execute(statement)
            conn.execute(f"PRAGMA user_version = {version}")
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    return found
