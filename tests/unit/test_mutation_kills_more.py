"""More tests that kill mutants which survived `benchmarks/mutation_score.py` (losses, preprocess).

Each names the behaviour it guards. Test names of the losses section contain "loss" and those of
the preprocess section avoid "tokenizer", "fingerprint" and "date", so the script's ``-k``
selections for those modules would pick them up.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from PIL import Image

from desktop_app.pack import ImageSettings
from desktop_app.preprocess import ImagePreprocessor, to_rgb

try:
    import torch

    from model_training.losses import (
        ArcFaceLoss,
        ClipLoss,
        MCIPLoss,
        MultiCaptionArcFaceLoss,
        SigLipLoss,
        positives_from_owner,
    )
except ImportError:  # the app's tests below run without torch
    torch = None

needs_torch = pytest.mark.skipif(torch is None, reason="torch is not installed")

# --------------------------------------------------------------------------- model_training/losses.py


@needs_torch
def test_mcip_loss_passes_its_scale_margin_and_hard_weight_to_both_terms():
    """MCIPLoss(scale, margin, hard_weight) must reach the class and the caption term, not their defaults."""
    torch.manual_seed(3)
    s, m, hard = 12.0, 0.35, 0.6
    loss = MCIPLoss(num_classes=4, dim=3, scale=s, margin=m, hard_weight=hard)
    x, labels = torch.randn(3, 3), torch.tensor([0, 3, 1])
    caps, positives = torch.randn(4, 3), positives_from_owner(torch.tensor([0, 0, 1, 2]), 3)
    out = loss(x, labels, caps, positives)

    arc = ArcFaceLoss(4, 3, scale=s, margin=m)
    with torch.no_grad():
        arc.proxies.copy_(loss.arcface.proxies)
    assert out["class_loss"].item() == pytest.approx(arc(x, labels).item(), rel=1e-6)
    want_caption = MultiCaptionArcFaceLoss(scale=s, margin=m, hard_weight=hard)(x, caps, positives).item()
    assert out["caption_loss"].item() == pytest.approx(want_caption, rel=1e-6)
    # and the defaults would give something else, so the comparison above means something
    assert MultiCaptionArcFaceLoss()(x, caps, positives).item() != pytest.approx(want_caption, rel=1e-3)
    assert MultiCaptionArcFaceLoss(scale=s, margin=m)(x, caps, positives).item() != pytest.approx(want_caption, rel=1e-3)
    arc_default_margin = ArcFaceLoss(4, 3, scale=s)
    with torch.no_grad():
        arc_default_margin.proxies.copy_(loss.arcface.proxies)
    assert arc_default_margin(x, labels).item() != pytest.approx(out["class_loss"].item(), rel=1e-3)


@needs_torch
def test_loss_helper_tensors_are_made_on_the_features_device():
    """positives_from_owner, ClipLoss and SigLipLoss build their aranges/eyes on the inputs' device.

    The meta device stands in for a GPU: mixing it with a CPU tensor raises, as cuda + cpu would.
    """
    owner = torch.tensor([0, 0, 1], device="meta")
    assert positives_from_owner(owner, 2).device.type == "meta"
    img, txt = torch.randn(3, 4, device="meta"), torch.randn(3, 4, device="meta")
    scale, bias = torch.tensor(10.0, device="meta"), torch.tensor(-1.0, device="meta")
    assert ClipLoss()(img, txt, scale).device.type == "meta"
    assert SigLipLoss()(img, txt, scale, bias).device.type == "meta"


@needs_torch
def test_siglip_loss_keeps_the_features_dtype():
    """The +-1 label matrix takes the logits' dtype, so a bfloat16 batch is not promoted to float32."""
    torch.manual_seed(0)
    img, txt = torch.randn(3, 4).bfloat16(), torch.randn(3, 4).bfloat16()
    scale, bias = torch.tensor(5.0, dtype=torch.bfloat16), torch.tensor(-2.0, dtype=torch.bfloat16)
    assert SigLipLoss()(img, txt, scale, bias).dtype == torch.bfloat16


