"""Regression tests for the pure functions behind issue 17's planted bugs.

Each test names the behaviour it guards; each was seen to fail with the bug planted:
the centre crop's rounding, the fingerprint's tail, the ArcFace fallback past pi - m,
MCIP's 0.75/0.25 weights, GPR1200's self-match and the CUDA provider choice.
"""

from __future__ import annotations

import hashlib
import math
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from desktop_app import encoder as encoder_module
from desktop_app.library.fingerprint import BLOCK, fingerprint
from desktop_app.pack import ImageSettings
from desktop_app.preprocess import ImagePreprocessor

OPENAI = ((0.48145466, 0.4578275, 0.40821073), (0.26862954, 0.26130258, 0.27577711))


def _noise(width: int, height: int, seed: int = 0) -> Image.Image:
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 256, (height, width, 3), dtype=np.uint8), "RGB")


# --------------------------------------------------------------------------- preprocessing: the crop offset


@pytest.mark.parametrize(
    ("width", "height", "size", "mode"),
    [
        (227, 224, 224, "shortest"),  # left offset 1.5: torchvision rounds to 2, floor gives 1
        (224, 231, 224, "shortest"),  # top offset 3.5 -> 4
        (235, 224, 224, "shortest"),  # 5.5 -> 6
        (259, 192, (256, 192), "shortest"),  # non-square target: ResizeKeepRatio then the crop
    ],
    ids=str,
)
def test_centre_crop_rounds_an_odd_offset_like_open_clip(width, height, size, mode):
    """The crop offset is torchvision's int(round((W - w) / 2)); any other rounding moves the crop by a
    pixel, which on a textured image shows as a difference of ~1.6 after normalisation."""
    torch = pytest.importorskip("torch")
    open_clip = pytest.importorskip("open_clip")
    image = _noise(width, height, seed=width * height)
    hw = (size, size) if isinstance(size, int) else size
    ours = ImagePreprocessor(ImageSettings(size=hw, resize_mode=mode, interpolation="bicubic", mean=OPENAI[0], std=OPENAI[1]))
    reference = open_clip.image_transform(size, is_train=False, mean=OPENAI[0], std=OPENAI[1], resize_mode=mode,
                                          interpolation="bicubic")
    with torch.no_grad():
        expected = reference(image).numpy()
    got = ours([image])[0]
    assert got.shape == expected.shape
    assert float(np.abs(got - expected).max()) == 0.0


# --------------------------------------------------------------------------- fingerprint


def _reference_fingerprint(data: bytes) -> str:
    """The documented definition, written independently: size + blake2b-128 of the first 64 KiB and of
    the last 64 KiB (the part of it not already in the first block)."""
    h = hashlib.blake2b(data[:BLOCK], digest_size=16)
    if len(data) > BLOCK:
        h.update(data[max(BLOCK, len(data) - BLOCK):])
    return f"{len(data)}:{h.hexdigest()}"


@pytest.mark.parametrize("size", [0, 1, BLOCK - 1, BLOCK, BLOCK + 1, 2 * BLOCK - 1, 2 * BLOCK, 2 * BLOCK + 1, 3 * BLOCK + 17])
def test_fingerprint_matches_its_definition(tmp_path, size):
    data = np.random.default_rng(size).integers(0, 256, size, dtype=np.uint8).tobytes()
    path = tmp_path / "f.bin"
    path.write_bytes(data)
    assert fingerprint(path) == _reference_fingerprint(data)
    assert fingerprint(str(path), size) == _reference_fingerprint(data)  # the size the scanner saw


def test_fingerprint_sees_a_change_in_the_tail_only(tmp_path):
    """Two photos of the same size that differ only at the end (an edited JPEG's last bytes, a
    re-saved thumbnail trailer) are different files."""
    size = 3 * BLOCK + 100
    data = bytearray(np.random.default_rng(1).integers(0, 256, size, dtype=np.uint8).tobytes())
    a, b, c = tmp_path / "a", tmp_path / "b", tmp_path / "c"
    a.write_bytes(bytes(data))
    data[-1] ^= 0xFF
    b.write_bytes(bytes(data))
    data[-1] ^= 0xFF
    data[size - BLOCK] ^= 0x01  # the first byte of the tail block
    c.write_bytes(bytes(data))
    assert len({fingerprint(a), fingerprint(b), fingerprint(c)}) == 3


def test_fingerprint_of_a_file_between_one_and_two_blocks_covers_every_byte(tmp_path):
    size = BLOCK + 1000
    data = bytearray(size)
    base = tmp_path / "base"
    base.write_bytes(bytes(data))
    seen = {fingerprint(base)}
    for offset in (BLOCK - 1, BLOCK, BLOCK + 500, size - 1):
        changed = bytearray(data)
        changed[offset] = 1
        path = tmp_path / f"at{offset}"
        path.write_bytes(bytes(changed))
        seen.add(fingerprint(path))
    assert len(seen) == 5


