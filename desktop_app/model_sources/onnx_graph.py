"""Reading and adjusting ONNX files without the ``onnx`` package (the app never imports it).

Only the handful of ONNX protobuf fields pixfind needs are declared here (field numbers from
onnx.proto): the graph's inputs and outputs with their shapes, and where initializers keep
their data (inline, or in external-data files). ``protobuf`` keeps every other field as an
unknown field and writes it back unchanged, so a model read and written again here differs
only in what was changed on purpose.

Used on install, to:
- describe a graph's inputs (names, element types, shapes) before a session is opened;
- make a batch dimension fixed at 1 symbolic (Immich exports have no dynamic axes);
- gather external-data tensors into one ``<model>.data`` file beside the model, refusing any
  location that leaves the folder the model came from;
- end a graph whose output is not normalised (rclip's) with an L2 normalisation node.
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from ..errors import PackError, one_line

#: onnx.TensorProto.DataType values pixfind meets.
ELEM_TYPES = {1: "float32", 6: "int32", 7: "int64", 10: "float16", 2: "uint8", 11: "float64"}
EXTERNAL = 1  # TensorProto.DataLocation.EXTERNAL
#: Serialised protobuf messages cannot exceed 2 GiB; larger models must use external data.
MAX_PROTO_BYTES = 2**31 - 1
#: Tensors of at least this many bytes start on a multiple of ALIGNMENT in a gathered data file
#: (as onnx.save_model does), so ONNX Runtime can memory-map them.
ALIGN_THRESHOLD = 1 << 20
ALIGNMENT = 1 << 16


@functools.cache
def _messages():
    """The message classes of the ONNX subset above (built once, in a private descriptor pool)."""
    from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

    F = descriptor_pb2.FieldDescriptorProto
    file = descriptor_pb2.FileDescriptorProto(name="pixfind_onnx_subset.proto", package="pixfind_onnx", syntax="proto2")

    def message(name, fields, oneofs=()):
        msg = file.message_type.add(name=name)
        for oneof in oneofs:
            msg.oneof_decl.add(name=oneof)
        for fname, number, ftype, label, type_name, oneof_index in fields:
            field = msg.field.add(name=fname, number=number, type=ftype, label=label)
            if type_name:
                field.type_name = f".pixfind_onnx.{type_name}"
            if oneof_index is not None:
                field.oneof_index = oneof_index
        return msg

    opt, rep = F.LABEL_OPTIONAL, F.LABEL_REPEATED
    msg, string, int64, int32 = F.TYPE_MESSAGE, F.TYPE_STRING, F.TYPE_INT64, F.TYPE_INT32
    message("StringStringEntry", [("key", 1, string, opt, None, None), ("value", 2, string, opt, None, None)])
    message(
        "Tensor",
        [
            ("dims", 1, int64, rep, None, None),
            ("data_type", 2, int32, opt, None, None),
            ("name", 8, string, opt, None, None),
            ("external_data", 13, msg, rep, "StringStringEntry", None),
            ("data_location", 14, int32, opt, None, None),
        ],
    )
    message(
        "Dimension",
        [("dim_value", 1, int64, opt, None, 0), ("dim_param", 2, string, opt, None, 0)],
        oneofs=("value",),
    )
    message("Shape", [("dim", 1, msg, rep, "Dimension", None)])
    message("TensorType", [("elem_type", 1, int32, opt, None, None), ("shape", 2, msg, opt, "Shape", None)])
    message("Type", [("tensor_type", 1, msg, opt, "TensorType", None)])
    message("ValueInfo", [("name", 1, string, opt, None, None), ("type", 2, msg, opt, "Type", None)])
    message(
        "Attribute",
        [
            ("name", 1, string, opt, None, None),
            ("i", 3, int64, opt, None, None),
            ("t", 5, msg, opt, "Tensor", None),
            ("g", 6, msg, opt, "Graph", None),
            ("tensors", 10, msg, rep, "Tensor", None),
            ("graphs", 11, msg, rep, "Graph", None),
            ("type", 20, int32, opt, None, None),
        ],
    )
    message(
        "Node",
        [
            ("input", 1, string, rep, None, None),
            ("output", 2, string, rep, None, None),
            ("name", 3, string, opt, None, None),
            ("op_type", 4, string, opt, None, None),
            ("attribute", 5, msg, rep, "Attribute", None),
            ("domain", 7, string, opt, None, None),
        ],
    )
    message(
        "Graph",
        [
            ("node", 1, msg, rep, "Node", None),
            ("initializer", 5, msg, rep, "Tensor", None),
            ("input", 11, msg, rep, "ValueInfo", None),
            ("output", 12, msg, rep, "ValueInfo", None),
            ("value_info", 13, msg, rep, "ValueInfo", None),
        ],
    )
    message("OperatorSetId", [("domain", 1, string, opt, None, None), ("version", 2, int64, opt, None, None)])
    message("Model", [("graph", 7, msg, opt, "Graph", None), ("opset_import", 8, msg, rep, "OperatorSetId", None)])
    pool = descriptor_pool.DescriptorPool()
    pool.Add(file)
    return message_factory.GetMessageClass(pool.FindMessageTypeByName("pixfind_onnx.Model"))


@dataclass(frozen=True)
class GraphInput:
    name: str
    dtype: str  # float32, int32, int64, ... ("type N" for others)
    shape: tuple[int | str | None, ...]  # an int, a symbolic name, or None (unknown)


def load_model(path: Path):
    """The model at ``path`` as a message of the subset above; PackError in one line if it is not ONNX."""
    path = Path(path)
    try:
        size = path.stat().st_size
        if size > MAX_PROTO_BYTES:
            raise PackError(f"{path}: {size / 2**30:.1f} GiB, over the 2 GiB an ONNX file can hold without external data")
        data = path.read_bytes()
    except OSError as e:
        raise PackError(f"{path}: unreadable ({e.strerror or one_line(e)})") from None
    model = _messages()()
    try:
        model.ParseFromString(data)
    except Exception as e:  # noqa: BLE001 - protobuf's DecodeError and friends
        raise PackError(f"{path}: not an ONNX model ({one_line(e)})") from None
    if not model.HasField("graph") or not model.graph.output:
        raise PackError(f"{path}: not an ONNX model (no graph)")
    return model


def save_model(model, path: Path) -> None:
    data = model.SerializeToString()
    tmp = Path(path).with_name(Path(path).name + ".tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def _shape(value_info) -> tuple[int | str | None, ...]:
    dims = []
    for dim in value_info.type.tensor_type.shape.dim:
        which = dim.WhichOneof("value")
        dims.append(dim.dim_value if which == "dim_value" else dim.dim_param if which == "dim_param" else None)
    return tuple(dims)


def graph_inputs(model) -> list[GraphInput]:
    """The inputs a caller feeds (initializers listed as inputs by old exporters left out)."""
    initializers = {t.name for t in model.graph.initializer}
    return [
        GraphInput(v.name, ELEM_TYPES.get(v.type.tensor_type.elem_type, f"type {v.type.tensor_type.elem_type}"), _shape(v))
        for v in model.graph.input
        if v.name not in initializers
    ]


def graph_outputs(model) -> list[GraphInput]:
    return [
        GraphInput(v.name, ELEM_TYPES.get(v.type.tensor_type.elem_type, f"type {v.type.tensor_type.elem_type}"), _shape(v))
        for v in model.graph.output
    ]


def fixed_batch(model) -> bool:
    """Whether any fed input or any output has its first dimension fixed at a number."""
    return any(isinstance(v.shape[0], int) for v in graph_inputs(model) + graph_outputs(model) if v.shape)


def make_batch_symbolic(model, name: str = "batch") -> None:
    """Declare the first dimension of every fed input and every output as ``name``.

    Intermediate shapes recorded by the exporter (value_info) are dropped: they carry the old
    batch size, and ONNX Runtime infers them again. Whether the graph really computes any batch
    size (an exporter may have folded the size into Reshape constants) is for the caller to test.
    """
    initializers = {t.name for t in model.graph.initializer}
    for value in [v for v in model.graph.input if v.name not in initializers] + list(model.graph.output):
        dims = value.type.tensor_type.shape.dim
        if len(dims):
            dims[0].dim_param = name
    del model.graph.value_info[:]


ATTRIBUTE_INT = 2  # AttributeProto.AttributeType.INT


def _names(graph) -> set[str]:
    names = {v.name for v in list(graph.input) + list(graph.output) + list(graph.value_info)}
    names |= {t.name for t in graph.initializer}
    for node in graph.node:
        names.update(node.input)
        names.update(node.output)
    return names


def append_l2_normalisation(model) -> str:
    """End the graph with ``LpNormalization(p=2, axis=-1)`` on its (only) output, so it gives
    L2-normalised embeddings; returns the new output's name.

    The old output stays an intermediate value; the graph's output entry keeps its type and shape
    under the new name (the runtime takes a tower's first output whatever its name).
    LpNormalization exists unchanged since opset 1 of the default domain, so any ONNX Runtime runs it.
    """
    graph = model.graph
    if len(graph.output) != 1:
        raise PackError(f"the graph has {len(graph.output)} outputs; only a graph with one output can be normalised")
    output = graph.output[0]
    if output.type.tensor_type.elem_type != 1:
        dtype = ELEM_TYPES.get(output.type.tensor_type.elem_type, str(output.type.tensor_type.elem_type))
        raise PackError(f"its output {output.name!r} is {dtype}, not float32")
    if not any(o.domain in ("", "ai.onnx") for o in model.opset_import):
        raise PackError("the graph imports no opset of the default ONNX domain")
    taken = _names(graph)
    new_name = f"{output.name}_normalised"
    while new_name in taken:
        new_name += "_"
    node = graph.node.add(op_type="LpNormalization", name=new_name, domain="")
    node.input.append(output.name)
    node.output.append(new_name)
    node.attribute.add(name="axis", type=ATTRIBUTE_INT, i=-1)
    node.attribute.add(name="p", type=ATTRIBUTE_INT, i=2)
    output.name = new_name
    return new_name


# ---------------------------------------------------------------- external data


def _tensors(graph):
    """Every tensor of a graph and its subgraphs that could keep its data outside the file."""
    yield from graph.initializer
    for node in graph.node:
        for attribute in node.attribute:
            if attribute.HasField("t"):
                yield attribute.t
            yield from attribute.tensors
            if attribute.HasField("g"):
                yield from _tensors(attribute.g)
            for sub in attribute.graphs:
                yield from _tensors(sub)


def _external_fields(tensor) -> dict[str, str]:
    return {entry.key: entry.value for entry in tensor.external_data}


def external_files(model) -> list[str]:
    """The external-data locations the model refers to, in order of first use."""
    seen: dict[str, None] = {}
    for tensor in _tensors(model.graph):
        if tensor.data_location == EXTERNAL:
            seen.setdefault(_external_fields(tensor).get("location", ""), None)
    return list(seen)


def _confined(folder: Path, location: str, model_path: Path) -> Path:
    """The file an external-data location names, which must lie inside ``folder``."""
    posix = PurePosixPath(location)
    if (
        not location
        or "\\" in location
        or posix.is_absolute()
        or any(part in ("..", "") for part in location.split("/"))
        or any(ord(c) < 32 for c in location)
        or (len(location) > 1 and location[1] == ":")
    ):
        raise PackError(f"{model_path}: external data location {location!r} is not a file inside the model's folder; refusing it")
    path = folder / location
    try:
        resolved = path.resolve(strict=True)
    except (OSError, RuntimeError):
        raise PackError(f"{model_path}: external data file {location!r} is missing") from None
    if not resolved.is_relative_to(folder.resolve()) or not resolved.is_file():
        raise PackError(f"{model_path}: external data file {location!r} resolves outside the model's folder; refusing it")
    return resolved


def _int_field(fields: dict[str, str], key: str, model_path: Path, name: str) -> int | None:
    if key not in fields:
        return None
    try:
        value = int(fields[key])
    except ValueError:
        value = -1
    if value < 0:
        raise PackError(f"{model_path}: tensor {name!r} has an invalid external data {key} {fields[key]!r}")
    return value


def gather_external_data(model, source_dir: Path, model_path: Path, data_path: Path, progress=None) -> int:
    """Copy every external tensor the model refers to into ``data_path`` and point the model at it.

    ``source_dir`` is where the model's locations are resolved (the folder it came from); every
    location must name a file inside it, and every tensor's bytes must lie inside that file.
    Returns how many tensors were moved. The caller saves the model beside ``data_path``.
    """
    offset = 0
    count = 0
    with open(data_path, "wb") as out:
        for tensor in _tensors(model.graph):
            if tensor.data_location != EXTERNAL:
                continue
            fields = _external_fields(tensor)
            source = _confined(Path(source_dir), fields.get("location", ""), model_path)
            start = _int_field(fields, "offset", model_path, tensor.name) or 0
            length = _int_field(fields, "length", model_path, tensor.name)
            size = source.stat().st_size
            if length is None:
                length = size - start
            if start + length > size or length < 0:
                raise PackError(
                    f"{model_path}: tensor {tensor.name!r} needs bytes {start}..{start + length} of "
                    f"{fields.get('location')!r}, which has {size}; the file is truncated"
                )
            if length >= ALIGN_THRESHOLD and offset % ALIGNMENT:
                pad = ALIGNMENT - offset % ALIGNMENT
                out.write(b"\0" * pad)
                offset += pad
            with open(source, "rb") as f:
                f.seek(start)
                remaining = length
                while remaining:
                    chunk = f.read(min(remaining, 1 << 22))
                    if not chunk:
                        raise PackError(f"{model_path}: {fields.get('location')!r} ended early")
                    out.write(chunk)
                    remaining -= len(chunk)
            del tensor.external_data[:]
            for key, value in (("location", data_path.name), ("offset", str(offset)), ("length", str(length))):
                tensor.external_data.add(key=key, value=value)
            offset += length
            count += 1
            if progress is not None:
                progress(count)
    return count
