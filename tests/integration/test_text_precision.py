"""`pixfind export --text-precision`: the text tower in its own precision beside the image tower's
(pack format 3), exported, installed and searched through the console script as a user does."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest

from desktop_app.encoder import Encoder
from desktop_app.pack import load_pack
from model_training.pack_builder import min_cosine
from model_training.verify import CAPTIONS, MIN_COSINE, TEXT_MIN_COSINE
from tests.conftest import TINY_CONFIG
from tests.library_helpers import make_photo

PIXFIND = str(Path(sys.executable).parent / "pixfind")


def pixfind(*args, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([PIXFIND, *map(str, args)], capture_output=True, text=True, timeout=timeout, check=False)


def export_cli(out: Path, checkpoint: Path, *options: str) -> Path:
    run = pixfind("export", "--arch", TINY_CONFIG, "--checkpoint", checkpoint, *options, "-o", out)
    assert run.returncode == 0, run.stderr
    return out


@pytest.fixture(scope="module")
def text_int8_pack(tmp_path_factory, tiny_checkpoint) -> Path:
    """The tiny model exported with an int8 text tower and an fp32 image tower."""
    return export_cli(tmp_path_factory.mktemp("text-int8") / "pack", tiny_checkpoint, "--text-precision", "int8")


def op_types(graph: Path) -> set[str]:
    return {node.op_type for node in onnx.load(str(graph), load_external_data=False).graph.node}


def test_export_writes_format_3_with_an_int8_text_tower_beside_an_fp32_image_tower(text_int8_pack):
    data = json.loads((text_int8_pack / "pack.json").read_text())
    assert (data["format_version"], data["precision"], data["text"]["precision"]) == (3, "fp32", "int8")
    assert data["name"] == "tiny-vit-tiny-text-int8"
    assert data["verification"]["bound"] == MIN_COSINE["fp32"]
    assert data["verification"]["textual_bound"] == TEXT_MIN_COSINE["int8"]
    assert "MatMulNBits" in op_types(text_int8_pack / "textual.onnx")
    assert op_types(text_int8_pack / "visual.onnx").isdisjoint({"MatMulNBits", "MatMulInteger", "DynamicQuantizeLinear"})
    text_graph = onnx.load(str(text_int8_pack / "textual.onnx"), load_external_data=False)
    assert {p.key: p.value for p in text_graph.metadata_props}["pixfind.context_length"] == "77"  # kept by the quantiser
    manifest = load_pack(text_int8_pack)
    assert (manifest.text_precision, manifest.precision_label) == ("int8", "fp32 (text int8)")


def test_int8_text_embeddings_agree_with_the_fp32_pack_and_the_images_are_untouched(text_int8_pack, tiny_pack):
    int8, fp32 = Encoder(text_int8_pack), Encoder(tiny_pack)
    got, reference = int8.encode_texts(CAPTIONS), fp32.encode_texts(CAPTIONS)
    assert TEXT_MIN_COSINE["int8"] <= min_cosine(reference, got) < 0.99999  # close, and really quantised
    pixels = np.random.default_rng(0).standard_normal((4, 3, 32, 32)).astype(np.float32)
    assert min_cosine(fp32.encode_pixels(pixels), int8.encode_pixels(pixels)) > 0.999999


def test_an_int8_text_pack_is_imported_listed_and_searched(text_int8_pack, tmp_path, library_dir):
    run = pixfind("models", "import", text_int8_pack)
    assert run.returncode == 0, run.stderr
    assert "(64-d, fp32 (text int8))" in run.stdout
    listing = pixfind("models", "list")
    assert "fp32 (text int8)" in listing.stdout
    photos = tmp_path / "photos"
    for seed in range(3):
        make_photo(photos / f"p{seed}.jpg", seed=seed)
    index = pixfind("index", photos, "--library", library_dir)
    assert index.returncode == 0, index.stderr
    search = pixfind("search", "a red car", "--all", "--json", "--library", library_dir)
    assert search.returncode == 0, search.stderr
    assert {Path(r["path"]).name for r in json.loads(search.stdout)} == {"p0.jpg", "p1.jpg", "p2.jpg"}


def test_each_tower_opens_with_the_session_options_of_its_own_precision(tmp_path, tiny_checkpoint, monkeypatch):
    """An fp16 text tower beside an fp32 image tower: the text session gets fp16's CPU optimisation
    level (EXTENDED: level ALL crashes on fp16 graphs), the image session the default ALL."""
    import onnxruntime as ort

    pack = export_cli(tmp_path / "pack", tiny_checkpoint, "--text-precision", "fp16")
    monkeypatch.setenv("PIXFIND_SESSION_CACHE", "off")  # the pack's own graphs, opened with the tower's options
    encoder = Encoder(pack, providers=["CPUExecutionProvider"])
    levels = {
        what: session.get_session_options().graph_optimization_level
        for what, session in (("text", encoder.textual_session), ("image", encoder.visual_session))
    }
    assert levels == {"text": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED, "image": ort.GraphOptimizationLevel.ORT_ENABLE_ALL}
    assert json.loads((pack / "pack.json").read_text())["verification"]["textual_bound"] == TEXT_MIN_COSINE["fp16"]


def test_the_same_precision_twice_is_an_ordinary_format_2_pack(tmp_path, tiny_checkpoint):
    pack = export_cli(tmp_path / "pack", tiny_checkpoint, "--precision", "int8", "--text-precision", "int8")
    data = json.loads((pack / "pack.json").read_text())
    assert (data["format_version"], data["precision"], data["name"]) == (2, "int8", "tiny-vit-tiny-int8")
    assert "precision" not in data["text"]
    assert "MatMulNBits" in op_types(pack / "textual.onnx")  # a whole-pack int8's text tower is block-quantised too
    assert "MatMulInteger" in op_types(pack / "visual.onnx")  # its image tower dynamically, as before


def test_quantising_a_text_tower_prints_nothing(tmp_path, tiny_pack):
    """onnxruntime's MatMulNBits quantiser sets the root logger to INFO when imported: a line per node."""
    graph = tmp_path / "textual.onnx"
    graph.write_bytes((tiny_pack / "textual.onnx").read_bytes())
    code = (
        "from pathlib import Path; from model_training.onnx_export import convert_precision; "
        f"convert_precision(Path({str(graph)!r}), 'int8', 'text')"
    )
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False)
    assert run.returncode == 0, run.stderr
    assert run.stderr == "" and run.stdout == ""
    assert "MatMulNBits" in op_types(graph)
