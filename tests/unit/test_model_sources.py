"""Conversion of Immich-layout models, on small synthetic ONNX graphs built with `onnx` here:
external data gathered (and refused when it leaves the model's folder), a fixed batch axis made
dynamic when the graph computes any batch (checked), the pack.json text settings, and the
Hub reference syntax."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from desktop_app.errors import PackError, PixfindError
from desktop_app.model_sources import detect, hub, immich, onnx_graph

onnx = pytest.importorskip("onnx")
from onnx import TensorProto, helper, numpy_helper

DIM = 8
SIZE = 4
LENGTH = 6


def _graph(path: Path, input_name: str, elem, shape, weight: np.ndarray, external: bool, mask: str | None = None) -> None:
    """input -> (Cast) -> Flatten -> MatMul(weight) -> L2 normalise -> "embedding", batch fixed at 1."""
    nodes, inputs = [], [helper.make_tensor_value_info(input_name, elem, shape)]
    x = input_name
    if mask:
        inputs.append(helper.make_tensor_value_info(mask, elem, shape))
        nodes.append(helper.make_node("Mul", [x, mask], ["masked"]))
        x = "masked"
    if elem != TensorProto.FLOAT:
        nodes.append(helper.make_node("Cast", [x], ["as_float"], to=TensorProto.FLOAT))
        x = "as_float"
    nodes += [
        helper.make_node("Flatten", [x], ["flat"], axis=1),
        helper.make_node("MatMul", ["flat", "weight"], ["projected"]),
        helper.make_node("LpNormalization", ["projected"], ["embedding"], axis=1, p=2),
    ]
    init = numpy_helper.from_array(weight.astype(np.float32), "weight")
    graph = helper.make_graph(nodes, "g", inputs, [helper.make_tensor_value_info("embedding", TensorProto.FLOAT, [1, DIM])], [init])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 19)])
    model.ir_version = 9
    path.parent.mkdir(parents=True, exist_ok=True)
    if external:  # one file per tensor, as Immich's large text towers are stored
        onnx.save_model(model, str(path), save_as_external_data=True, all_tensors_to_one_file=False, size_threshold=0)
    else:
        onnx.save_model(model, str(path))


def _tokenizer(folder: Path) -> None:
    from tokenizers import Tokenizer, models, pre_tokenizers, processors

    vocab = {"[PAD]": 0, "[UNK]": 1, "<s>": 2, "</s>": 3, **{w: i + 4 for i, w in enumerate("a photo of cat dog кошка 猫".split())}}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.post_processor = processors.TemplateProcessing(single="<s> $A </s>", special_tokens=[("<s>", 2), ("</s>", 3)])
    folder.mkdir(parents=True, exist_ok=True)
    tok.save(str(folder / "tokenizer.json"))
    (folder / "tokenizer_config.json").write_text(json.dumps({"pad_token": "[PAD]", "tokenizer_class": "PreTrainedTokenizerFast"}))


def immich_folder(root: Path, *, external: bool = False, mask: bool = False) -> Path:
    rng = np.random.default_rng(0)
    (root / "visual").mkdir(parents=True)
    (root / "config.json").write_text(json.dumps({"embed_dim": DIM, "vision_cfg": {"image_size": SIZE}, "text_cfg": {"context_length": LENGTH}}))
    (root / "visual" / "preprocess_cfg.json").write_text(
        json.dumps({"size": [SIZE, SIZE], "mode": "RGB", "mean": [0.5] * 3, "std": [0.25] * 3, "interpolation": "bicubic", "resize_mode": "squash"})
    )
    _graph(root / "visual" / "model.onnx", "image", TensorProto.FLOAT, [1, 3, SIZE, SIZE], rng.standard_normal((3 * SIZE * SIZE, DIM)), external)
    _graph(
        root / "textual" / "model.onnx",
        "input_ids" if mask else "text",
        TensorProto.INT32,
        [1, LENGTH],
        rng.standard_normal((LENGTH, DIM)),
        external,
        mask="attention_mask" if mask else None,
    )
    _tokenizer(root / "textual")
    return root


def test_conversion_makes_the_batch_dynamic_when_the_graph_allows_and_runs(tmp_path):
    from desktop_app.encoder import Encoder

    folder = immich_folder(tmp_path / "repo")
    manifest = immich.convert(folder, tmp_path / "pack", name="synthetic", source={"repo": "x/y"})
    assert manifest.source["batch"] == {"visual": "made dynamic (checked on a batch of two)", "textual": "made dynamic (checked on a batch of two)"}
    assert (manifest.text.ids_dtype, manifest.text.mask_input, manifest.text.clean, manifest.text.pad_id) == ("int32", None, "whitespace", 0)
    encoder = Encoder(tmp_path / "pack", providers=["CPUExecutionProvider"])
    assert encoder.visual_session.get_inputs()[0].shape[0] == "batch"
    out = encoder.encode_texts(["a photo of cat", "dog", "猫"])
    assert out.shape == (3, DIM) and np.allclose(np.linalg.norm(out, axis=1), 1, atol=1e-5)


def test_external_data_is_gathered_into_one_file_per_tower(tmp_path):
    from desktop_app.encoder import Encoder

    folder = immich_folder(tmp_path / "repo", external=True, mask=True)
    assert len([p for p in (folder / "textual").iterdir() if p.suffix not in (".onnx", ".json")]) == 1
    manifest = immich.convert(folder, tmp_path / "pack", name="external", source={})
    assert {"visual.onnx.data", "textual.onnx.data"} <= set(manifest.files)
    assert manifest.text.mask_input == "attention_mask"
    encoder = Encoder(tmp_path / "pack", providers=["CPUExecutionProvider"], lazy=False)
    assert encoder.encode_texts(["кошка"]).shape == (1, DIM)


def test_external_data_outside_the_model_folder_is_refused(tmp_path):
    folder = immich_folder(tmp_path / "repo", external=True)
    model = onnx.load(str(folder / "textual" / "model.onnx"), load_external_data=False)
    (tmp_path / "secret").write_bytes(b"\0" * 1024)
    for tensor in model.graph.initializer:
        for entry in tensor.external_data:
            if entry.key == "location":
                entry.value = "../../secret"
    onnx.save_model(model, str(folder / "textual" / "model.onnx"))
    with pytest.raises(PackError, match="not a file inside the model's folder"):
        immich.convert(folder, tmp_path / "pack", name="bad", source={})


def test_garbled_graph_and_mismatched_config_are_one_line_errors(tmp_path):
    folder = immich_folder(tmp_path / "repo")
    (folder / "config.json").write_text(json.dumps({"embed_dim": DIM, "text_cfg": {"context_length": LENGTH + 1}}))
    with pytest.raises(PackError, match="takes 6 tokens but config.json says context_length 7"):
        immich.convert(folder, tmp_path / "p1", name="x", source={})
    (folder / "visual" / "model.onnx").write_bytes(b"\x08\x07garbage" * 10)
    with pytest.raises(PackError, match="not an ONNX model"):
        immich.convert(folder, tmp_path / "p2", name="x", source={})


def test_layouts_are_told_apart():
    assert detect.layout_of_files({"pack.json", "visual.onnx"}, "x") == detect.PIXFIND
    assert detect.layout_of_files(set(immich.REQUIRED), "x") == detect.IMMICH
    with pytest.raises(PackError, match="without textual/tokenizer.json"):
        detect.layout_of_files(set(immich.REQUIRED) - {immich.TEXTUAL_TOKENIZER}, "x")
    with pytest.raises(PackError, match="is not a model pack"):
        detect.layout_of_files({"model.pth"}, "x")


def test_hub_references():
    assert hub.parse_ref("hf:immich-app/ViT-B-32__openai") == hub.HubRef("immich-app/ViT-B-32__openai", None)
    assert hub.parse_ref("hf:org/repo@v1.0") == hub.HubRef("org/repo", "v1.0")
    assert str(hub.HubRef("org/repo", "main")) == "hf:org/repo@main"
    for bad in ("hf:repo", "hf:org/../x", "hf:org/repo@..", "hf:/x", "hf:org/re po"):
        with pytest.raises(PixfindError):
            hub.parse_ref(bad)
    assert hub._literal("a/[x]*?.onnx") == "a/[[]x][*][?].onnx"


def test_onnx_graph_round_trip_keeps_everything_else(tmp_path):
    folder = immich_folder(tmp_path / "repo")
    path = folder / "visual" / "model.onnx"
    model = onnx_graph.load_model(path)
    assert onnx_graph.graph_inputs(model)[0] == onnx_graph.GraphInput("image", "float32", (1, 3, SIZE, SIZE))
    onnx_graph.save_model(model, tmp_path / "same.onnx")
    # fields pixfind does not declare are written back unchanged (their order may differ)
    assert onnx.load(str(tmp_path / "same.onnx")) == onnx.load(str(path))
    onnx_graph.make_batch_symbolic(model)
    onnx_graph.save_model(model, tmp_path / "dynamic.onnx")
    checked = onnx.load(str(tmp_path / "dynamic.onnx"))
    onnx.checker.check_model(checked)
    assert checked.graph.input[0].type.tensor_type.shape.dim[0].dim_param == "batch"
    assert len(checked.graph.initializer) == 1
