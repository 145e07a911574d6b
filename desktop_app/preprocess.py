"""Image loading and preprocessing for the image encoder, with Pillow and NumPy only.

:class:`ImagePreprocessor` reproduces open_clip's *eval* transform
(``open_clip.image_transform(..., is_train=False)``) for the settings stored in a
model pack, so that the ONNX image encoder sees the same pixels the PyTorch model
would. The resizing is done by the very same Pillow calls torchvision makes on PIL
images, and the normalisation is computed in float32 exactly as torch does, so the
output matches open_clip bit for bit (``tests/unit/test_preprocess_parity.py``).

What open_clip does, per ``resize_mode``:

* ``shortest``, square target: ``torchvision.transforms.Resize(size)`` (shortest
  edge to ``size``, the long edge *truncated*: ``int(size * long / short)``), then
  ``CenterCrop(size)``.
* ``shortest``, non-square target: ``ResizeKeepRatio(size)`` (both edges divided by
  the smaller of the two ratios, then *rounded*), then ``CenterCrop``. open_clip does
  not pass the interpolation to ``ResizeKeepRatio`` here, so this resize is always
  bicubic; we copy that quirk.
* ``longest``: ``ResizeKeepRatio(size, longest=1)`` then ``CenterCropOrPad`` with
  ``fill_color``.
* ``squash``: ``Resize((h, w))``, ignoring the aspect ratio.

then ``convert('RGB')``, ``ToTensor`` (``/255``) and ``Normalize(mean, std)``.

This module must not import torch.
"""

from __future__ import annotations

import os
import struct
import zlib
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from .errors import PixfindError, one_line
from .pack import RESIZE_MODES, ImageSettings

__all__ = ["ImagePreprocessor", "load_image", "to_rgb"]

_RESAMPLE = {"bicubic": Image.Resampling.BICUBIC, "bilinear": Image.Resampling.BILINEAR}


# --------------------------------------------------------------------------- loading


def _scale_to_uint8(values: np.ndarray, full_scale: float) -> np.ndarray:
    return np.clip(np.rint(values.astype(np.float64) * (255.0 / full_scale)), 0, 255).astype(np.uint8)


def _high_depth_to_l(image: Image.Image) -> Image.Image:
    """Greyscale with more than 8 bits ('I;16*', 'I', 'F') to 8-bit 'L'.

    Pillow's own ``convert('L')``/``convert('RGB')`` clips these at 255, which turns
    almost every 16-bit photo white, so scale instead:

    * 'I;16', 'I;16B', ...: the 0..65535 range maps onto 0..255.
    * 'I' (32-bit int, what some plugins give for 16-bit data): treated as 8-bit data
      when every value is in 0..255, otherwise as 16-bit (clipped to 0..65535).
    * 'F': [0, 1] when every value is in it, else [0, 255], else [0, 65535], else
      stretched from its minimum to its maximum. NaNs become 0.
    """
    if image.mode.startswith("I;16"):
        data = np.asarray(image.convert("I"), dtype=np.int64)
        return Image.fromarray(_scale_to_uint8(data, 65535.0), mode="L")
    data = np.asarray(image, dtype=np.float64)
    data = np.where(np.isfinite(data), data, 0.0)
    lo = float(data.min()) if data.size else 0.0
    hi = float(data.max()) if data.size else 0.0
    if image.mode == "I":
        full = 255.0 if lo >= 0 and hi <= 255 else 65535.0
        return Image.fromarray(_scale_to_uint8(np.clip(data, 0, full), full), mode="L")
    # 'F'
    if lo >= 0 and hi <= 1.0:
        full = 1.0
    elif lo >= 0 and hi <= 255.0:
        full = 255.0
    elif lo >= 0 and hi <= 65535.0:
        full = 65535.0
    else:
        full = (hi - lo) or 1.0
        data = data - lo
    return Image.fromarray(_scale_to_uint8(data, full), mode="L")


