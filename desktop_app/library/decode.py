"""Decoding one photo: the model input, its metadata and its thumbnail from a single decode.

JPEGs are decoded in draft mode at the smallest scale still large enough for the model
input and the thumbnail. HEIC/HEIF open through pillow-heif, camera RAW files through
the JPEG preview embedded in them (rawpy), when those libraries are installed.
"""

from __future__ import annotations

import io
import time
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageOps

from ..errors import PixfindError
from ..preprocess import ImagePreprocessor, load_image, to_rgb
from . import metadata
from .scanner import RAW_EXTENSIONS
from .thumbnails import SIZE as THUMB_SIZE
from .thumbnails import ThumbnailCache

try:
    import pillow_heif

    pillow_heif.register_heif_opener()
except ImportError:  # HEIC support is optional
    pass


@dataclass
class Decoded:
    pixels: np.ndarray  # float32 [3, H, W], ready for the image encoder
    meta: metadata.PhotoMetadata
    thumbnail: str | None
    seconds: float


def _raw_preview(path: str) -> Image.Image:
    try:
        import rawpy
    except ImportError:
        raise PixfindError(f"{path}: camera RAW files need the 'rawpy' package") from None
    try:
        with rawpy.imread(path) as raw:
            thumb = raw.extract_thumb()
    except (rawpy.LibRawError, OSError) as e:
        raise PixfindError(f"{path}: unreadable RAW file or no embedded preview ({e})") from None
    if thumb.format == rawpy.ThumbFormat.JPEG:
        image = Image.open(io.BytesIO(thumb.data))
        image.load()
        image = ImageOps.exif_transpose(image) or image
    else:
        image = Image.fromarray(thumb.data)
    return to_rgb(image)


# A photo is never longer than this many times its width (or the reverse): panoramas reach about
# 10:1. Beyond it, only the middle part is kept. Resizing the short side to the model's input
# size would otherwise blow the long side up: a 100-byte 1x10000 PNG became 224x2,240,000
# pixels (2 GB), a 1x8,000,000 one a MemoryError.
MAX_ASPECT = 20


def bounded(image: Image.Image) -> Image.Image:
    """The image, or its middle part cut to at most MAX_ASPECT:1, so that every later resize stays small."""
    width, height = image.size
    if width > height * MAX_ASPECT:
        keep = height * MAX_ASPECT
        left = (width - keep) // 2
        return image.crop((left, 0, left + keep, height))
    if height > width * MAX_ASPECT:
        keep = width * MAX_ASPECT
        top = (height - keep) // 2
        return image.crop((0, top, width, top + keep))
    return image


def open_upright(path: str, draft_size: int | None = None) -> Image.Image:
    """An upright 8-bit RGB image of any supported photo file, cut to at most MAX_ASPECT:1
    (see bounded); PixfindError when that is impossible. The pixel count is bounded by
    Pillow's decompression-bomb limit, checked from the header before decoding."""
    if path.lower().endswith(tuple(RAW_EXTENSIONS)):
        return bounded(_raw_preview(path))
    return bounded(load_image(path, draft_size=draft_size))


def decode(path: str, preprocessor: ImagePreprocessor, thumbnails: ThumbnailCache, fingerprint: str) -> Decoded:
    start = time.perf_counter()
    meta = metadata.read(path)
    image = open_upright(path, draft_size=max(preprocessor.draft_size, THUMB_SIZE))
    if meta.width is None:  # header unreadable by Pillow (RAW): the preview's size
        meta.width, meta.height = image.size
    thumbnail = thumbnails.save(image, fingerprint)
    pixels = preprocessor.preprocess_one(image)
    return Decoded(pixels, meta, thumbnail, time.perf_counter() - start)
