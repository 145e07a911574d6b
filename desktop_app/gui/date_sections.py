"""Date sections for the grid: one header per day, or per month when the photos span months.

As photo apps do: a short span (a trip, a week) reads best by day, a library by month.
Dates are wall-clock seconds (EXIF time, else the file's time), shown as they were taken.
"""

from __future__ import annotations

import datetime as dt

import numpy as np

DAY_SPAN_LIMIT = 62 * 86400  # up to about two months: a header per day; beyond: per month


def _titles_for(keys: np.ndarray, by_day: bool) -> dict[int, str]:
    titles = {}
    for key in np.unique(keys):
        if key < 0:
            titles[int(key)] = "No date"
            continue
        if by_day:
            day = dt.date(1970, 1, 1) + dt.timedelta(days=int(key))
            titles[int(key)] = f"{day:%A} {day.day} {day:%B %Y}"
        else:
            year, month = divmod(int(key), 12)
            titles[int(key)] = f"{dt.date(1970 + year, month + 1, 1):%B %Y}"
    return titles


def date_sections(dates: list[float | None]) -> list[tuple[int, str]]:
    """(first index, title) of each run of photos taken the same day or month, in list order."""
    if not dates:
        return []
    seconds = np.array([np.nan if d is None else d for d in dates], dtype=np.float64)
    known = ~np.isnan(seconds)
    span = float(np.nanmax(seconds) - np.nanmin(seconds)) if known.any() else 0.0
    by_day = span <= DAY_SPAN_LIMIT
    stamps = np.where(known, seconds, 0).astype("int64").astype("datetime64[s]")
    keys = stamps.astype("datetime64[D]" if by_day else "datetime64[M]").astype(np.int64)
    keys = np.where(known, keys, -1)
    starts = np.flatnonzero(np.concatenate(([True], keys[1:] != keys[:-1])))
    titles = _titles_for(keys[starts], by_day)
    return [(int(i), titles[int(keys[i])]) for i in starts]