def to_rgb(image: Image.Image) -> Image.Image:
    """Convert any Pillow mode to 8-bit 'RGB' the way open_clip's ``convert('RGB')`` does.

    Alpha is *dropped*, not composited: transparent pixels keep the colour stored under
    them, exactly as ``Image.convert('RGB')`` (which open_clip's transforms and its
    training data loaders use) gives them. Palette images with transparency go through
    'RGBA' first, which gives the same pixels as ``convert('RGB')`` without Pillow's
    "Palette images with Transparency" warning. Greyscale deeper than 8 bits is scaled
    to 8 bits instead of being clipped (see :func:`_high_depth_to_l`). CMYK uses
    Pillow's plain conversion, as open_clip does (no ICC colour management).

    Raises ValueError for a mode Pillow cannot convert.
    """
    mode = image.mode
    if mode == "RGB":
        return image
    if mode.startswith("I") or mode == "F":
        return _high_depth_to_l(image).convert("RGB")
    if mode in ("P", "PA") and ("transparency" in image.info or mode == "PA"):
        return image.convert("RGBA").convert("RGB")
    return image.convert("RGB")


def _draft_box(draft_size: int | Sequence[int]) -> tuple[int, int]:
    if isinstance(draft_size, (int, np.integer)):
        side = int(draft_size)
    else:
        side = max(int(v) for v in draft_size)
    if side <= 0:
        raise ValueError(f"draft_size must be positive, got {draft_size!r}")
    # Square box of the larger target side: enough for every resize mode, and for
    # either orientation (draft runs before the EXIF rotation is applied).
    return side, side


# Errors Pillow's decoders raise for broken or truncated data.
_DECODE_ERRORS = (OSError, SyntaxError, ValueError, EOFError, IndexError, struct.error, zlib.error)


def load_image(path: str | os.PathLike[str], draft_size: int | Sequence[int] | None = None) -> Image.Image:
    """Open an image file as an 8-bit 'RGB' Pillow image, upright.

    The EXIF orientation is applied (``ImageOps.exif_transpose``) and the image is
    converted with :func:`to_rgb`. Only the first frame of animations and multi-page
    files is used.

    ``draft_size`` (an int, or the pack's ``(height, width)``) lets the JPEG decoder
    decode at 1/2, 1/4 or 1/8 scale while both sides stay at least
    ``max(draft_size)``, which makes big JPEGs much cheaper to load. It changes the
    pixels slightly compared with a full decode followed by the resize, so it is off by
    default; pass it for indexing speed, leave it out for exact parity with open_clip.
    Non-JPEG files ignore it.

    Raises :class:`PixfindError` with one line naming the file for a missing,
    unreadable, empty, truncated, corrupt or non-image file, and for images larger
    than ``PIL.Image.MAX_IMAGE_PIXELS`` (Pillow's decompression-bomb limit; raise
    that limit to accept huge images).
    """
    path = Path(path)
    where = str(path)
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        raise PixfindError(f"{where}: file not found") from None
    except PermissionError:
        raise PixfindError(f"{where}: permission denied") from None
    except OSError as e:
        raise PixfindError(f"{where}: cannot read file ({one_line(e.strerror or e)})") from None
    if path.is_dir():
        raise PixfindError(f"{where}: is a directory, not an image file")
    if size == 0:
        raise PixfindError(f"{where}: empty file (0 bytes)")

    try:
        image = Image.open(path)
    except PermissionError:
        raise PixfindError(f"{where}: permission denied") from None
    except FileNotFoundError:
        raise PixfindError(f"{where}: file not found") from None
    except Image.DecompressionBombError as e:
        raise PixfindError(
            f"{where}: image too large, refused as a possible decompression bomb ({one_line(e)})"
        ) from None
    except UnidentifiedImageError:
        raise PixfindError(f"{where}: not an image, or an image format Pillow cannot read") from None
    except _DECODE_ERRORS as e:
        raise PixfindError(f"{where}: corrupt image file ({one_line(e)})") from None

    try:
        limit = Image.MAX_IMAGE_PIXELS
        width, height = image.size
        if limit is not None and width * height > limit:
            # Pillow only warns (DecompressionBombWarning) between the limit and twice it.
            raise PixfindError(
                f"{where}: image too large ({width}x{height} = {width * height} pixels, more than"
                f" Pillow's limit of {limit}; refused as a possible decompression bomb)"
            )
        if width <= 0 or height <= 0:
            raise PixfindError(f"{where}: image has no pixels ({width}x{height})")
        if draft_size is not None:
            # Only JPEG and MPO implement draft; for other formats it does nothing.
            image.draft("RGB", _draft_box(draft_size))
        try:
            image.load()
        except Image.DecompressionBombError:
            raise PixfindError(f"{where}: image too large (refused as a possible decompression bomb)") from None
        except _DECODE_ERRORS as e:
            raise PixfindError(f"{where}: truncated or corrupt image data ({one_line(e)})") from None

        try:
            upright = ImageOps.exif_transpose(image)
        except Exception:  # noqa: BLE001 - broken EXIF must not make a readable photo unusable
            upright = image
        if upright is None:  # pragma: no cover - only with in_place=True
            upright = image
        try:
            rgb = to_rgb(upright)
        except ValueError as e:
            raise PixfindError(f"{where}: unsupported colour mode {image.mode!r} ({one_line(e)})") from None
        if rgb is image:
            rgb = image.copy()  # detach from the file before it is closed
        return rgb
    finally:
        image.close()