@needs_torch
def test_multi_caption_loss_names_its_softmax_dimension():
    """log_softmax over the captions (dim=-1), named: an implicit dimension is deprecated and warns."""
    torch.manual_seed(2)
    x, caps = torch.randn(2, 3), torch.randn(3, 3)
    positives = positives_from_owner(torch.tensor([0, 1, 1]), 2)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        MultiCaptionArcFaceLoss()(x, caps, positives)


@needs_torch
def test_loss_defaults_are_mcips_scale_30_margin_0_1_hard_weight_0_1():
    """The defaults are the MCIP recipe's s = 30, m = 0.1, hard weight 0.1 and 0.75 / 0.25 mix, for every entry point."""
    arc = ArcFaceLoss(3, 2)
    assert (arc.scale, arc.margin) == (30.0, 0.1)
    cap = MultiCaptionArcFaceLoss()
    assert (cap.scale, cap.margin, cap.hard_weight) == (30.0, 0.1, 0.1)
    mcip = MCIPLoss(3, 2)
    assert (mcip.arcface.scale, mcip.arcface.margin) == (30.0, 0.1)
    assert (mcip.captions.scale, mcip.captions.margin, mcip.captions.hard_weight) == (30.0, 0.1, 0.1)
    assert (mcip.class_weight, mcip.caption_weight) == (0.75, 0.25)


# --------------------------------------------------------------------------- desktop_app/preprocess.py


def _grey_values(values, mode: str) -> list[int]:
    """The 8-bit grey level to_rgb gives a one-row 'F' (float) or 'I' (32-bit int) image."""
    array = np.asarray([values], dtype=np.float32 if mode == "F" else np.int32)
    rgb = np.asarray(to_rgb(Image.fromarray(array, mode=mode)))
    assert (rgb[..., 0] == rgb[..., 1]).all() and (rgb[..., 1] == rgb[..., 2]).all()
    return rgb[0, :, 0].tolist()


@pytest.mark.parametrize(
    ("values", "want"),
    [
        ([0.0, 0.5, 1.0], [0, 128, 255]),  # [0, 1] inclusive: a unit-range float image
        ([0.0, 127.5, 255.0], [0, 128, 255]),  # up to exactly 255: 8-bit levels
        ([0.0, 32767.5, 65535.0], [0, 128, 255]),  # up to exactly 65535: 16-bit levels
        ([0.0, 50000.0, 100000.0], [0, 128, 255]),  # past 65535: stretched from min to max
        ([-1.0, 0.0, 1.0], [0, 128, 255]),  # negative: stretched from min to max
        ([float("nan"), 1.0, 0.5], [0, 255, 128]),  # NaN reads as 0
        ([-2.0, -2.0, -2.0], [0, 0, 0]),  # flat and out of range: no division by zero
        ([0.0, 1.5], [0, 2]),  # just past 1: 8-bit levels, not unit range
        ([0.0, 256.0], [0, 1]),  # just past 255: 16-bit levels
        ([0.0, 300.0], [0, 1]),  # from exactly 0: 16-bit levels, not stretched
    ],
    ids=str,
)
def test_a_float_greyscale_image_is_scaled_by_its_range(values, want):
    assert _grey_values(values, "F") == want


@pytest.mark.parametrize(
    ("values", "want"),
    [
        ([0, 128, 255], [0, 128, 255]),  # all in 0..255 (inclusive): 8-bit data
        ([0, 257 * 128, 65535], [0, 128, 255]),  # above 255: 16-bit data
        ([-5, 300, 70000], [0, 1, 255]),  # clipped to 0..65535 first
        ([0, 1, 1], [0, 1, 1]),  # dark 8-bit data is not a unit-range image
        ([0, 256], [0, 1]),  # just past 255: 16-bit
        ([0, 33025, 65535], [0, 129, 255]),  # 16-bit levels divide by 257
    ],
    ids=str,
)
def test_a_32_bit_integer_greyscale_image_is_read_as_8_or_16_bit(values, want):
    assert _grey_values(values, "I") == want


