"""`pixfind models import RCLIP_DIR` (and `models pull hf:` of rclip's repository layout) through the
console script: rclip 3.3's data dir, built the way rclip's ``scripts/convert_model.py`` builds it
(``model.visual`` and ``model.encode_text`` exported at opset 18 with a dynamic batch, input
"input", output "output", *unnormalised*; open_clip's BPE vocabulary beside them), from the tiny
random-weight open_clip model of tests/conftest.py. Converted on install (an L2 normalisation node
appended, tokenizer.json built from the vocabulary without torch), indexed and searched; parity
with the pack ``model_training.export`` makes of the same weights; a folder with a missing graph
or a garbled vocabulary refused in one line with nothing installed."""

from __future__ import annotations

import contextlib
import gzip
import json
import os
import shutil
import warnings
from pathlib import Path

import pytest

from tests.hub_server import Repo, serving_hub
from tests.model_cli import error_line, installed, leftovers, pixfind

pytest.importorskip("open_clip")

ROOT = Path(__file__).resolve().parents[2]
SAMPLES = ROOT / "desktop_app" / "resources" / "sample-photos"
MODEL_SUBDIR = "ViT-B-32-256-datacomp_s34b_b86k"  # rclip/model_download.py
VOCABULARY = "tokenizer/bpe_simple_vocab_16e6.txt.gz"
RCLIP_OPSET = 18  # rclip's scripts/convert_model.py
# fp32 graphs of the same weights from two exporters differ only by float rounding: the bar
# for a converted pack is a cosine of at least 0.9999 on both towers.
PARITY = 0.9999
TEXTS = ["a photo of a cat", "A dog running on the BEACH at sunset!", "a cup of coffee", "東京タワーの夜景", ""]