# --------------------------------------------------------------------------- ArcFace fallback past pi - m


@pytest.mark.parametrize("margin", [0.1, 0.5])
def test_arcface_fallback_applies_on_the_whole_range_past_pi_minus_m(margin):
    torch = pytest.importorskip("torch")
    from model_training.losses import arc_margin_logits

    s = 30.0
    threshold = math.pi - margin
    before = [0.0, 0.3, math.pi / 2, threshold - 0.05, threshold - 1e-3]
    after = [threshold + 1e-3, threshold + margin / 4, threshold + margin / 2, math.pi - 1e-3, math.pi]
    thetas = torch.tensor(before + after, dtype=torch.float64)
    cosine = torch.cos(thetas).float()
    positives = torch.ones_like(cosine, dtype=torch.bool)
    got = arc_margin_logits(cosine, positives, s, margin)
    for theta, value in zip(before, got[: len(before)].tolist()):
        assert value == pytest.approx(s * math.cos(theta + margin), abs=1e-3), theta
    for theta, value in zip(after, got[len(before):].tolist()):
        assert value == pytest.approx(s * (math.cos(theta) - math.sin(margin) * margin), abs=1e-3), theta
    # negatives are never changed
    assert torch.equal(arc_margin_logits(cosine, ~positives, s, margin), s * cosine)
    # and the target logit never rises again as the angle grows (the reason for the fallback)
    fine = torch.cos(torch.linspace(0, math.pi, 2001, dtype=torch.float64)).float()
    curve = arc_margin_logits(fine, torch.ones_like(fine, dtype=torch.bool), s, margin)
    assert bool((curve[1:] <= curve[:-1] + 1e-4).all())


def test_arcface_loss_uses_the_fallback_near_pi():
    torch = pytest.importorskip("torch")
    from model_training.losses import ArcFaceLoss

    s, m = 30.0, 0.1
    loss = ArcFaceLoss(2, 2, scale=s, margin=m)
    with torch.no_grad():
        loss.proxies.copy_(torch.tensor([[1.0, 0.0], [0.0, 1.0]]))
    theta = math.pi - m / 2  # past pi - m but not pi
    x = torch.tensor([[math.cos(theta), math.sin(theta)]])
    logits = [s * (math.cos(theta) - math.sin(m) * m), s * math.cos(math.pi / 2 - theta)]
    want = -(logits[0] - math.log(sum(math.exp(v) for v in logits)))
    assert loss(x, torch.tensor([0])).item() == pytest.approx(want, rel=1e-5)


# --------------------------------------------------------------------------- MCIP weights


def test_mcip_weights_are_three_quarters_class_one_quarter_caption_everywhere():
    """The loss, the task module, the config defaults and every shipped config agree on 0.75 / 0.25,
    checked on a batch where the two terms differ a lot (so a swap changes the total)."""
    torch = pytest.importorskip("torch")
    pytest.importorskip("omegaconf")
    from model_training.config import find_shipped_config, load_config
    from model_training.losses import MCIPLoss, positives_from_owner

    torch.manual_seed(0)
    x, labels = torch.randn(4, 8), torch.tensor([0, 1, 2, 3])
    caps, positives = torch.randn(3, 8), positives_from_owner(torch.tensor([0, 0, 1]), 4)
    out = MCIPLoss(num_classes=4, dim=8)(x, labels, caps, positives)
    a, b = out["class_loss"].item(), out["caption_loss"].item()
    assert abs(a - b) > 0.5
    assert out["loss"].item() == pytest.approx(0.75 * a + 0.25 * b, rel=1e-6)
    explicit = MCIPLoss(num_classes=4, dim=8, class_weight=0.9, caption_weight=0.1)
    out = explicit(x, labels, caps, positives)
    assert out["loss"].item() == pytest.approx(0.9 * out["class_loss"].item() + 0.1 * out["caption_loss"].item(), rel=1e-6)

    cfg = load_config("mcip", overrides=["model.arch=ViT-B-32"])
    assert (cfg.loss.class_weight, cfg.loss.caption_weight) == (0.75, 0.25)
    configs = Path(find_shipped_config("synthetic-benchmark")).parent
    shipped = sorted(configs.glob("*mcip*.yaml"))
    assert shipped
    for path in shipped:
        loss = load_config("mcip", path).loss
        assert (loss.class_weight, loss.caption_weight) == (0.75, 0.25), path
    assert "class_weight: 0.75, caption_weight: 0.25" in (configs / "synthetic-benchmark.yaml").read_text()


