"""What a photo's header says about it: size, EXIF capture time, GPS, camera, orientation."""

from __future__ import annotations

import datetime as dt
import warnings
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from PIL import Image

# Pillow warns on stderr about malformed EXIF ("Tag data larger than file", "Corrupt EXIF data",
# "Metadata Warning"...): common in real photos, useless on a terminal. What is readable is
# still read; the warnings themselves are silenced (the filter is process-wide: decoding runs
# in threads, where catch_warnings is not safe).
warnings.filterwarnings("ignore", category=UserWarning, module=r"PIL\.TiffImagePlugin")
warnings.filterwarnings("ignore", message=r".*(EXIF|Exif|exif)", category=UserWarning, module=r"PIL\.")

_EXIF_IFD, _GPS_IFD = 0x8769, 0x8825
_MAKE, _MODEL, _ORIENTATION, _DATETIME = 0x010F, 0x0110, 0x0112, 0x0132
_DATETIME_ORIGINAL = 0x9003


@dataclass
class PhotoMetadata:
    width: int | None = None  # upright, after the EXIF orientation
    height: int | None = None
    taken_at: float | None = None
    gps_lat: float | None = None
    gps_lon: float | None = None
    camera_make: str | None = None
    camera_model: str | None = None
    orientation: int | None = None


def wall_clock(moment: dt.datetime) -> float:
    """Seconds for a naive local date-time, counted as if it were UTC.

    EXIF times carry no time zone, so every date in the catalogue (and every --after /
    --before bound) is kept as local wall-clock time: they compare as the user expects.
    """
    return moment.replace(tzinfo=dt.timezone.utc).timestamp()


def file_wall_clock(mtime: float) -> float:
    return wall_clock(dt.datetime.fromtimestamp(mtime))


def _text(value) -> str | None:
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    text = str(value).strip("\x00 \t\r\n") if value is not None else ""
    return text or None


def _exif_time(value) -> float | None:
    text = _text(value)
    if not text:
        return None
    for fmt in ("%Y:%m:%d %H:%M:%S", "%Y-%m-%d %H:%M:%S", "%Y:%m:%d %H:%M", "%Y:%m:%d"):
        try:
            return wall_clock(dt.datetime.strptime(text[: len(dt.datetime(2000, 1, 1).strftime(fmt))], fmt))
        except ValueError:
            continue
    return None


def _degrees(dms, ref) -> float | None:
    try:
        d, m, s = (float(v) for v in dms)
    except (TypeError, ValueError, ZeroDivisionError):
        return None
    value = d + m / 60 + s / 3600
    return -value if _text(ref) in ("S", "W") else value


def from_image(image: Image.Image) -> PhotoMetadata:
    """Read from an opened (not necessarily loaded) image; broken EXIF yields what is readable."""
    meta = PhotoMetadata()
    width, height = image.size
    try:
        exif = image.getexif()
    except Exception:  # noqa: BLE001 - malformed EXIF is common and must not lose the photo
        exif = {}
    orientation = exif.get(_ORIENTATION)
    if isinstance(orientation, int) and 1 <= orientation <= 8:
        meta.orientation = orientation
        if orientation in (5, 6, 7, 8):
            width, height = height, width
    meta.width, meta.height = width, height
    meta.camera_make = _text(exif.get(_MAKE))
    meta.camera_model = _text(exif.get(_MODEL))
    try:
        inner = exif.get_ifd(_EXIF_IFD) if hasattr(exif, "get_ifd") else {}
        meta.taken_at = _exif_time(inner.get(_DATETIME_ORIGINAL)) or _exif_time(exif.get(_DATETIME))
        gps = exif.get_ifd(_GPS_IFD) if hasattr(exif, "get_ifd") else {}
        if gps.get(2) and gps.get(4):
            meta.gps_lat, meta.gps_lon = _degrees(gps[2], gps.get(1)), _degrees(gps[4], gps.get(3))
            if meta.gps_lat is None or meta.gps_lon is None:
                meta.gps_lat = meta.gps_lon = None
    except Exception:  # noqa: BLE001 - see above
        pass
    return meta


def read(path: str) -> PhotoMetadata:
    """Read a file's header only (no pixel decoding). Unreadable headers give empty metadata."""
    from PIL import Image  # here: the indexer uses file_wall_clock on runs that decode nothing

    try:
        with Image.open(path) as image:
            return from_image(image)
    except Exception:  # noqa: BLE001 - the decoder reports the real problem with the file
        return PhotoMetadata()