def build_rclip_data_dir(out: Path, checkpoint: Path) -> Path:
    """rclip's data dir holding the tiny model, exported as rclip's scripts/convert_model.py does."""
    import open_clip
    import torch

    from model_training.open_clip_models import resolve_arch
    from tests.conftest import TINY_CONFIG

    name, _ = resolve_arch(str(TINY_CONFIG))
    model = open_clip.create_model(name, pretrained=None)
    model.load_state_dict(torch.load(checkpoint, map_location="cpu"))
    model.eval()

    class Visual(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.visual = model.visual

        def forward(self, inputs):
            return self.visual(inputs)

    class Textual(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.clip_model = model

        def forward(self, inputs):
            return self.clip_model.encode_text(inputs)

    size = model.visual.image_size
    size = size[0] if isinstance(size, (tuple, list)) else size
    model_dir = out / MODEL_SUBDIR
    model_dir.mkdir(parents=True)
    dummies = {"visual.onnx": (Visual(), torch.randn(1, 3, size, size)), "textual.onnx": (Textual(), torch.zeros(1, 77, dtype=torch.long))}
    for filename, (module, dummy) in dummies.items():
        with warnings.catch_warnings(), _mha_fastpath_off(torch):
            warnings.simplefilter("ignore")
            torch.onnx.export(
                module,
                (dummy,),
                str(model_dir / filename),
                input_names=["input"],
                output_names=["output"],
                dynamic_axes={"input": {0: "batch"}, "output": {0: "batch"}},
                opset_version=RCLIP_OPSET,
                dynamo=False,
            )
    (out / "tokenizer").mkdir()
    shutil.copy(Path(open_clip.__file__).parent / "bpe_simple_vocab_16e6.txt.gz", out / VOCABULARY)
    (out / "db.sqlite3").write_bytes(b"")  # rclip's index lives beside its models; it is not read
    return out


@contextlib.contextmanager
def _mha_fastpath_off(torch):
    """As rclip's exporter: attention exported through its plain path."""
    before = torch.backends.mha.get_fastpath_enabled()
    torch.backends.mha.set_fastpath_enabled(False)
    try:
        yield
    finally:
        torch.backends.mha.set_fastpath_enabled(before)


@pytest.fixture(scope="module")
def rclip_dir(tmp_path_factory, tiny_checkpoint) -> Path:
    return build_rclip_data_dir(tmp_path_factory.mktemp("rclip") / "rclip", tiny_checkpoint)


def _norms(path: Path, feed_of) -> list[float]:
    import numpy as np
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    (out,) = session.run(None, {"input": feed_of(session)})
    return list(np.linalg.norm(out, axis=1))


def test_rclip_model_folder_imports_indexes_searches_with_parity(rclip_dir, tiny_pack, tmp_path):
    import numpy as np

    from desktop_app.encoder import Encoder

    # rclip's graphs end unnormalised (rclip divides by the norm in NumPy): the import must fix that
    raw = _norms(rclip_dir / MODEL_SUBDIR / "visual.onnx", lambda s: np.ones((2, 3, 32, 32), np.float32))
    raw += _norms(rclip_dir / MODEL_SUBDIR / "textual.onnx", lambda s: np.array([[49406, 320, 49407] + [0] * 74] * 2))
    assert all(abs(n - 1) > 0.01 for n in raw), raw

    home = tmp_path / "home"
    # the model subfolder names the data dir above it
    code, out, err = pixfind(home, "models", "import", str(rclip_dir / MODEL_SUBDIR), "--name", "rclip")
    assert code == 0, err
    assert "installed model rclip (64-d, fp32)" in out
    pack = home / "data" / "models" / "rclip"
    manifest = json.loads((pack / "pack.json").read_text())
    assert manifest["format_version"] == 2
    assert manifest["image"] | {"size": tuple(manifest["image"]["size"])} == {
        "size": (32, 32),  # declared by the graph (rclip's real one: 256)
        "resize_mode": "shortest",
        "interpolation": "bicubic",
        "mean": [0.48145466, 0.4578275, 0.40821073],
        "std": [0.26862954, 0.26130258, 0.27577711],
        "fill_color": 0,
    }
    text = manifest["text"]
    assert (text["context_length"], text["clean"], text["pad_id"], text["ids_dtype"]) == (77, "lower", 0, "int64")
    assert manifest["source"]["normalisation"] == {"visual": "LpNormalization appended", "textual": "LpNormalization appended"}
    assert manifest["source"]["graph_inputs"] == {"visual": "input", "textual": "input"}
    import onnx

    for tower in ("visual.onnx", "textual.onnx"):  # the appended node is valid ONNX, not only what ONNX Runtime accepts
        graph = onnx.load(str(pack / tower))
        onnx.checker.check_model(graph)
        assert graph.graph.node[-1].op_type == "LpNormalization" and graph.graph.output[0].name == graph.graph.node[-1].output[0]
    # the tokenizer built from the vocabulary file is open_clip's, byte for byte as the export writes it
    assert (pack / "tokenizer.json").read_bytes() == (tiny_pack / "tokenizer.json").read_bytes()

    ours, theirs = Encoder(pack), Encoder(tiny_pack)
    photos = sorted(SAMPLES.glob("*.jpg"))
    image_a, image_b = ours.encode_images(photos), theirs.encode_images(photos)
    text_a, text_b = ours.encode_texts(TEXTS), theirs.encode_texts(TEXTS)
    for a, b in ((image_a, image_b), (text_a, text_b)):
        assert np.allclose(np.linalg.norm(a, axis=1), 1, atol=1e-5)
        assert float((a * b).sum(axis=1).min()) >= PARITY

    assert pixfind(home, "models", "use", "rclip")[0] == 0
    code, out, err = pixfind(home, "index", str(SAMPLES))
    assert code == 0, err
    code, out, err = pixfind(home, "search", "a cup of coffee", "--json", "--limit", "3", "--all")
    assert code == 0, err
    hits = json.loads(out)
    assert len(hits) == 3 and all(Path(h["path"]).parent == SAMPLES for h in hits)


def test_rclip_data_dir_zip_and_hub_repository_install(rclip_dir, tmp_path):
    home = tmp_path / "home"
    code, out, err = pixfind(home, "models", "import", str(rclip_dir))  # the data dir itself
    assert code == 0, err
    assert "installed model rclip-vit-b-32-256 (64-d" in out

    # rclip's Hub repository (yurijmikhalevich/rclip-models) has the data dir's layout
    files = {name: (rclip_dir / name).read_bytes() for name in (f"{MODEL_SUBDIR}/visual.onnx", f"{MODEL_SUBDIR}/textual.onnx", VOCABULARY)}
    files["README.md"] = b"# rclip model artifacts\n"
    with serving_hub(Repo("yurijmikhalevich/rclip-models", files)) as hub:
        code, out, err = pixfind(home, "models", "pull", "hf:yurijmikhalevich/rclip-models", hub=hub)
    assert code == 0, err
    assert "installed model rclip-models (64-d" in out
    assert installed(home) == ["rclip-models", "rclip-vit-b-32-256"]


def _damaged_copy(rclip_dir: Path, where: Path, damage) -> Path:
    copy = shutil.copytree(rclip_dir, where)
    damage(copy)
    return copy


@pytest.mark.parametrize(
    "damage, expected",
    [
        (lambda d: (d / MODEL_SUBDIR / "textual.onnx").unlink(), f"without {MODEL_SUBDIR}/textual.onnx"),
        (lambda d: (d / VOCABULARY).unlink(), f"without {VOCABULARY}"),
        (lambda d: (d / VOCABULARY).write_bytes(os.urandom(4096)), "not a gzip-compressed CLIP BPE vocabulary"),
        # a real gzip whose text is cut short: fewer merges than the 48894 CLIP reads
        (lambda d: (d / VOCABULARY).write_bytes(gzip.compress(gzip.decompress((d / VOCABULARY).read_bytes())[:100_000])), "merges"),
        # a merge of symbols that are not in the vocabulary (a garbled line)
        (
            lambda d: (d / VOCABULARY).write_bytes(
                gzip.compress(gzip.decompress((d / VOCABULARY).read_bytes()).replace(b"\nt h\n", b"\n\xc3\xa9\xc3\xa9 q\n", 1))
            ),
            "line 3 merges symbols that are not in the vocabulary",
        ),
        (lambda d: (d / MODEL_SUBDIR / "visual.onnx").write_bytes(b"\x08\x07garbage" * 10), "not an ONNX model"),
    ],
    ids=["no-textual-graph", "no-vocabulary", "vocabulary-not-gzip", "vocabulary-truncated", "vocabulary-garbled", "graph-garbled"],
)
def test_damaged_rclip_folder_is_refused_in_one_line_and_nothing_installed(rclip_dir, tmp_path, damage, expected):
    folder = _damaged_copy(rclip_dir, tmp_path / "rclip", damage)
    home = tmp_path / "home"
    code, _, err = pixfind(home, "models", "import", str(folder))
    assert code == 1
    assert expected in error_line(err)
    assert installed(home) == [] and leftovers(home) == []
