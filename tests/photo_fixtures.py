"""EXIF tags for generated test photos (see tests/library_helpers.make_photo's ``exif``), shared
by the library, places and window tests."""

from __future__ import annotations

import datetime as dt


def _dms(value: float) -> tuple[float, float, float]:
    value = abs(value)
    d = int(value)
    m = int((value - d) * 60)
    return (float(d), float(m), round((value - d - m / 60) * 3600, 2))


def gps_exif(lat: float, lon: float) -> dict:
    """EXIF with a GPS IFD (tag 0x8825) the way cameras write it: degrees, minutes, seconds and N/S, E/W."""
    return {0x8825: {1: "N" if lat >= 0 else "S", 2: _dms(lat), 3: "E" if lon >= 0 else "W", 4: _dms(lon)}}


def camera_exif(model: str, when: dt.datetime) -> dict:
    """EXIF of a camera 'Acme <model>' and the time the photo was taken (DateTimeOriginal)."""
    return {0x010F: "Acme", 0x0110: model, 0x8769: {0x9003: when.strftime("%Y:%m:%d %H:%M:%S")}}
