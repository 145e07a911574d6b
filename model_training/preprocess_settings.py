"""The pack's ImageSettings from an open_clip model's preprocessing config.

open_clip records how a model's images must be prepared in
``model.visual.preprocess_cfg`` (see ``open_clip.get_model_preprocess_cfg``); the
app reproduces its eval transform from :class:`desktop_app.pack.ImageSettings`
with :class:`desktop_app.preprocess.ImagePreprocessor`. Anything the app cannot
reproduce exactly is refused here, at export time, with a ValueError.
"""

from __future__ import annotations

import numbers
from collections.abc import Mapping
from dataclasses import asdict, is_dataclass
from typing import Any

from desktop_app.pack import RESIZE_MODES, ImageSettings

# open_clip's defaults (open_clip.constants / PreprocessCfg), used when a field is None,
# exactly as open_clip.image_transform does.
OPENAI_DATASET_MEAN = (0.48145466, 0.4578275, 0.40821073)
OPENAI_DATASET_STD = (0.26862954, 0.26130258, 0.27577711)


def _three_floats(value: Any, name: str, default: tuple[float, float, float]) -> tuple[float, float, float]:
    if value is None or (isinstance(value, (list, tuple)) and len(value) == 0):
        return default
    if isinstance(value, numbers.Real):
        values = (float(value),) * 3  # image_transform broadcasts a scalar
    else:
        try:
            values = tuple(float(v) for v in value)
        except TypeError:
            raise ValueError(f"preprocess {name} {value!r} is not a number or a sequence of numbers") from None
        if len(values) == 1:
            values = values * 3
    if len(values) != 3:
        raise ValueError(f"preprocess {name} {value!r} has {len(values)} values; the app needs 3 (RGB)")
    return values  # type: ignore[return-value]


def _size(value: Any) -> tuple[int, int]:
    if isinstance(value, numbers.Integral):
        size = (int(value), int(value))
    elif isinstance(value, (list, tuple)) and len(value) in (1, 2, 3):
        # (h, w), a 1-sequence, or open_clip's input_size style (C, H, W)
        items = list(value)
        if len(items) == 3:
            if int(items[0]) != 3:
                raise ValueError(f"preprocess size {value!r} has {items[0]} channels; the app needs 3 (RGB)")
            items = items[1:]
        if len(items) == 1:
            items = items * 2
        if not all(isinstance(v, numbers.Integral) or float(v).is_integer() for v in items):
            raise ValueError(f"preprocess size {value!r} is not whole pixels")
        size = (int(items[0]), int(items[1]))
    else:
        raise ValueError(f"preprocess size {value!r} is not an int or (height, width)")
    if min(size) <= 0:
        raise ValueError(f"preprocess size {value!r} is not positive")
    return size


def image_settings_from_cfg(cfg: Mapping[str, Any] | Any) -> ImageSettings:
    """ImageSettings from an open_clip preprocess cfg (a dict or ``open_clip.PreprocessCfg``)."""
    if is_dataclass(cfg) and not isinstance(cfg, type):
        cfg = asdict(cfg)
    if not isinstance(cfg, Mapping):
        raise TypeError(f"preprocess cfg {cfg!r} is not a dict or PreprocessCfg")
    if cfg.get("size") is None:
        raise ValueError("preprocess cfg has no image size")

    mode = cfg.get("mode") or "RGB"
    if mode != "RGB":
        raise ValueError(f"preprocess mode {mode!r} is not supported; the app feeds RGB images only")

    interpolation = cfg.get("interpolation") or "bicubic"
    if interpolation == "random":
        interpolation = "bicubic"  # open_clip's eval transform resolves 'random' to bicubic
    if interpolation not in ("bicubic", "bilinear"):
        raise ValueError(f"preprocess interpolation {interpolation!r} is not supported (bicubic or bilinear)")

    resize_mode = cfg.get("resize_mode") or "shortest"
    if resize_mode not in RESIZE_MODES:
        raise ValueError(f"preprocess resize_mode {resize_mode!r} is not one of {', '.join(RESIZE_MODES)}")

    mean = _three_floats(cfg.get("mean"), "mean", OPENAI_DATASET_MEAN)
    std = _three_floats(cfg.get("std"), "std", OPENAI_DATASET_STD)
    if any(s == 0.0 for s in std):
        raise ValueError(f"preprocess std {std!r} contains 0")

    fill = cfg.get("fill_color", 0)
    if fill is None:
        fill = 0
    if isinstance(fill, (list, tuple)):
        if len(set(fill)) != 1:
            raise ValueError(f"preprocess fill_color {fill!r} is not one grey level; the app supports a single int")
        fill = fill[0]
    if not isinstance(fill, numbers.Real) or float(fill) != int(fill) or not 0 <= int(fill) <= 255:
        raise ValueError(f"preprocess fill_color {fill!r} is not an int in 0..255")

    return ImageSettings(
        size=_size(cfg["size"]),
        resize_mode=resize_mode,
        interpolation=interpolation,
        mean=mean,
        std=std,
        fill_color=int(fill),
    )


def image_settings_from_model(model: Any) -> ImageSettings:
    """ImageSettings for an open_clip model (``open_clip.create_model*`` output).

    Reads ``open_clip.get_model_preprocess_cfg(model)``: the size (an int or
    ``(h, w)``) becomes ``(height, width)``, the other fields map one to one.
    Raises ValueError for a config the app cannot reproduce (non-RGB mode, unknown
    interpolation or resize mode, mean/std not of 3 channels, a per-channel fill).
    """
    import open_clip

    try:
        cfg = open_clip.get_model_preprocess_cfg(model)
    except AttributeError as e:
        raise ValueError(f"{type(model).__name__} has no open_clip preprocess config ({e})") from None
    return image_settings_from_cfg(cfg)
