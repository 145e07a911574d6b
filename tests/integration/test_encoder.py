"""The app's encoder runtime: a pack run by ONNX Runtime, and every way a pack can be broken."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from desktop_app.encoder import Encoder, default_providers
from desktop_app.errors import PackError
from desktop_app.pack import read_manifest, write_manifest


@pytest.fixture
def pack_copy(tiny_pack, tmp_path) -> Path:
    target = tmp_path / "pack"
    shutil.copytree(tiny_pack, target)
    return target


def _photos(tmp_path: Path, count: int = 5) -> list[Path]:
    rng = np.random.default_rng(1)
    paths = []
    for i in range(count):
        arr = rng.integers(0, 255, size=(48 + 13 * i, 64 + 7 * i, 3), dtype=np.uint8)
        path = tmp_path / f"photo{i}.jpg"
        Image.fromarray(arr).save(path, quality=90)
        paths.append(path)
    return paths


def test_encodes_paths_and_images_normalised(tiny_pack, tmp_path):
    encoder = Encoder(tiny_pack)
    paths = _photos(tmp_path)
    from_paths = encoder.encode_images(paths)
    from_pil = encoder.encode_images([Image.open(p) for p in paths])
    assert from_paths.shape == (5, 64) and from_paths.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(from_paths, axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(from_paths, from_pil, atol=1e-6)
    texts = encoder.encode_texts(["a dog", "a cat on a mat", "", "東京"])
    assert texts.shape == (4, 64)
    np.testing.assert_allclose(np.linalg.norm(texts, axis=1), 1.0, atol=1e-5)


def test_batching_does_not_change_results(tiny_pack, tmp_path):
    encoder = Encoder(tiny_pack)
    paths = _photos(tmp_path, 7)
    together = encoder.encode_images(paths, batch_size=64)
    one_by_one = encoder.encode_images(paths, batch_size=1)
    np.testing.assert_allclose(together, one_by_one, atol=1e-5)
    captions = [f"caption number {i}" for i in range(9)]
    np.testing.assert_allclose(encoder.encode_texts(captions, batch_size=4), encoder.encode_texts(captions), atol=1e-5)


def test_matches_open_clip_on_real_photos(tiny_pack, tiny_checkpoint):
    """The app path (Pillow + NumPy + tokenizers + ONNX Runtime) against open_clip in torch."""
    import open_clip
    import torch
    from skimage import data as skdata

    from model_training.open_clip_models import build_model, eval_transform
    from model_training.verify import MIN_COSINE
    from tests.conftest import TINY_CONFIG

    model = build_model(str(TINY_CONFIG), checkpoint=tiny_checkpoint).model
    preprocess = eval_transform(model)
    tokenizer = open_clip.get_tokenizer("ViT-B-32")
    photos = [Image.fromarray(skdata.astronaut()), Image.fromarray(skdata.coffee()), Image.fromarray(skdata.chelsea())]
    captions = ["an astronaut", "a cup of coffee", "a cat"]
    pixels, tokens = torch.stack([preprocess(p) for p in photos]), tokenizer(captions)
    with torch.no_grad():
        ref_img = model.encode_image(pixels, normalize=True).numpy()
        ref_txt = model.encode_text(tokens, normalize=True).numpy()
        # Two yardsticks computed here. Arithmetic noise: the torch model against itself in half
        # precision (10-bit mantissa, as TF32 matmuls on CUDA), the most a different summation order
        # or precision of the same computation can move it. A slip: the same pixels one column to the
        # side, what the centre crop's round -> floor bug does to an odd crop offset.
        shifted = model.encode_image(torch.roll(pixels, 1, dims=3), normalize=True).numpy()
        half = build_model(str(TINY_CONFIG), checkpoint=tiny_checkpoint).model.half()
        half_img = half.encode_image(pixels.half(), normalize=True).float().numpy()
        half_txt = half.encode_text(tokens, normalize=True).float().numpy()
    encoder = Encoder(tiny_pack)
    app_img, app_txt = _gap(encoder.encode_images(photos), ref_img), _gap(encoder.encode_texts(captions), ref_txt)
    # The export's own fp32 bound, 1 - MIN_COSINE["fp32"] = 1e-4, must sit at least a decade above the
    # noise (about 1e-6 here) and a decade below the slip (2e-3 to 8e-3 here), and the app within it.
    bound = 1 - MIN_COSINE["fp32"]
    noise, slip = max(_gap(half_img, ref_img).max(), _gap(half_txt, ref_txt).max()), _gap(shifted, ref_img).min()
    assert noise < bound / 10 and bound < slip / 10, (noise, slip)
    assert app_img.max() < bound and app_txt.max() < bound, (app_img, app_txt)


def _gap(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """1 - cosine per row, in float64 (float32 rounding can push a cosine of unit vectors over 1)."""
    a, b = a.astype(np.float64), b.astype(np.float64)
    return 1 - (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))


def test_empty_inputs(tiny_pack):
    encoder = Encoder(tiny_pack)
    assert encoder.encode_images([]).shape == (0, 64)
    assert encoder.encode_texts([]).shape == (0, 64)


def test_cpu_provider_without_gpu(tiny_pack, monkeypatch):
    monkeypatch.delenv("PIXFIND_PROVIDERS", raising=False)
    assert "CPUExecutionProvider" in default_providers()
    assert Encoder(tiny_pack).active_provider in {"CPUExecutionProvider", "CUDAExecutionProvider"}
    monkeypatch.setenv("PIXFIND_PROVIDERS", "CPUExecutionProvider")
    assert Encoder(tiny_pack).active_provider == "CPUExecutionProvider"


def test_image_tower_threads_sleep_between_operators_text_tower_spins(tiny_pack):
    """The image tower runs beside the threads decoding the next photos, which need the cores its
    idle workers would spin on; a text query is one short run, where spinning saves the wake-up."""
    encoder = Encoder(tiny_pack, providers=["CPUExecutionProvider"])
    key = "session.intra_op.allow_spinning"
    assert encoder.visual_session.get_session_options().get_session_config_entry(key) == "0"
    with pytest.raises(RuntimeError, match="does not have configuration"):  # ONNX Runtime's default: spinning
        encoder.textual_session.get_session_options().get_session_config_entry(key)


@pytest.mark.skipif(Path("/proc/driver/nvidia").exists(), reason="this machine has a GPU driver: CUDA would run")
def test_active_provider_is_the_one_running_not_the_one_asked_for(tiny_pack):
    """Asked for CUDA first on a machine without a GPU driver: before a tower opens the window can only
    name the wish; once one runs, it names the provider ONNX Runtime really chose (CPU)."""
    encoder = Encoder(tiny_pack, providers=["CUDAExecutionProvider", "CPUExecutionProvider"], lazy=True)
    assert encoder.active_provider == "CUDAExecutionProvider"
    encoder.encode_texts(["a cat"])  # the text tower alone
    assert encoder.active_provider == "CPUExecutionProvider"


def test_missing_file(pack_copy):
    (pack_copy / "textual.onnx").unlink()
    with pytest.raises(PackError, match=r"textual\.onnx: missing from the model pack"):
        Encoder(pack_copy)


def test_modified_file_fails_sha256(pack_copy):
    with open(pack_copy / "visual.onnx", "r+b") as f:
        f.seek(200)
        f.write(b"\x00\x01\x02\x03")
    with pytest.raises(PackError, match=r"visual\.onnx: sha256 .* does not match pack\.json"):
        Encoder(pack_copy)


def test_corrupt_onnx_with_matching_sha256(pack_copy):
    """A file damaged before pack.json was written: the hashes agree but ONNX Runtime cannot load it."""
    path = pack_copy / "visual.onnx"
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 3])
    manifest = read_manifest(pack_copy)
    write_manifest(pack_copy, manifest)
    with pytest.raises(PackError, match=r"visual\.onnx: ONNX Runtime cannot load it") as info:
        Encoder(pack_copy)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize(
    "damage, message",
    [
        (lambda p: p.unlink(), "pack.json: missing"),
        (lambda p: p.write_text("{not json"), "not valid JSON"),
        (lambda p: p.write_text("[]"), "expected a JSON object"),
        (lambda p: p.write_text(json.dumps({k: v for k, v in json.loads(p.read_text()).items() if k != "image"})), "'image' is missing"),
        (lambda p: p.write_text(p.read_text().replace('"format_version": 2', '"format_version": 99')), "pack format 99 is not supported"),
        (lambda p: p.write_text(p.read_text().replace('"precision": "fp32"', '"precision": "fp8"')), "precision 'fp8'"),
    ],
)
def test_bad_manifest(pack_copy, damage, message):
    damage(pack_copy / "pack.json")
    with pytest.raises(PackError, match=message):
        Encoder(pack_copy)


def test_pack_for_another_dimension(pack_copy):
    manifest = read_manifest(pack_copy)
    manifest.embedding_dim = 768
    write_manifest(pack_copy, manifest)
    with pytest.raises(PackError, match=r"produces 64-d embeddings but pack\.json says 768"):
        Encoder(pack_copy)


def test_mixed_towers_of_two_models(pack_copy, tmp_path, tiny_pack):
    """A textual.onnx of another width dropped into the pack is caught by its output dimension."""
    import onnx
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        [helper.make_node("Cast", ["input_ids"], ["f"], to=TensorProto.FLOAT), helper.make_node("ReduceMean", ["f"], ["embedding"], keepdims=1)],
        "fake",
        [helper.make_tensor_value_info("input_ids", TensorProto.INT64, ["batch", 77])],
        [helper.make_tensor_value_info("embedding", TensorProto.FLOAT, ["batch", 1])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, pack_copy / "textual.onnx")
    write_manifest(pack_copy, read_manifest(pack_copy))
    with pytest.raises(PackError, match=r"textual\.onnx: produces 1-d embeddings"):
        Encoder(pack_copy)


def test_cli_reports_broken_pack_in_one_line(pack_copy, tmp_path):
    (pack_copy / "visual.onnx").write_bytes(b"garbage")
    exe = Path(sys.executable).parent / "pixfind"
    run = subprocess.run([str(exe), "models", "import", str(pack_copy)], capture_output=True, text=True, timeout=60)
    assert run.returncode == 1
    assert run.stderr.strip().startswith("pixfind: error: ") and "visual.onnx" in run.stderr
    assert len(run.stderr.strip().splitlines()) == 1
