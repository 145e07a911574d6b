"""desktop_app.preprocess (Pillow + NumPy) against open_clip's eval transform (torch).

Also covers model_training.preprocess_settings and desktop_app.preprocess.load_image.
"""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import sys
import warnings
from dataclasses import asdict
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from PIL import Image, ImageOps

from desktop_app.errors import PixfindError
from desktop_app.pack import ImageSettings
from desktop_app.preprocess import ImagePreprocessor, load_image, to_rgb

torch = pytest.importorskip("torch")
open_clip = pytest.importorskip("open_clip")

from open_clip.transform import PreprocessCfg, image_transform_v2, merge_preprocess_dict

from model_training.preprocess_settings import image_settings_from_cfg, image_settings_from_model

TOLERANCE = 1e-3
OPENAI = ((0.48145466, 0.4578275, 0.40821073), (0.26862954, 0.26130258, 0.27577711))
HALF = ((0.5, 0.5, 0.5), (0.5, 0.5, 0.5))
SIZES = [224, 336, 384, (256, 192)]
MODES = ["shortest", "longest", "squash"]
INTERPOLATIONS = ["bicubic", "bilinear"]

# Largest |ours - open_clip| seen per resize mode (printed with -s at the end).
MAX_DIFF: dict[str, float] = {}


# --------------------------------------------------------------------------- inputs


