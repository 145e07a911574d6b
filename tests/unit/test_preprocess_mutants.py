"""Behaviours of desktop_app/preprocess.py that mutation testing (benchmarks/mutation_score.py)
found untested: the exact reason a user reads for a file that cannot be loaded, and where a
float greyscale image switches from absolute levels to a stretched range."""

from __future__ import annotations

import os

import numpy as np
import pytest
from PIL import Image

from desktop_app.errors import PixfindError
from desktop_app.pack import ImageSettings
from desktop_app.preprocess import ImagePreprocessor, load_image, to_rgb
from tests.library_helpers import decompression_bomb


def _reason(path) -> str:
    with pytest.raises(PixfindError) as info:
        load_image(path)
    return str(info.value)


def test_a_symlink_loop_names_the_os_reason(tmp_path):
    path = tmp_path / "loop.jpg"
    os.symlink(path, path)
    assert _reason(path) == f"{path}: cannot read file (Too many levels of symbolic links)"


def test_a_decompression_bomb_says_how_large_it_is(tmp_path):
    path = decompression_bomb(tmp_path / "bomb.png")
    reason = _reason(path)
    assert reason.startswith(f"{path}: image too large, refused as a possible decompression bomb (")
    assert "1600000000 pixels" in reason  # Pillow's own count of the 40000 x 40000 header


def test_a_truncated_jpeg_says_what_pillow_found(tmp_path):
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 255, (300, 400, 3), dtype=np.uint8)).save(tmp_path / "full.jpg")
    data = (tmp_path / "full.jpg").read_bytes()
    (tmp_path / "half.jpg").write_bytes(data[: len(data) // 2])
    reason = _reason(tmp_path / "half.jpg")
    assert reason.startswith(f"{tmp_path / 'half.jpg'}: truncated or corrupt image data (image file is truncated")


def _grey(values) -> list[int]:
    return list(to_rgb(Image.fromarray(np.asarray([values], dtype=np.float32), mode="F")).getchannel(0).getdata())


def test_float_greyscale_up_to_exactly_65535_keeps_absolute_levels():
    # A 16-bit range stored as float whose brightest pixel is full white: levels are absolute, so a
    # dark pixel stays dark (1000 / 65535 * 255 = 3.9), it is not stretched down to black.
    assert _grey([1000.0, 32767.5, 65535.0]) == [4, 128, 255]


def test_float_greyscale_just_over_65535_is_stretched():
    # Past 65535 the values fit no known range: stretched from their minimum to their maximum.
    assert _grey([10000.0, 65535.5]) == [0, 255]


@pytest.mark.parametrize(
    "settings, message",
    [
        (dict(size=(224, 0)), "image size (224, 0) is not a positive (height, width)"),
        (dict(size=(224,)), "image size (224,) is not a positive (height, width)"),
        (dict(size=(224, 224), resize_mode="fit"), "resize_mode 'fit' is not one of "),
        (dict(size=(224, 224), interpolation="nearest"), "interpolation 'nearest' is not bicubic or bilinear"),
        (dict(size=(224, 224), mean=(0.5, 0.5)), "mean and std need three values each"),
        (dict(size=(224, 224), std=(0.5, 0.0, 0.5)), "std (0.5, 0.0, 0.5) contains 0"),
        (dict(size=(224, 224), fill_color=300), "fill_color 300 is not in 0..255"),
    ],
)
def test_impossible_image_settings_are_named(settings, message):
    # pack.json's schema refuses these first; a pack built in code meets this second line with the same words.
    with pytest.raises(ValueError) as info:
        ImagePreprocessor(ImageSettings(**settings))
    assert str(info.value).startswith(message)


def test_an_image_without_pixels_is_refused_by_name():
    with pytest.raises(ValueError, match=r"^image has no pixels \(0x5\)$"):
        ImagePreprocessor(ImageSettings(size=(32, 32))).preprocess_one(Image.new("RGB", (0, 5)))