# --------------------------------------------------------------------------- preprocessing


def _keep_ratio_size(width: int, height: int, target: tuple[int, int], longest: float) -> tuple[int, int]:
    """open_clip's ``ResizeKeepRatio.get_params`` (no random scale/aspect); returns (w, h).

    The arithmetic is kept literally the same (including Python's round-half-to-even)
    so sizes agree for every input. open_clip can produce a 0-pixel side for extreme
    aspect ratios in 'longest' mode (and then crashes); we keep at least 1 pixel.
    """
    target_h, target_w = target
    ratio_h = height / target_h
    ratio_w = width / target_w
    ratio = max(ratio_h, ratio_w) * longest + min(ratio_h, ratio_w) * (1.0 - longest)
    new_h, new_w = (round(x * 1.0 / ratio) for x in (height, width))
    return max(1, new_w), max(1, new_h)


def _shortest_edge_size(width: int, height: int, size: int) -> tuple[int, int]:
    """torchvision's ``Resize(int)`` output size (long edge truncated); returns (w, h)."""
    short, long = (width, height) if width <= height else (height, width)
    new_short, new_long = size, int(size * long / short)
    return (new_short, new_long) if width <= height else (new_long, new_short)


def _resize(image: Image.Image, size_wh: tuple[int, int], resample: int) -> Image.Image:
    if image.size == size_wh:  # torchvision returns the image untouched
        return image
    return image.resize(size_wh, resample)


def _center_crop_or_pad(image: Image.Image, size_hw: tuple[int, int], fill: int) -> Image.Image:
    """torchvision ``center_crop`` / open_clip ``center_crop_or_pad`` on a PIL image."""
    crop_h, crop_w = size_hw
    width, height = image.size
    if crop_w > width or crop_h > height:
        left = (crop_w - width) // 2 if crop_w > width else 0
        top = (crop_h - height) // 2 if crop_h > height else 0
        right = (crop_w - width + 1) // 2 if crop_w > width else 0
        bottom = (crop_h - height + 1) // 2 if crop_h > height else 0
        image = ImageOps.expand(image, border=(left, top, right, bottom), fill=(fill,) * len(image.getbands()))
        width, height = image.size
        if (width, height) == (crop_w, crop_h):
            return image
    top = round((height - crop_h) / 2.0)  # int(round(...)) in torchvision: half to even
    left = round((width - crop_w) / 2.0)
    return image.crop((left, top, left + crop_w, top + crop_h))