def textured(width: int, height: int, seed: int) -> Image.Image:
    """Noise on top of gradients and a ripple: content where resampling errors show."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    fx = x / max(width - 1, 1)
    fy = y / max(height - 1, 1)
    ripple = 0.5 + 0.5 * np.sin((x + 2 * y) * 0.37)
    base = np.stack([fx, fy, ripple], axis=-1) * 170.0
    noise = rng.integers(0, 86, size=(height, width, 3))
    return Image.fromarray(np.clip(base + noise, 0, 255).astype(np.uint8), "RGB")


SYNTHETIC = [
    (1, 1),
    (3, 1000),
    (1000, 3),
    (1001, 667),
    (667, 1001),
    (224, 224),
    (100, 50),
    (50, 120),
    (640, 480),
    (1600, 1200),
]
# In 'shortest' mode these become 384 x 128000 before the crop (in open_clip and here),
# which is slow; they run in every other configuration and at size 224.
EXTREME = {"noise3x1000", "noise1000x3"}


@pytest.fixture(scope="module", autouse=True)
def _single_torch_thread():
    # torch's intra-op threads cost far more than they save on these small tensors.
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def images() -> list[tuple[str, Image.Image]]:
    out = [(f"noise{w}x{h}", textured(w, h, seed=i)) for i, (w, h) in enumerate(SYNTHETIC)]
    try:
        from skimage import data
    except ImportError:  # scikit-image is not a declared dependency: synthetic images only
        return out
    for name in ("astronaut", "coffee", "chelsea"):
        try:
            photo = getattr(data, name)()
        except (ImportError, OSError, ValueError):  # a sample not shipped and not downloadable
            continue
        out.append((name, Image.fromarray(photo).convert("RGB")))
    return out


def reference(size, mode, interpolation, mean, std, fill=0, v2=False):
    size_arg = size if isinstance(size, int) else tuple(size)
    if v2:
        cfg = PreprocessCfg(
            size=size_arg, mean=mean, std=std, interpolation=interpolation, resize_mode=mode, fill_color=fill
        )
        return image_transform_v2(cfg, is_train=False)
    return open_clip.image_transform(
        size_arg, is_train=False, mean=mean, std=std, resize_mode=mode, interpolation=interpolation, fill_color=fill
    )


def ours(size, mode, interpolation, mean, std, fill=0):
    hw = (size, size) if isinstance(size, int) else tuple(size)
    return ImagePreprocessor(
        ImageSettings(size=hw, resize_mode=mode, interpolation=interpolation, mean=mean, std=std, fill_color=fill)
    )


def compare(ref_transform, pre: ImagePreprocessor, images, mode: str) -> float:
    worst = 0.0
    batch = pre([img for _, img in images])
    assert batch.dtype == np.float32 and batch.flags.c_contiguous
    assert batch.shape == (len(images), 3, *pre.size)
    with torch.no_grad():
        for i, (name, img) in enumerate(images):
            expected = ref_transform(img).numpy()
            assert expected.shape == batch[i].shape, name
            diff = float(np.abs(batch[i] - expected).max())
            assert diff <= TOLERANCE, f"{name}: max abs diff {diff}"
            worst = max(worst, diff)
    MAX_DIFF[mode] = max(MAX_DIFF.get(mode, 0.0), worst)
    return worst


# --------------------------------------------------------------------------- parity


@pytest.mark.parametrize("interpolation", INTERPOLATIONS)
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("size", SIZES, ids=str)
def test_parity(images, size, mode, interpolation):
    # Both normalisations for every geometry; the PreprocessCfg/v2 entry point for one of them.
    for (mean, std), v2 in ((OPENAI, False), (HALF, True)):
        subset = images
        if v2 or (mode == "shortest" and size != 224):
            subset = [(name, img) for name, img in images if name not in EXTREME]
        compare(
            reference(size, mode, interpolation, mean, std, v2=v2),
            ours(size, mode, interpolation, mean, std),
            subset,
            mode,
        )


@pytest.mark.parametrize("size", [224, (256, 192)], ids=str)
def test_parity_longest_fill_color(images, size):
    compare(
        reference(size, "longest", "bicubic", *HALF, fill=128),
        ours(size, "longest", "bicubic", *HALF, fill=128),
        images,
        "longest",
    )


@pytest.mark.parametrize("mode", MODES)
def test_parity_greyscale_input(mode):
    grey = textured(333, 211, seed=7).convert("L")
    compare(reference(224, mode, "bicubic", *OPENAI), ours(224, mode, "bicubic", *OPENAI), [("grey", grey)], mode)


def test_batch_matches_single_and_empty(images):
    pre = ours((256, 192), "shortest", "bicubic", *OPENAI)
    imgs = [img for name, img in images if name not in EXTREME][:5]
    batch = pre(imgs)
    for i, img in enumerate(imgs):
        single = pre.preprocess_one(img)
        assert single.shape == (3, 256, 192) and single.dtype == np.float32
        np.testing.assert_array_equal(batch[i], single)
    empty = pre([])
    assert empty.shape == (0, 3, 256, 192) and empty.dtype == np.float32


def test_extreme_aspect_ratio_does_not_crash():
    # open_clip's ResizeKeepRatio rounds the short side of a 1x1000 image to 0 pixels in
    # 'longest' mode and Pillow refuses that; we keep 1 pixel.
    for mode in ("longest", "squash"):
        pre = ours(224, mode, "bicubic", *OPENAI)
        for w, h in ((1, 1000), (1000, 1)):
            out = pre.preprocess_one(textured(w, h, seed=3))
            assert out.shape == (3, 224, 224) and np.isfinite(out).all()


def test_invalid_settings():
    for kwargs in (
        {"size": (0, 224)},
        {"size": (224, 224), "resize_mode": "crop"},
        {"size": (224, 224), "interpolation": "nearest"},
        {"size": (224, 224), "std": (0.5, 0.0, 0.5)},
        {"size": (224, 224), "mean": (0.5, 0.5)},
    ):
        with pytest.raises(ValueError):
            ImagePreprocessor(ImageSettings(**kwargs))


def test_app_module_does_not_import_torch():
    code = "import sys, desktop_app.preprocess; assert 'torch' not in sys.modules, 'torch imported'"
    root = Path(__file__).resolve().parents[2]
    subprocess.run([sys.executable, "-c", code], check=True, cwd=root)


# --------------------------------------------------------------------------- settings from open_clip


def test_settings_from_vit_b_32_model(images):
    model = open_clip.create_model("ViT-B-32", pretrained=None)
    settings = image_settings_from_model(model)
    assert settings == ImageSettings(
        size=(224, 224), resize_mode="shortest", interpolation="bicubic", mean=OPENAI[0], std=OPENAI[1], fill_color=0
    )
    ref = image_transform_v2(PreprocessCfg(**model.visual.preprocess_cfg), is_train=False)
    compare(ref, ImagePreprocessor(settings), images[-3:], "shortest")


def _cfg_like_create_model(model_name: str, tag: str) -> dict:
    """The preprocess cfg create_model(model_name, pretrained=tag) would set, without building the model."""
    cfg = asdict(PreprocessCfg())
    cfg = merge_preprocess_dict(cfg, open_clip.get_pretrained_cfg(model_name, tag))
    cfg["size"] = open_clip.get_model_config(model_name)["vision_cfg"]["image_size"]
    return cfg


def test_settings_from_siglip_and_clipa_configs(images):
    siglip = _cfg_like_create_model("ViT-B-16-SigLIP", "webli")
    settings = image_settings_from_model(SimpleNamespace(visual=SimpleNamespace(preprocess_cfg=siglip)))
    assert settings == ImageSettings(
        size=(224, 224), resize_mode="squash", interpolation="bicubic", mean=HALF[0], std=HALF[1], fill_color=0
    )
    compare(
        image_transform_v2(PreprocessCfg(**siglip), is_train=False), ImagePreprocessor(settings), images[-3:], "squash"
    )

    clipa = _cfg_like_create_model("ViT-L-14-CLIPA", "datacomp1b")
    settings = image_settings_from_cfg(clipa)
    assert (settings.resize_mode, settings.interpolation) == ("squash", "bilinear")
    assert settings.mean == (0.485, 0.456, 0.406)


def test_settings_size_forms_and_refusals():
    assert image_settings_from_cfg({"size": (256, 192)}).size == (256, 192)
    assert image_settings_from_cfg({"size": [384]}).size == (384, 384)
    assert image_settings_from_cfg(PreprocessCfg(size=336)).size == (336, 336)
    assert image_settings_from_cfg({"size": 224, "mean": 0.5, "std": 0.5}).mean == (0.5, 0.5, 0.5)
    assert image_settings_from_cfg({"size": 224, "interpolation": "random"}).interpolation == "bicubic"
    for bad in (
        {"size": 224, "mode": "L"},
        {"size": 224, "interpolation": "nearest"},
        {"size": 224, "resize_mode": "random_crop"},
        {"size": 224, "mean": (0.5, 0.5, 0.5, 0.5)},
        {"size": 224, "std": (0.5, 0, 0.5)},
        {"size": 224, "fill_color": (0, 128, 255)},
        {"size": (224, 224, 224, 224)},
        {"mean": (0.5, 0.5, 0.5)},
    ):
        with pytest.raises(ValueError):
            image_settings_from_cfg(bad)
    with pytest.raises(ValueError):
        image_settings_from_model(object())


# --------------------------------------------------------------------------- load_image


def test_exif_rotated_jpeg(tmp_path):
    img = Image.new("RGB", (40, 20), (255, 0, 0))
    img.paste((0, 0, 255), (20, 0, 40, 20))  # left red, right blue as stored
    exif = Image.Exif()
    exif[0x0112] = 6  # Orientation: rotate 90 CW to display
    path = tmp_path / "rotated.jpg"
    img.save(path, exif=exif, quality=95)
    loaded = load_image(path)
    assert loaded.mode == "RGB" and loaded.size == (20, 40)
    top, bottom = loaded.getpixel((10, 5)), loaded.getpixel((10, 35))
    assert top[0] > 200 and top[2] < 60  # stored left (red) is now on top
    assert bottom[2] > 200 and bottom[0] < 60
    with Image.open(path) as raw:
        np.testing.assert_array_equal(np.asarray(loaded), np.asarray(ImageOps.exif_transpose(raw).convert("RGB")))


def _as_convert_rgb(path):
    with Image.open(path) as raw, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return np.asarray(raw.convert("RGB"))


def test_palette_png_with_transparency(tmp_path):
    img = Image.new("P", (8, 6), 1)
    img.putpalette([10, 20, 30, 200, 100, 50, 0, 255, 0] + [0] * (253 * 3))
    img.paste(0, (0, 0, 4, 6))
    path = tmp_path / "palette.png"
    img.save(path, transparency=bytes([0, 255, 128]))  # tRNS as bytes: Pillow warns on convert('RGB')
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        loaded = load_image(path)
    assert loaded.mode == "RGB"
    np.testing.assert_array_equal(np.asarray(loaded), _as_convert_rgb(path))  # alpha dropped, like open_clip
    assert loaded.getpixel((0, 0)) == (10, 20, 30)


def test_rgba_and_la_png_drop_alpha(tmp_path):
    rgba = np.zeros((5, 7, 4), np.uint8)
    rgba[..., 0], rgba[..., 1], rgba[..., 2] = 10, 120, 250
    rgba[..., 3] = np.arange(7, dtype=np.uint8) * 40
    path = tmp_path / "alpha.png"
    Image.fromarray(rgba, "RGBA").save(path)
    loaded = load_image(path)
    assert loaded.mode == "RGB"
    np.testing.assert_array_equal(np.asarray(loaded), rgba[..., :3])
    la = tmp_path / "la.png"
    Image.fromarray(rgba[..., :4:3].copy(), "LA").save(la)  # L=10, A varies
    assert np.asarray(load_image(la)).max() == 10


def test_cmyk_jpeg(tmp_path):
    path = tmp_path / "cmyk.jpg"
    Image.new("CMYK", (16, 16), (0, 255, 255, 0)).save(path)  # red in CMYK
    with Image.open(path) as raw:
        assert raw.mode == "CMYK"
    loaded = load_image(path)
    assert loaded.mode == "RGB"
    np.testing.assert_array_equal(np.asarray(loaded), _as_convert_rgb(path))
    r, g, b = loaded.getpixel((8, 8))
    assert r > 200 and g < 60 and b < 60


def test_16_bit_greyscale_png_is_scaled(tmp_path):
    values = np.array([[0, 257, 32896, 65535]], dtype=np.uint16).repeat(3, axis=0)
    path = tmp_path / "deep.png"
    Image.fromarray(values).save(path)
    with Image.open(path) as raw:
        assert raw.mode.startswith("I")
    loaded = load_image(path)
    assert loaded.mode == "RGB"
    np.testing.assert_array_equal(np.asarray(loaded)[0, :, 0], [0, 1, 128, 255])
    # 32-bit 'I' holding 16-bit data, and float images
    np.testing.assert_array_equal(
        np.asarray(to_rgb(Image.fromarray(values.astype(np.int32))))[0, :, 1], [0, 1, 128, 255]
    )
    floats = Image.fromarray(np.array([[0.0, 0.5, 1.0]], np.float32))
    np.testing.assert_array_equal(np.asarray(to_rgb(floats))[0, :, 2], [0, 128, 255])


def test_draft_size_decodes_big_jpeg_smaller(tmp_path):
    path = tmp_path / "big.jpg"
    textured(2000, 1500, seed=11).save(path, quality=90)
    assert load_image(path).size == (2000, 1500)
    drafted = load_image(path, draft_size=(256, 192))
    assert drafted.mode == "RGB"
    assert min(drafted.size) >= 256 and drafted.size[0] < 2000
    assert ImagePreprocessor(ImageSettings(size=(224, 224))).draft_size == 224


def _assert_pixfind_error(path, *, match_problem: str):
    with pytest.raises(PixfindError) as info:
        load_image(path)
    message = str(info.value)
    assert Path(path).name in message and "\n" not in message
    assert match_problem in message.lower(), message
    return message


def test_bad_inputs(tmp_path):
    _assert_pixfind_error(tmp_path / "missing.jpg", match_problem="not found")

    empty = tmp_path / "empty.jpg"
    empty.write_bytes(b"")
    _assert_pixfind_error(empty, match_problem="empty")

    text = tmp_path / "notes.jpg"
    text.write_text("this is not a JPEG\n" * 10)
    _assert_pixfind_error(text, match_problem="not an image")

    buf = io.BytesIO()
    textured(300, 200, seed=5).save(buf, "JPEG", quality=90)
    truncated = tmp_path / "truncated.jpg"
    truncated.write_bytes(buf.getvalue()[: len(buf.getvalue()) // 2])
    _assert_pixfind_error(truncated, match_problem="truncated")

    header_only = tmp_path / "header.png"
    png = io.BytesIO()
    textured(64, 64, seed=6).save(png, "PNG")
    header_only.write_bytes(png.getvalue()[:60])
    _assert_pixfind_error(header_only, match_problem="")

    _assert_pixfind_error(tmp_path, match_problem="directory")


def test_decompression_bomb(tmp_path, monkeypatch):
    path = tmp_path / "bomb.png"
    Image.new("RGB", (20, 20)).save(path)  # 400 pixels
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100)  # > 2x the limit: Pillow's DecompressionBombError
    _assert_pixfind_error(path, match_problem="too large")
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 300)  # between 1x and 2x: Pillow only warns
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        _assert_pixfind_error(path, match_problem="too large")


def test_unreadable_file(tmp_path):
    path = tmp_path / "secret.png"
    Image.new("RGB", (4, 4)).save(path)
    path.chmod(0)
    try:
        if not os.access(path, os.R_OK):
            _assert_pixfind_error(path, match_problem="permission")
            return
        # root reads a chmod 000 file: load it in a process without CAP_DAC_OVERRIDE and CAP_DAC_READ_SEARCH
        drop = "-dac_override,-dac_read_search"
        setpriv = shutil.which("setpriv")
        if setpriv is None or subprocess.run([setpriv, f"--bounding-set={drop}", "true"], check=False).returncode:
            pytest.skip("running as root without a working setpriv: load_image's 'permission denied' is not covered here")
        code = ("import sys\nfrom desktop_app.errors import PixfindError\nfrom desktop_app.preprocess import load_image\n"
                "try:\n    load_image(sys.argv[1])\nexcept PixfindError as e:\n    print(e)\nelse:\n    print('loaded')\n")
        done = subprocess.run([setpriv, f"--inh-caps={drop}", f"--ambient-caps={drop}", f"--bounding-set={drop}",
                               sys.executable, "-c", code, str(path)], capture_output=True, text=True, timeout=120, check=False)
        assert done.stdout.strip() == f"{path}: permission denied", done.stdout + done.stderr
    finally:
        path.chmod(0o600)


def test_report_max_diff():
    """Print the largest difference per mode (visible with -s); runs last in this file."""
    if MAX_DIFF:
        print(
            "\nmax |ours - open_clip| per resize mode: "
            + ", ".join(f"{k}={v:.3g}" for k, v in sorted(MAX_DIFF.items()))
        )