@pytest.mark.parametrize(
    "kwargs",
    [
        {"size": (224,)},
        {"size": (224, 224, 3)},
        {"size": (224, -1)},
        {"std": (0.5, 0.5)},
        {"mean": (0.5, 0.5, 0.5, 0.5)},
        {"std": (0.5, 0.5, 0.0)},
        {"fill_color": -1},
        {"fill_color": 256},
    ],
    ids=str,
)
def test_preprocessor_refuses_each_bad_setting_on_its_own(kwargs):
    settings = ImageSettings(**{"size": (224, 224), **kwargs})
    with pytest.raises(ValueError):
        ImagePreprocessor(settings)


@pytest.mark.parametrize("fill", [0, 255])
def test_preprocessor_accepts_the_extreme_fill_colours(fill):
    assert ImagePreprocessor(ImageSettings(size=(8, 8), resize_mode="longest", fill_color=fill)).fill_color == fill


def test_the_draft_size_is_the_larger_target_side():
    assert ImagePreprocessor(ImageSettings(size=(256, 192))).draft_size == 256
    assert ImagePreprocessor(ImageSettings(size=(192, 256))).draft_size == 256


def _grey_16(values) -> list[int]:
    raw = np.asarray(values, dtype="<u2").tobytes()
    image = Image.frombytes("I;16", (len(values), 1), raw)
    return np.asarray(to_rgb(image))[0, :, 2].tolist()


def test_a_dark_16_bit_image_stays_dark():
    """'I;16' is always 0..65535 data, even when no pixel is above 255 (it must not be read as 8-bit)."""
    assert _grey_16([0, 255, 128]) == [0, 1, 0]


def test_16_bit_levels_map_onto_8_bit_by_dividing_by_257():
    """v * 255 / 65535 rounded: 33025 / 257 = 128.502 gives 129; 33025 * 255 / 65536 = 128.499 would give 128."""
    assert _grey_16([33025, 65535, 257]) == [129, 255, 1]


@pytest.mark.parametrize("mode", ["F", "I"])
def test_an_empty_high_depth_image_converts_to_an_empty_rgb_image(mode):
    assert to_rgb(Image.new(mode, (0, 0))).size == (0, 0)


def test_draft_box_is_a_square_of_the_larger_side_and_refuses_zero():
    from desktop_app.preprocess import _draft_box

    assert _draft_box(224) == (224, 224)
    assert _draft_box(np.int64(7)) == (7, 7)
    assert _draft_box((256, 192)) == (256, 256)
    assert _draft_box(1) == (1, 1)
    for bad in (0, (0, 0), -3):
        with pytest.raises(ValueError, match="draft_size must be positive"):
            _draft_box(bad)


def test_load_image_tells_an_empty_file_from_a_one_byte_one(tmp_path):
    from desktop_app.errors import PixfindError
    from desktop_app.preprocess import load_image

    empty, one = tmp_path / "empty.jpg", tmp_path / "one.jpg"
    empty.write_bytes(b"")
    one.write_bytes(b"\xff")
    with pytest.raises(PixfindError, match=r"empty\.jpg: empty file \(0 bytes\)$"):
        load_image(empty)
    with pytest.raises(PixfindError, match=r"one\.jpg: not an image"):
        load_image(one)


def test_load_image_pixel_limit_is_inclusive_and_a_1x1_image_loads(tmp_path, monkeypatch):
    from desktop_app.errors import PixfindError
    from desktop_app.preprocess import load_image

    path = tmp_path / "small.png"
    Image.new("RGB", (4, 3), (10, 20, 30)).save(path)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 12)
    assert load_image(path).size == (4, 3)  # exactly at the limit: accepted
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 11)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # Pillow warns; we refuse
        with pytest.raises(PixfindError, match=r"image too large \(4x3 = 12 pixels, more than Pillow's limit of 11;"):
            load_image(path)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", None)
    dot = tmp_path / "dot.png"
    Image.new("RGB", (1, 1), (1, 2, 3)).save(dot)
    assert np.asarray(load_image(dot)).tolist() == [[[1, 2, 3]]]
