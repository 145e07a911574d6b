"""pack.json format 2: the text tower's input options, checked field by field; format 1 still read;
and the walk that finds a graph's ONNX external-data files, checked against the onnx package."""

from __future__ import annotations

import copy
import json

import numpy as np
import pytest

from desktop_app.errors import PackError
from desktop_app.pack import (
    DEFAULT_FORMAT,
    MAX_FILES,
    PackManifest,
    external_data_locations,
)

SHA = "0" * 64


def manifest_dict(version: int = 2, **text) -> dict:
    data = {
        "name": "m",
        "format_version": version,
        "embedding_dim": 8,
        "precision": "fp32",
        "image": {"size": [32, 32]},
        "text": {"context_length": 77, **text},
        "files": {"visual.onnx": SHA, "textual.onnx": SHA, "tokenizer.json": SHA},
    }
    return data


def test_writers_write_format_2_with_every_text_field():
    assert DEFAULT_FORMAT == 2  # format 3 only for a text tower with its own precision (test_pack_format3.py)
    data = manifest_dict(ids_dtype="int32", mask_input="attention_mask", sequence="trim",
                         language={"scheme": "flores200", "default": "eng_Latn"})
    manifest = PackManifest.from_dict(data)
    written = json.loads(manifest.to_json())
    assert written["format_version"] == 2
    assert {k: written["text"][k] for k in ("ids_dtype", "mask_input", "sequence", "language")} == {
        "ids_dtype": "int32",
        "mask_input": "attention_mask",
        "sequence": "trim",
        "language": {"scheme": "flores200", "default": "eng_Latn"},
    }
    assert PackManifest.from_dict(written) == manifest


def test_format_2_defaults_mean_what_format_1_did():
    text = PackManifest.from_dict(manifest_dict()).text
    assert (text.ids_dtype, text.mask_input, text.sequence, text.language) == ("int64", None, "fixed", None)


def test_format_1_is_read_and_written_back_as_format_1():
    manifest = PackManifest.from_dict(manifest_dict(version=1))
    assert manifest.format_version == 1 and manifest.text.sequence == "fixed"
    written = json.loads(manifest.to_json())
    assert written["format_version"] == 1 and set(written["text"]) == {"context_length", "clean", "pad_id", "tokenizer_file"}


@pytest.mark.parametrize("field, value", [("sequence", "trim"), ("ids_dtype", "int64"), ("mask_input", "m"),
                                          ("language", {"scheme": "flores200", "default": "eng_Latn"})])
def test_format_1_cannot_carry_format_2_fields(field, value):
    with pytest.raises(PackError, match=f"text has unknown field '{field}' \\(it needs pack format 2\\)"):
        PackManifest.from_dict(manifest_dict(version=1, **{field: value}))


@pytest.mark.parametrize("version", [0, 4, 99, "2", 2.0, True, None])
def test_unknown_format_versions_are_refused(version):
    data = manifest_dict()
    data["format_version"] = version
    with pytest.raises(PackError, match="is not supported \\(this pixfind reads formats 1, 2 and 3\\)"):
        PackManifest.from_dict(data)


@pytest.mark.parametrize(
    "text, message",
    [
        ({"ids_dtype": "int16"}, "text ids_dtype 'int16' is not one of int64, int32"),
        ({"ids_dtype": 64}, "text ids_dtype 64 is not one of int64, int32"),
        ({"sequence": "dynamic"}, "text sequence 'dynamic' is not one of fixed, trim"),
        ({"sequence": None}, "text sequence null is not one of fixed, trim"),
        ({"mask_input": 5}, "text mask_input 5 is not null or a graph input name"),
        ({"mask_input": ""}, "text mask_input '' is not null or a graph input name"),
        ({"mask_input": "mask\n"}, "is not null or a graph input name"),
        ({"mask_input": "m" * 300}, "is not null or a graph input name"),
        ({"language": "de"}, "text language 'de' is not null or an object"),
        ({"language": {"scheme": "iso639", "default": "eng_Latn"}}, "text language scheme 'iso639' is not one of flores200"),
        ({"language": {"scheme": "flores200", "default": "german"}}, "text language default 'german' is not a FLORES-200 code"),
        ({"language": {"scheme": "flores200"}}, "text language default null is not a FLORES-200 code"),
        ({"language": {"scheme": "flores200", "default": "eng_Latn", "x": 1}}, "text language has unknown field 'x'"),
        ({"padding": "left"}, "text has unknown field 'padding'"),
    ],
)
def test_bad_format_2_values_are_refused_in_one_line(text, message):
    with pytest.raises(PackError, match=message) as info:
        PackManifest.from_dict(manifest_dict(**text))
    assert "\n" not in str(info.value)


