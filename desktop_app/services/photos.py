"""Catalogue reads the library service shares: photo rows as PhotoItems, folders, skipped files."""

from __future__ import annotations

import functools
import json
import os
from typing import TYPE_CHECKING

from sqlalchemy import bindparam, func, select

from ..library.catalogue import Embedding, Folder, Photo, SkippedFile
from ..library.search import Filters, photo_conditions
from .records import FolderInfo, PhotoItem, SkippedInfo

if TYPE_CHECKING:
    import numpy as np

CHUNK = 30000  # ids per IN (...) clause: under SQLite's variable limit
DATE = func.coalesce(Photo.taken_at, Photo.file_time)
# A list of photo ids as one JSON parameter, read back by SQLite's json_each: one statement
# compiled once, whatever the number of ids, where an expanding IN (...) is compiled for each
# call (240 rows: 0.6 ms against 1.5; SQLite's variable limit does not apply either).
_LISTED_IDS = select(func.json_each(bindparam("ids")).table_valued("value").c.value).scalar_subquery()

_COLUMNS = (
    Photo.id,
    Photo.path,
    Photo.thumbnail,
    DATE,
    Photo.width,
    Photo.height,
    Photo.size,
    Photo.camera_make,
    Photo.camera_model,
    Photo.gps_lat,
    Photo.gps_lon,
    Photo.place,
)
_ITEM_ROWS = select(*_COLUMNS).where(Photo.id.in_(_LISTED_IDS))


@functools.lru_cache(maxsize=4096)  # a library has a few dozen cameras; every result row asks
def camera_name(make: str | None, model: str | None) -> str | None:
    """"Canon Canon EOS R5" -> "Canon EOS R5": the model often repeats the make."""
    make, model = (make or "").strip(), (model or "").strip()
    if model.lower().startswith(make.lower()):
        make = ""
    return " ".join(p for p in (make, model) if p) or None


def _item(row, score: float) -> PhotoItem:
    pid, path, thumb, date, w, h, size, make, model, lat, lon, place = row
    gps = (lat, lon) if lat is not None else None
    return PhotoItem(pid, path, thumb, date, score, w, h, size, camera_name(make, model), gps, place or None)


def _listed(ids: list[int]) -> dict[str, str]:
    """The parameter of ``_LISTED_IDS``."""
    return {"ids": json.dumps([int(pid) for pid in ids])}


def items(reader, scored: list[tuple[int, float]]) -> list[PhotoItem]:
    """PhotoItems for (photo id, score) pairs, in the given order; ids no longer catalogued are left out.

    ``reader``: a session, or a Core connection (``Catalogue.reader``) where nothing else needs the ORM."""
    rows = {row[0]: row for row in reader.execute(_ITEM_ROWS, _listed([pid for pid, _ in scored])).all()}
    return [_item(rows[pid], score) for pid, score in scored if pid in rows]


def newest(session, filters: Filters, limit: int) -> list[PhotoItem]:
    stmt = select(*_COLUMNS).where(*photo_conditions(filters)).order_by(DATE.desc(), Photo.id.desc()).limit(limit)
    return [_item(row, 0.0) for row in session.execute(stmt)]


def vectors_by_id(session, model: str, ids: list[int]) -> dict[int, np.ndarray]:
    import numpy as np

    stmt = select(Embedding.photo_id, Embedding.vector).where(Embedding.model == model, Embedding.photo_id.in_(_LISTED_IDS))
    return {pid: np.frombuffer(v, dtype=np.float32) for pid, v in session.execute(stmt, _listed(ids))}


def vectors_by_path(session, model: str, paths: list[str]) -> dict[str, np.ndarray]:
    """Embeddings already in the catalogue for these files: "find similar" needs no decoding."""
    if not paths:
        return {}
    import numpy as np

    rows = session.execute(
        select(Photo.path, Embedding.vector)
        .join(Embedding, Embedding.photo_id == Photo.id)
        .where(Embedding.model == model, Photo.path.in_([os.fsencode(p) for p in paths]))
    ).all()
    return {p: np.frombuffer(v, dtype=np.float32) for p, v in rows}


def folders(session) -> list[FolderInfo]:
    counts = dict(session.execute(select(Photo.folder_id, func.count()).group_by(Photo.folder_id)).all())
    return [
        FolderInfo(f.id, f.path, counts.get(f.id, 0), os.path.isdir(f.path))
        for f in session.scalars(select(Folder).order_by(Folder.path))
    ]


def skipped(session) -> list[SkippedInfo]:
    return [SkippedInfo(r.path, r.reason) for r in session.scalars(select(SkippedFile).order_by(SkippedFile.path))]


def cameras(session) -> list[str]:
    rows = session.execute(select(Photo.camera_make, Photo.camera_model).distinct())
    return sorted({c for make, model in rows if (c := camera_name(make, model))})


def places(session) -> list[str]:
    """The place names of the library's photos, sorted."""
    rows = session.scalars(select(Photo.place).where(Photo.place.is_not(None), Photo.place != "").distinct())
    return sorted(rows, key=str.casefold)


def place_name(gps: tuple[float, float] | None) -> str | None:
    """The place of a GPS position not named in the catalogue yet (indexed by an older pixfind)."""
    from ..library import places as gazetteer

    return gazetteer.place_name(*gps) if gps else None


def embedded_counts(session) -> dict[str, int]:
    return dict(session.execute(select(Embedding.model, func.count()).group_by(Embedding.model)).all())


def date_span(session) -> tuple[float | None, float | None]:
    first, last = session.execute(select(func.min(DATE), func.max(DATE))).one()
    return first, last