class ImagePreprocessor:
    """Turns Pillow images into the float32 ``[N, 3, H, W]`` tensor the image encoder takes.

    Input images may be in any Pillow mode; non-RGB images are converted with
    :func:`to_rgb` *before* resizing (open_clip resizes first and converts after; the
    two agree for RGB and greyscale, and converting first avoids Pillow's
    nearest-neighbour resizing of palette images). Use :func:`load_image` to open files.
    """

    def __init__(self, settings: ImageSettings):
        size = tuple(int(v) for v in settings.size)
        if len(size) != 2 or min(size) <= 0:
            raise ValueError(f"image size {settings.size!r} is not a positive (height, width)")
        if settings.resize_mode not in RESIZE_MODES:
            raise ValueError(f"resize_mode {settings.resize_mode!r} is not one of {', '.join(RESIZE_MODES)}")
        if settings.interpolation not in _RESAMPLE:
            raise ValueError(f"interpolation {settings.interpolation!r} is not bicubic or bilinear")
        if len(settings.mean) != 3 or len(settings.std) != 3:
            raise ValueError("mean and std need three values each")
        if any(float(s) == 0.0 for s in settings.std):
            raise ValueError(f"std {settings.std!r} contains 0")
        fill = int(settings.fill_color)
        if not 0 <= fill <= 255:
            raise ValueError(f"fill_color {settings.fill_color!r} is not in 0..255")

        self.settings = settings
        self.size: tuple[int, int] = size  # (height, width)
        self.resize_mode = settings.resize_mode
        self.resample = _RESAMPLE[settings.interpolation]
        self.fill_color = fill
        # Normalisation as a lookup table: lut[c, v] = (v / 255 - mean[c]) / std[c],
        # computed in float32 in the same order as ToTensor + Normalize, so it is
        # bit-identical to torch.
        mean = np.asarray(settings.mean, dtype=np.float32).reshape(3, 1)
        std = np.asarray(settings.std, dtype=np.float32).reshape(3, 1)
        levels = np.arange(256, dtype=np.float32) / np.float32(255)
        self._lut = np.ascontiguousarray(((levels[None, :] - mean) / std).astype(np.float32))

    @property
    def draft_size(self) -> int:
        """The ``draft_size`` to pass to :func:`load_image` for this model."""
        return max(self.size)

    def resize_and_crop(self, image: Image.Image) -> Image.Image:
        """The geometric part of the transform: an RGB image of exactly ``size``."""
        if image.mode != "RGB":
            image = to_rgb(image)
        height_t, width_t = self.size
        width, height = image.size
        if width <= 0 or height <= 0:
            raise ValueError(f"image has no pixels ({width}x{height})")
        if self.resize_mode == "squash":
            return _resize(image, (width_t, height_t), self.resample)
        if self.resize_mode == "longest":
            image = _resize(image, _keep_ratio_size(width, height, self.size, 1.0), self.resample)
            return _center_crop_or_pad(image, self.size, self.fill_color)
        # shortest
        if height_t == width_t:
            image = _resize(image, _shortest_edge_size(width, height, height_t), self.resample)
        else:
            # open_clip builds ResizeKeepRatio(image_size) here without the interpolation:
            # always bicubic.
            image = _resize(image, _keep_ratio_size(width, height, self.size, 0.0), Image.Resampling.BICUBIC)
        return _center_crop_or_pad(image, self.size, 0)  # torchvision CenterCrop pads with 0

    def _normalise_into(self, image: Image.Image, out: np.ndarray) -> None:
        pixels = np.asarray(image, dtype=np.uint8)  # [H, W, 3]
        for c in range(3):
            np.take(self._lut[c], pixels[..., c], out=out[c])

    def preprocess_one(self, image: Image.Image) -> np.ndarray:
        """One image as a float32 ``[3, H, W]`` array."""
        out = np.empty((3, *self.size), dtype=np.float32)
        self._normalise_into(self.resize_and_crop(image), out)
        return out

    def __call__(self, images: Sequence[Image.Image]) -> np.ndarray:
        """A batch as a C-contiguous float32 ``[N, 3, H, W]`` array."""
        images = list(images)
        out = np.empty((len(images), 3, *self.size), dtype=np.float32)
        for i, image in enumerate(images):
            self._normalise_into(self.resize_and_crop(image), out[i])
        return out