def test_a_pack_may_list_hundreds_of_external_data_files():
    data = manifest_dict()
    data["files"].update({f"textual/onnx__MatMul_{i}": SHA for i in range(600)})  # Immich's XLM-R-Large text tower
    assert len(PackManifest.from_dict(data).files) == 603
    data["files"].update({f"w{i}": SHA for i in range(MAX_FILES)})
    with pytest.raises(PackError, match="more than a pack has"):
        PackManifest.from_dict(data)


def test_validate_checks_format_2_fields_of_a_manifest_built_in_code():
    manifest = PackManifest.from_dict(manifest_dict())
    broken = copy.deepcopy(manifest)
    broken.text.sequence = "sometimes"
    with pytest.raises(PackError, match="text sequence 'sometimes'"):
        broken.validate()


# --------------------------------------------------------------------------- external data


def _graph_with_external_data(tmp_path):
    """Tensors with external data in every place ONNX allows one: initializers, sparse initializers,
    a Constant's tensor attribute, and an initializer inside an If node's subgraph."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    def external(name: str, location: str, values) -> onnx.TensorProto:
        tensor = numpy_helper.from_array(np.asarray(values, dtype=np.float32), name)
        tensor.ClearField("raw_data")
        tensor.data_location = TensorProto.EXTERNAL
        for key, value in (("location", location), ("offset", "0"), ("length", "8")):
            entry = tensor.external_data.add()
            entry.key, entry.value = key, value
        return tensor

    inner = helper.make_graph(
        [helper.make_node("Identity", ["inner_w"], ["branch_out"])],
        "branch",
        [],
        [helper.make_tensor_value_info("branch_out", TensorProto.FLOAT, [2])],
        [external("inner_w", "sub/inner.bin", [1, 2])],
    )
    sparse = helper.make_sparse_tensor(
        external("sparse_values", "sparse.bin", [5, 6]), numpy_helper.from_array(np.array([0, 3], dtype=np.int64), "idx"), [4]
    )
    nodes = [
        helper.make_node("Constant", [], ["c"], value=external("const_w", "const.bin", [3, 4])),
        helper.make_node("If", ["cond"], ["y"], then_branch=inner, else_branch=inner),
    ]
    graph = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info("cond", TensorProto.BOOL, [])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2])],
        [external("w", "w.bin", [7, 8]), numpy_helper.from_array(np.ones(3, np.float32), "inline")],
        sparse_initializer=[sparse],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    path = tmp_path / "model.onnx"
    path.write_bytes(model.SerializeToString())
    return path


def _onnx_locations(path) -> list[tuple[str, str]]:
    """The same answer from the onnx package: every external tensor of the loaded model proto."""
    import onnx

    model = onnx.load(str(path), load_external_data=False)
    found = []

    def visit_graph(graph):
        for tensor in graph.initializer:
            visit_tensor(tensor)
        for sparse in graph.sparse_initializer:
            visit_tensor(sparse.values)
            visit_tensor(sparse.indices)
        for node in graph.node:
            for attr in node.attribute:
                for tensor in [attr.t, *attr.tensors]:
                    visit_tensor(tensor)
                for sub in [attr.g, *attr.graphs]:
                    visit_graph(sub)

    def visit_tensor(tensor):
        if tensor.data_location == onnx.TensorProto.EXTERNAL:
            found.append((tensor.name, {e.key: e.value for e in tensor.external_data}["location"]))

    visit_graph(model.graph)
    return found


def test_external_data_walk_agrees_with_onnx(tmp_path):
    path = _graph_with_external_data(tmp_path)
    expected = _onnx_locations(path)
    assert len(expected) == 5  # the fixture has one in each place (the If's two branches share a graph)
    assert sorted(external_data_locations(path)) == sorted(expected)


def test_a_graph_without_external_data_has_none(tmp_path):
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    graph = helper.make_graph(
        [helper.make_node("Identity", ["w"], ["y"])], "g", [], [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2])],
        [numpy_helper.from_array(np.ones(2, np.float32), "w")],
    )
    path = tmp_path / "m.onnx"
    onnx.save(helper.make_model(graph), str(path))
    assert external_data_locations(path) == []


@pytest.mark.parametrize("content", [b"\x0a\x08location" + b"\xff" * 20, b"\x3a\xff\xff\xff\xff\x0f\x0a\x08location", b""])
def test_a_broken_graph_is_refused_in_one_line(tmp_path, content):
    path = tmp_path / "textual.onnx"
    path.write_bytes(content)
    with pytest.raises(PackError, match="textual.onnx: ONNX Runtime cannot load it \\((not a valid ONNX model|an empty file)"):
        external_data_locations(path)