def test_mcip_task_module_passes_the_weights_in_order():
    torch = pytest.importorskip("torch")
    open_clip = pytest.importorskip("open_clip")
    from model_training.open_clip_models import resolve_arch
    from model_training.tasks import CaptionBank, MCIPFineTune
    from tests.conftest import TINY_CONFIG

    name, _ = resolve_arch(str(TINY_CONFIG))
    torch.manual_seed(0)
    clip = open_clip.create_model(name, pretrained=None)
    module = MCIPFineTune(clip, num_classes=3, dim=64, bank=CaptionBank(torch.randn(5, 64)))
    assert (module.loss.class_weight, module.loss.caption_weight) == (0.75, 0.25)
    batch = {"image": torch.randn(3, 3, 32, 32), "label": torch.tensor([0, 1, 2]), "captions": [[0, 1], [2], [4]]}
    out = module(batch)
    want = 0.75 * out["class_loss"].item() + 0.25 * out["caption_loss"].item()
    assert out["loss"].item() == pytest.approx(want, rel=1e-5)


# --------------------------------------------------------------------------- GPR1200 mAP with the self-match


class _AngleEmbedder:
    """Each test image's red value is an angle in degrees; its embedding is that point on the circle."""

    def encode_images(self, images):
        degrees = [int(np.asarray(im)[0, 0, 0]) for im in images]
        return np.array([[math.cos(math.radians(d)), math.sin(math.radians(d)), 0.0] for d in degrees], np.float32)


def test_gpr1200_map_counts_the_self_match(tmp_path):
    """The GPR1200 protocol scores every image against all 12,000 including itself; the authors' mAP counts
    that self-match. Hand-computed on four images (see test_eval_metrics for the rankings):
    with the self-match AP = 1, 1, 0.75, 1; without it 1, 1, 1/3, 1."""
    pytest.importorskip("torch")
    from model_training.evaluation.suite import EvalSets

    folder = tmp_path / "gpr1200" / "images"
    folder.mkdir(parents=True)
    for name, degrees in (("a_0", 0), ("a_1", 10), ("b_2", 20), ("b_3", 180)):
        Image.new("RGB", (8, 8), (degrees, 0, 0)).save(folder / f"{name}.png")
    result = EvalSets(gpr1200=folder.parent).evaluate(_AngleEmbedder())
    assert result["gpr1200_map"] == pytest.approx((1 + 1 + 0.75 + 1) / 4)
    assert result["gpr1200_map"] != pytest.approx((1 + 1 + 1 / 3 + 1) / 4)


# --------------------------------------------------------------------------- CUDA provider choice


@pytest.fixture
def gpu_driver(monkeypatch):
    """Controls the one fact default_providers reads from the machine: is a GPU driver loaded
    (/proc/driver/nvidia on Linux, CUDA_PATH on Windows). Everything else is real."""
    monkeypatch.delenv("PIXFIND_PROVIDERS", raising=False)
    real_exists = Path.exists
    state = {"present": False}

    def exists(self):
        if str(self) == "/proc/driver/nvidia":
            return state["present"]
        return real_exists(self)

    monkeypatch.setattr(Path, "exists", exists)
    monkeypatch.delenv("CUDA_PATH", raising=False)
    return state


def test_cuda_is_chosen_first_when_a_gpu_driver_is_present(gpu_driver, monkeypatch):
    ort = encoder_module._ort()
    if encoder_module.CUDA not in ort.get_available_providers():
        # a CPU-only onnxruntime build (macOS): the build, not the machine, rules CUDA out
        monkeypatch.setattr(ort, "get_available_providers", lambda: [encoder_module.CUDA, encoder_module.CPU])
    gpu_driver["present"] = True
    assert encoder_module.default_providers() == ["CUDAExecutionProvider", "CPUExecutionProvider"]
    gpu_driver["present"] = False
    assert encoder_module.default_providers() == ["CPUExecutionProvider"]


def test_cuda_is_not_chosen_from_a_build_without_it(gpu_driver, monkeypatch):
    ort = encoder_module._ort()
    monkeypatch.setattr(ort, "get_available_providers", lambda: [encoder_module.CPU])
    gpu_driver["present"] = True
    assert encoder_module.default_providers() == ["CPUExecutionProvider"]


def test_providers_override(monkeypatch):
    monkeypatch.setenv("PIXFIND_PROVIDERS", " CPUExecutionProvider , ,CUDAExecutionProvider")
    assert encoder_module.default_providers() == ["CPUExecutionProvider", "CUDAExecutionProvider"]


def test_the_driver_probe_reads_the_real_machine():
    """Unmocked: the probe agrees with this machine (no assumption which kind it is)."""
    assert encoder_module._cuda_device_present() == (
        os.path.exists("/proc/driver/nvidia") or (os.name == "nt" and bool(os.environ.get("CUDA_PATH")))
    )
