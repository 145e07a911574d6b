"""The model pack: the one interface between training and the app.

A pack is a directory holding ``visual.onnx``, ``textual.onnx``, ``tokenizer.json``
and ``pack.json``. ``pack.json`` describes where the encoders came from, how images
are preprocessed and texts tokenised, and the sha256 of every file, so the app can
refuse a pack that was damaged or tampered with.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import Any

from .errors import PackError

# Before anything can import onnxruntime: its telemetry would write under the user's cache
# folder, outside PIXFIND_HOME (it reads this variable once, when the library loads).
os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")

#: The newest pack format. Format 2 adds the text tower's input options (``TextSettings``: ids dtype,
#: attention-mask input, trimmed sequences, language token); format 3 the text tower's own precision
#: (an int8 text tower beside an fp32 image tower). Format 1 is still read as before.
FORMAT_VERSION = 3
READABLE_FORMATS = (1, 2, 3)
#: What writers write unless a manifest needs a newer format (see :func:`format_for`): older
#: pixfind releases read it.
DEFAULT_FORMAT = 2
MANIFEST_NAME = "pack.json"
VISUAL_FILE = "visual.onnx"
TEXTUAL_FILE = "textual.onnx"
TOKENIZER_FILE = "tokenizer.json"
PRECISIONS = ("fp32", "fp16", "int8")
RESIZE_MODES = ("shortest", "longest", "squash")
CLEAN_MODES = ("lower", "whitespace", "canonicalize")
INTERPOLATIONS = ("bicubic", "bilinear")
IDS_DTYPES = ("int64", "int32")
SEQUENCES = ("fixed", "trim")
LANGUAGE_SCHEMES = ("flores200",)
#: Metadata key of a text graph whose token axis is dynamic: the most tokens it takes (its positional
#: embeddings), which its shape no longer says; checked against pack.json's context_length.
GRAPH_CONTEXT_LENGTH_KEY = "pixfind.context_length"
#: The text fields format 2 added (a format-1 pack.json that has one is refused: it is not format 1).
_TEXT_V2_FIELDS = ("ids_dtype", "mask_input", "sequence", "language")
#: The text field format 3 added (a format-1 or format-2 pack.json that has it is refused).
_TEXT_V3_FIELDS = ("precision",)
_FLORES_RE = re.compile(r"^[a-z]{3}_[A-Z][a-z]{3}$")

#: pack.json describes a handful of settings: anything bigger is not a pack's manifest.
MAX_MANIFEST_BYTES = 1 << 20
#: How deep JSON objects and lists may nest in pack.json (the real ones nest 3 deep).
MAX_JSON_DEPTH = 16
#: Bounds on the numbers a real model can have; beyond them a pack.json is lying or broken.
MAX_IMAGE_SIZE = 4096
MAX_CONTEXT_LENGTH = 1024
MAX_EMBEDDING_DIM = 65536
#: Large models keep their weights in ONNX external-data files, some with one file per tensor
#: (Immich's XLM-Roberta-Large text tower has several hundred).
MAX_FILES = 4096
MAX_INPUT_NAME = 256
_SHA256_RE = re.compile(r"^[0-9a-f]{64}$")
_CONTROL_RE = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def sha256_file(path: Path, chunk_size: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(chunk_size):
            digest.update(chunk)
    return digest.hexdigest()


@dataclass
class ImageSettings:
    """How open_clip's eval transform prepares an image for this model."""

    size: tuple[int, int]  # (height, width)
    resize_mode: str = "shortest"
    interpolation: str = "bicubic"
    mean: tuple[float, float, float] = (0.48145466, 0.4578275, 0.40821073)
    std: tuple[float, float, float] = (0.26862954, 0.26130258, 0.27577711)
    fill_color: int = 0


@dataclass
class TextSettings:
    """How open_clip's tokenizer for this model turns a string into token ids."""

    context_length: int
    clean: str = "lower"
    pad_id: int = 0
    tokenizer_file: str = TOKENIZER_FILE
    # Format 2 (the defaults are what a format-1 pack means):
    #: the dtype of the graph's ids input (Immich's text graphs take int32)
    ids_dtype: str = "int64"
    #: the name of a second graph input taking the attention mask (1 = token, 0 = padding), same dtype as the ids
    mask_input: str | None = None
    #: "fixed": ids padded to context_length; "trim": a batch is padded only to its longest row, which gives
    #: the same embeddings because a row's embedding does not depend on positions after its last token
    sequence: str = "fixed"
    #: {"scheme": "flores200", "default": "eng_Latn"}: the first token is the text's language (NLLB-CLIP)
    language: dict[str, str] | None = None
    # Format 3:
    #: the text tower's precision when it differs from the pack's (which is then the image tower's); None: the pack's
    precision: str | None = None


def format_for(text: TextSettings) -> int:
    """The oldest pack format that holds ``text``: 3 for a text tower with its own precision, else
    :data:`DEFAULT_FORMAT`, so that older pixfind releases read every pack that needs nothing newer."""
    return FORMAT_VERSION if text.precision is not None else DEFAULT_FORMAT


@dataclass
class PackManifest:
    name: str
    embedding_dim: int
    precision: str  # the image tower's, and the text tower's unless text.precision says otherwise
    image: ImageSettings
    text: TextSettings
    source: dict[str, Any] = field(default_factory=dict)
    files: dict[str, str] = field(default_factory=dict)
    versions: dict[str, str] = field(default_factory=dict)
    verification: dict[str, Any] = field(default_factory=dict)
    description: str = ""
    starter: bool = False
    #: None: the oldest format that holds this manifest (:func:`format_for`)
    format_version: int | None = None
    # What this model's scores mean (duplicate and good-match thresholds), measured when the pack
    # was built or installed; empty for a pack made before calibration (see desktop_app.calibration).
    calibration: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.format_version is None:
            self.format_version = format_for(self.text)

    @property
    def text_precision(self) -> str:
        """The text tower's precision: its own (format 3) or the pack's."""
        return self.text.precision or self.precision

    @property
    def precision_label(self) -> str:
        """The precision as a person reads it: "fp32", or "fp32 (text int8)" when the towers differ."""
        own = self.text_precision
        return self.precision if own == self.precision else f"{self.precision} (text {own})"

    def to_dict(self) -> dict[str, Any]:
        """pack.json's content; a format-1 manifest leaves out the format-2 text fields it does not use,
        and a text tower without a precision of its own has none written."""
        data = asdict(self)
        if data["text"]["precision"] is None:
            del data["text"]["precision"]
        if self.format_version < 2:
            defaults = TextSettings(context_length=1)
            for key in _TEXT_V2_FIELDS:
                if data["text"][key] == getattr(defaults, key):
                    del data["text"][key]
        return data

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=False) + "\n"

    @classmethod
    def from_dict(cls, data: Any, where: str = MANIFEST_NAME) -> PackManifest:
        """A manifest from parsed pack.json, checked field by field against the pack schema."""
        problems: list[str] = []
        _check_schema(data, problems)
        if problems:
            raise PackError(f"{where}: " + "; ".join(problems[:4]) + ("; …" if len(problems) > 4 else ""))
        image = dict(data["image"])
        image["size"] = tuple(int(v) for v in image["size"])
        # mean and std may be left out (the schema checks them against open_clip's defaults)
        image["mean"] = tuple(float(v) for v in image.get("mean", ImageSettings.mean))
        image["std"] = tuple(float(v) for v in image.get("std", ImageSettings.std))
        manifest = cls(
            name=data["name"],
            embedding_dim=data["embedding_dim"],
            precision=data["precision"],
            image=ImageSettings(**image),
            text=TextSettings(**{k: dict(v) if isinstance(v, dict) else v for k, v in data["text"].items()}),
            source=dict(data.get("source", {})),
            files=dict(data["files"]),
            versions=dict(data.get("versions", {})),
            verification=dict(data.get("verification", {})),
            description=data.get("description", ""),
            starter=data.get("starter", False),
            format_version=data["format_version"],
            calibration=dict(data.get("calibration", {})),
        )
        manifest.validate(where)
        return manifest

    def validate(self, where: str = MANIFEST_NAME) -> None:
        problems: list[str] = []
        _check_schema(self.to_dict(), problems)
        for required in (VISUAL_FILE, TEXTUAL_FILE, self.text.tokenizer_file):
            if required not in self.files:
                problems.append(f"no sha256 recorded for {required}")
        if problems:
            raise PackError(f"{where}: " + "; ".join(dict.fromkeys(problems)))


# --------------------------------------------------------------------------- the schema


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return (isinstance(value, (int, float)) and not isinstance(value, bool)) and math.isfinite(value)


def _show(value: Any) -> str:
    if isinstance(value, str):
        text = repr(value)
    else:
        text = json.dumps(value) if isinstance(value, (int, float, bool, type(None))) else type(value).__name__
    return text if len(text) <= 40 else text[:39] + "…"


def check_member_name(name: Any, what: str) -> str | None:
    """Why ``name`` cannot name a file inside a pack (relative, no '..', no drive), or None."""
    if not isinstance(name, str) or not name:
        return f"{what} {_show(name)} is not a file name"
    if len(name) > 255 or _CONTROL_RE.search(name) or "\\" in name:
        return f"{what} {_show(name)} is not a valid file name"
    posix, windows = PurePosixPath(name), PureWindowsPath(name)
    if posix.is_absolute() or windows.is_absolute() or windows.drive or name.startswith("/"):
        return f"{what} {_show(name)} is an absolute path; pack files must be inside the pack"
    if any(part in ("..", "") for part in name.split("/")) or name.startswith("./"):
        return f"{what} {_show(name)} leaves the pack directory; pack files must be inside the pack"
    if name == MANIFEST_NAME:
        return f"{what} {_show(name)} is the manifest itself"
    return None


def check_pack_name(name: Any) -> str | None:
    """Why ``name`` cannot be a pack's name (pack.json's ``name``), or None."""
    if not isinstance(name, str):
        return f"name {_show(name)} is not a string"
    if not name.strip() or len(name) > 128:
        return f"name {_show(name)} must have 1 to 128 characters"
    if _CONTROL_RE.search(name) or "/" in name or "\\" in name or name in (".", ".."):
        return f"name {_show(name)} contains a control character or a path separator"
    return None


def _check_schema(data: Any, problems: list[str]) -> None:
    """Append to ``problems`` every way ``data`` (parsed pack.json) breaks the pack schema."""
    if not isinstance(data, dict):
        problems.append("expected a JSON object")
        return
    version = data.get("format_version", 0)
    if not _is_int(version) or version not in READABLE_FORMATS:
        readable = ", ".join(map(str, READABLE_FORMATS[:-1])) + f" and {READABLE_FORMATS[-1]}"
        problems.append(f"pack format {_show(version)} is not supported (this pixfind reads formats {readable})")
        return
    for key in ("name", "embedding_dim", "precision", "image", "text", "files"):
        if key not in data:
            problems.append(f"required field {key!r} is missing")
    if problems:
        return

    if (why := check_pack_name(data["name"])) is not None:
        problems.append(why)
    dim = data["embedding_dim"]
    if not _is_int(dim) or not 1 <= dim <= MAX_EMBEDDING_DIM:
        problems.append(f"embedding_dim {_show(dim)} is not a whole number in 1..{MAX_EMBEDDING_DIM}")
    if data["precision"] not in PRECISIONS or not isinstance(data["precision"], str):
        problems.append(f"precision {_show(data['precision'])} is not one of {', '.join(PRECISIONS)}")

    image = data["image"]
    if not isinstance(image, dict):
        problems.append("image is not a JSON object")
    else:
        unknown = sorted(set(image) - {"size", "resize_mode", "interpolation", "mean", "std", "fill_color"})
        if unknown:
            problems.append(f"image has unknown field {unknown[0]!r}")
        size = image.get("size")
        if (
            not isinstance(size, (list, tuple))
            or len(size) != 2
            or not all(_is_int(v) and 1 <= v <= MAX_IMAGE_SIZE for v in size)
        ):
            shown = _show(size) if not isinstance(size, (list, tuple)) else str(list(size))[:60]
            problems.append(f"image size {shown} is not [height, width] in 1..{MAX_IMAGE_SIZE}")
        if image.get("resize_mode", "shortest") not in RESIZE_MODES:
            problems.append(f"image resize_mode {_show(image.get('resize_mode'))} is not one of {', '.join(RESIZE_MODES)}")
        if image.get("interpolation", "bicubic") not in INTERPOLATIONS:
            problems.append(f"image interpolation {_show(image.get('interpolation'))} is not bicubic or bilinear")
        for key, low, high, default in (("mean", 0.0, 1.0, ImageSettings.mean), ("std", 1e-3, 10.0, ImageSettings.std)):
            values = image.get(key, default)
            if (
                not isinstance(values, (list, tuple))
                or len(values) != 3
                or not all(_is_number(v) and low <= v <= high for v in values)
            ):
                shown = str(list(values))[:60] if isinstance(values, (list, tuple)) else _show(values)
                problems.append(f"image {key} {shown} is not three numbers in {low:g}..{high:g}")
        fill = image.get("fill_color", 0)
        if not _is_int(fill) or not 0 <= fill <= 255:
            problems.append(f"image fill_color {_show(fill)} is not a whole number in 0..255")

    text = data["text"]
    if not isinstance(text, dict):
        problems.append("text is not a JSON object")
    else:
        added = {name: 2 for name in _TEXT_V2_FIELDS} | {name: 3 for name in _TEXT_V3_FIELDS}
        known = {"context_length", "clean", "pad_id", "tokenizer_file"} | {name for name, since in added.items() if since <= version}
        unknown = sorted(set(text) - known)
        if unknown:
            needs = f" (it needs pack format {added[unknown[0]]})" if unknown[0] in added else ""
            problems.append(f"text has unknown field {unknown[0]!r}{needs}")
        _check_text_v2(text, problems)
        own = text.get("precision")
        if own is not None and (not isinstance(own, str) or own not in PRECISIONS):
            problems.append(f"text precision {_show(own)} is not null or one of {', '.join(PRECISIONS)}")
        length = text.get("context_length")
        if not _is_int(length) or not 1 <= length <= MAX_CONTEXT_LENGTH:
            problems.append(f"text context_length {_show(length)} is not a whole number in 1..{MAX_CONTEXT_LENGTH}")
        if text.get("clean", "lower") not in CLEAN_MODES:
            problems.append(f"text clean {_show(text.get('clean'))} is not one of {', '.join(CLEAN_MODES)}")
        pad = text.get("pad_id", 0)
        if not _is_int(pad) or not 0 <= pad < 1 << 31:
            problems.append(f"text pad_id {_show(pad)} is not a non-negative whole number")
        if (why := check_member_name(text.get("tokenizer_file", TOKENIZER_FILE), "text tokenizer_file")) is not None:
            problems.append(why)

    files = data["files"]
    if not isinstance(files, dict):
        problems.append("files is not a JSON object of file name to sha256")
    elif len(files) > MAX_FILES:
        problems.append(f"files lists {len(files)} files, more than a pack has")
    else:
        for name, digest in files.items():
            if (why := check_member_name(name, "file")) is not None:
                problems.append(why)
            elif not isinstance(digest, str) or not _SHA256_RE.match(digest):
                problems.append(f"file {name!r}: sha256 {_show(digest)} is not 64 lower-case hex digits")

    for key in ("source", "versions", "verification"):
        if not isinstance(data.get(key, {}), dict):
            problems.append(f"{key} is not a JSON object")
    if not isinstance(data.get("description", ""), str):
        problems.append("description is not a string")
    if not isinstance(data.get("starter", False), bool):
        problems.append(f"starter {_show(data.get('starter'))} is not true or false")
    from .calibration import check as check_calibration

    problems.extend(check_calibration(data.get("calibration", {})))


def _check_text_v2(text: dict, problems: list[str]) -> None:
    """The format-2 text fields: the text tower's inputs, sequence trimming and language token."""
    dtype = text.get("ids_dtype", "int64")
    if dtype not in IDS_DTYPES or not isinstance(dtype, str):
        problems.append(f"text ids_dtype {_show(dtype)} is not one of {', '.join(IDS_DTYPES)}")
    mask = text.get("mask_input")
    if mask is not None and (
        not isinstance(mask, str) or not mask or len(mask) > MAX_INPUT_NAME or _CONTROL_RE.search(mask)
    ):
        problems.append(f"text mask_input {_show(mask)} is not null or a graph input name")
    sequence = text.get("sequence", "fixed")
    if sequence not in SEQUENCES or not isinstance(sequence, str):
        problems.append(f"text sequence {_show(sequence)} is not one of {', '.join(SEQUENCES)}")
    language = text.get("language")
    if language is None:
        return
    if not isinstance(language, dict):
        problems.append(f"text language {_show(language)} is not null or an object")
        return
    unknown = sorted(set(language) - {"scheme", "default"})
    if unknown:
        problems.append(f"text language has unknown field {unknown[0]!r}")
    if language.get("scheme") not in LANGUAGE_SCHEMES or not isinstance(language.get("scheme"), str):
        problems.append(f"text language scheme {_show(language.get('scheme'))} is not one of {', '.join(LANGUAGE_SCHEMES)}")
    default = language.get("default")
    if not isinstance(default, str) or not _FLORES_RE.match(default):
        problems.append(f"text language default {_show(default)} is not a FLORES-200 code such as 'eng_Latn'")


def _json_depth_ok(text: str, limit: int = MAX_JSON_DEPTH) -> bool:
    """Whether JSON ``text`` nests at most ``limit`` deep (brackets inside strings are skipped)."""
    depth = 0
    in_string = escaped = False
    for ch in text:
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
        elif ch in "[{":
            depth += 1
            if depth > limit:
                return False
        elif ch in "]}":
            depth -= 1
    return True


def pack_member(pack_dir: Path, name: str) -> Path:
    """The path of file ``name`` of the pack; PackError unless it stays inside the pack, symlinks resolved."""
    pack_dir = Path(pack_dir)
    why = check_member_name(name, "file")
    if why is not None:
        raise PackError(f"{pack_dir / MANIFEST_NAME}: {why}")
    path = pack_dir / name
    try:
        root = pack_dir.resolve(strict=True)
        target = path.resolve(strict=False)
    except (OSError, RuntimeError) as e:  # RuntimeError: a symlink loop (Python < 3.13)
        raise PackError(f"{path}: cannot resolve it ({e})") from None
    if not target.is_relative_to(root) or target == root:
        raise PackError(f"{path}: resolves to {target}, outside the model pack; refusing it")
    return path


def read_manifest(pack_dir: Path) -> PackManifest:
    pack_dir = Path(pack_dir)
    path = pack_dir / MANIFEST_NAME
    if not pack_dir.is_dir():
        raise PackError(f"{pack_dir}: model pack directory not found")
    if not path.is_file():
        raise PackError(f"{path}: missing; {pack_dir} is not a model pack")
    try:
        with open(path, "rb") as f:
            raw = f.read(MAX_MANIFEST_BYTES + 1)
    except OSError as e:
        raise PackError(f"{path}: unreadable ({e.strerror or e})") from None
    if len(raw) > MAX_MANIFEST_BYTES:
        raise PackError(f"{path}: larger than {MAX_MANIFEST_BYTES // 1024} KiB; not a model pack's manifest")
    try:
        text = raw.decode("utf-8")
        if not _json_depth_ok(text):
            raise PackError(f"{path}: JSON nested more than {MAX_JSON_DEPTH} levels deep; not a model pack's manifest")
        data = json.loads(text)
    except PackError:
        raise
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as e:
        raise PackError(f"{path}: unreadable or not valid JSON ({e})") from None
    if not isinstance(data, dict):
        raise PackError(f"{path}: expected a JSON object")
    manifest = PackManifest.from_dict(data, where=str(path))
    for name in manifest.files:
        pack_member(pack_dir, name)
    pack_member(pack_dir, manifest.text.tokenizer_file)
    return manifest


def verify_files(pack_dir: Path, manifest: PackManifest) -> None:
    """Check that every file the manifest lists is present and has its recorded sha256."""
    for name, expected in manifest.files.items():
        path = pack_member(pack_dir, name)
        if not path.is_file():
            raise PackError(f"{path}: missing from the model pack")
        actual = sha256_file(path)
        if actual != expected:
            raise PackError(
                f"{path}: sha256 {actual[:12]}… does not match pack.json ({expected[:12]}…); the file is damaged or was replaced"
            )


def load_pack(pack_dir: Path, verify: bool | None = True) -> PackManifest:
    """Read and check pack.json; then ``verify`` True: hash every file; False: the quick check of
    :func:`check_files_quick` (size and mtime against the install record); None: no file check."""
    manifest = read_manifest(Path(pack_dir))
    if verify:
        verify_files(Path(pack_dir), manifest)
    elif verify is not None:
        check_files_quick(Path(pack_dir), manifest)
    return manifest


# --------------------------------------------------------------------------- ONNX external data
#
# A large ONNX graph keeps its weights in "external data" files beside it, which ONNX Runtime
# opens relative to the graph's folder. In a pack each such file must be listed in pack.json
# (so its sha256 is checked) and stay inside the pack. The `onnx` package is not a runtime
# dependency, and parsing a whole graph with it copies every weight, so the file's protobuf
# wire format is walked instead, skipping the weights: only the messages that can hold a tensor
# are entered (field numbers from onnx.proto; tests/unit/test_pack_format2.py checks the walk
# against onnx.load(load_external_data=False)).

_LEN, _VARINT, _I64, _I32 = 2, 0, 1, 5
_MODEL_GRAPH, _MODEL_FUNCTIONS = 7, 25
_GRAPH_NODES, _GRAPH_INITIALIZERS, _GRAPH_SPARSE = 1, 5, 15
_NODE_ATTRIBUTES = 5
_FUNCTION_NODES = 7
_ATTR_TENSOR, _ATTR_GRAPH, _ATTR_TENSORS, _ATTR_GRAPHS, _ATTR_SPARSE, _ATTR_SPARSES = 5, 6, 10, 11, 22, 23
_SPARSE_VALUES, _SPARSE_INDICES = 1, 2
_TENSOR_NAME, _TENSOR_EXTERNAL, _TENSOR_LOCATION = 8, 13, 14
_MAX_NESTING = 32


class _Malformed(Exception):
    pass


def _varint(buf, pos: int, end: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        if pos >= end or shift > 63:
            raise _Malformed
        byte = buf[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, pos
        shift += 7


def _fields(buf, start: int, end: int):
    """(field number, wire type, start, end) of each field of the message in buf[start:end]."""
    pos = start
    while pos < end:
        key, pos = _varint(buf, pos, end)
        number, wire = key >> 3, key & 7
        if wire == _VARINT:
            _, stop = _varint(buf, pos, end)
        elif wire == _LEN:
            size, pos = _varint(buf, pos, end)
            stop = pos + size
        elif wire == _I64:
            stop = pos + 8
        elif wire == _I32:
            stop = pos + 4
        else:  # groups: not in ONNX
            raise _Malformed
        if stop > end or number == 0:
            raise _Malformed
        yield number, wire, pos, stop
        pos = stop


def _tensor_locations(buf, start: int, end: int, out: list[tuple[str, str]]) -> None:
    name, location, external = "", None, False
    for number, wire, a, b in _fields(buf, start, end):
        if number == _TENSOR_NAME and wire == _LEN:
            name = bytes(buf[a:b]).decode("utf-8", "replace")
        elif number == _TENSOR_LOCATION and wire == _VARINT:
            external = _varint(buf, a, b)[0] == 1
        elif number == _TENSOR_EXTERNAL and wire == _LEN:
            key = value = None
            for n, w, c, d in _fields(buf, a, b):
                if w == _LEN and n in (1, 2):
                    text = bytes(buf[c:d]).decode("utf-8", "surrogateescape")
                    key, value = (text, value) if n == 1 else (key, text)
            if key == "location":
                location = value
    if external or location is not None:
        out.append((name, location if location is not None else ""))


def _walk(buf, start: int, end: int, kind: str, out: list[tuple[str, str]], depth: int = 0) -> None:
    if depth > _MAX_NESTING:
        raise _Malformed
    for number, wire, a, b in _fields(buf, start, end):
        if wire != _LEN:
            continue
        if kind == "model":
            child = {_MODEL_GRAPH: "graph", _MODEL_FUNCTIONS: "function"}.get(number)
        elif kind == "graph":
            child = {_GRAPH_NODES: "node", _GRAPH_INITIALIZERS: "tensor", _GRAPH_SPARSE: "sparse"}.get(number)
        elif kind == "function":
            child = "node" if number == _FUNCTION_NODES else None
        elif kind == "node":
            child = "attribute" if number == _NODE_ATTRIBUTES else None
        elif kind == "attribute":
            child = {
                _ATTR_TENSOR: "tensor",
                _ATTR_TENSORS: "tensor",
                _ATTR_GRAPH: "graph",
                _ATTR_GRAPHS: "graph",
                _ATTR_SPARSE: "sparse",
                _ATTR_SPARSES: "sparse",
            }.get(number)
        else:  # sparse tensor
            child = "tensor" if number in (_SPARSE_VALUES, _SPARSE_INDICES) else None
        if child == "tensor":
            _tensor_locations(buf, a, b, out)
        elif child is not None:
            _walk(buf, a, b, child, out, depth + 1)


def external_data_locations(graph: Path) -> list[tuple[str, str]]:
    """(tensor name, location) of every tensor of an ONNX file whose data lives in another file."""
    import mmap

    graph = Path(graph)
    out: list[tuple[str, str]] = []
    try:
        with open(graph, "rb") as f:
            if os.fstat(f.fileno()).st_size == 0:
                raise PackError(f"{graph}: ONNX Runtime cannot load it (an empty file)")
            with mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as mapped:
                # Walking the fields and skipping the weights takes 12-35 ms for ViT-B-32's towers,
                # less than searching their bytes for "location" (240-340 ms).
                buf = memoryview(mapped)
                try:
                    _walk(buf, 0, len(buf), "model", out)
                finally:
                    buf.release()
    except _Malformed:
        raise PackError(f"{graph}: ONNX Runtime cannot load it (not a valid ONNX model: its protobuf encoding is broken)") from None
    except OSError as e:
        raise PackError(f"{graph}: unreadable ({e.strerror or e})") from None
    return out


def check_external_data(pack_dir: Path, manifest: PackManifest, graph_name: str) -> list[Path]:
    """The external-data files the pack's graph ``graph_name`` reads; PackError unless each one is
    listed in pack.json and resolves inside the pack (ONNX Runtime resolves them from the graph's folder)."""
    pack_dir = Path(pack_dir)
    graph = pack_member(pack_dir, graph_name)
    folder = PurePosixPath(graph_name).parent
    paths: dict[str, Path] = {}
    for tensor, location in external_data_locations(graph):
        where = f"{graph}: tensor {_show(tensor)} keeps its data in {_show(location)}"
        if check_member_name(location, "file") is not None or PureWindowsPath(location).drive:
            raise PackError(f"{where}, outside the model pack; refusing it")
        name = str(folder / location) if str(folder) != "." else location
        if name not in manifest.files:
            raise PackError(f"{where}, which pack.json does not list (no sha256 to check it against); refusing it")
        if name not in paths:
            try:
                paths[name] = pack_member(pack_dir, name)
            except PackError:
                raise PackError(f"{where}, which resolves outside the model pack; refusing it") from None
    return list(paths.values())


# --------------------------------------------------------------------------- install record

#: Written into an installed pack: the size and mtime (ns) of each file when its sha256 last matched.
INSTALL_RECORD = ".pixfind-files.json"


def _stat_key(path: Path) -> list[int]:
    st = path.stat()
    return [st.st_size, st.st_mtime_ns]


def _read_record(pack_dir: Path) -> dict[str, list[int]]:
    try:
        with open(Path(pack_dir) / INSTALL_RECORD, "rb") as f:
            raw = f.read(MAX_MANIFEST_BYTES + 1)
        data = json.loads(raw.decode("utf-8")) if len(raw) <= MAX_MANIFEST_BYTES else None
    except (OSError, ValueError, RecursionError):
        return {}
    if not isinstance(data, dict) or not isinstance(data.get("files"), dict):
        return {}
    return {
        k: v
        for k, v in data["files"].items()
        if isinstance(v, list) and len(v) == 2 and all(_is_int(x) for x in v)
    }


def record_files(pack_dir: Path, manifest: PackManifest) -> None:
    """Record the size and mtime of every file of a verified pack, for :func:`check_files_quick`."""
    pack_dir = Path(pack_dir)
    record = {"files": {name: _stat_key(pack_member(pack_dir, name)) for name in manifest.files}}
    path = pack_dir / INSTALL_RECORD
    tmp = pack_dir / f"{INSTALL_RECORD}.{os.getpid()}.tmp"
    try:
        tmp.write_text(json.dumps(record, indent=1) + "\n", encoding="utf-8")
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def check_files_quick(pack_dir: Path, manifest: PackManifest) -> None:
    """Refuse a pack whose files were changed since they were last verified.

    A file whose size and mtime (ns) still match the install record is trusted as is; any other
    file (changed, or a pack without a record) is hashed in full and must match pack.json; the
    record is then brought up to date (when the folder is writable), so the hash runs once.
    """
    pack_dir = Path(pack_dir)
    record = _read_record(pack_dir)
    hashed = False
    for name, expected in manifest.files.items():
        path = pack_member(pack_dir, name)
        try:
            key = _stat_key(path)
        except FileNotFoundError:
            raise PackError(f"{path}: missing from the model pack") from None
        except OSError as e:
            raise PackError(f"{path}: unreadable ({e.strerror or e})") from None
        if not path.is_file():
            raise PackError(f"{path}: not a regular file")
        if record.get(name) == key:
            continue
        try:
            actual = sha256_file(path)
        except OSError as e:
            raise PackError(f"{path}: unreadable ({e.strerror or e})") from None
        if actual != expected:
            raise PackError(
                f"{path}: changed since it was installed (sha256 {actual[:12]}… is not {expected[:12]}… "
                "as pack.json says); the pack is damaged or was tampered with: reinstall it"
            )
        hashed = True
    if hashed or set(record) != set(manifest.files):
        try:
            record_files(pack_dir, manifest)
        except OSError:
            pass  # a read-only pack: it is hashed again next time, which is correct, only slower


def write_manifest(pack_dir: Path, manifest: PackManifest) -> Path:
    """Record the sha256 of every pack file and write pack.json last."""
    pack_dir = Path(pack_dir)
    names = [VISUAL_FILE, TEXTUAL_FILE, manifest.text.tokenizer_file]
    names += [n for n in manifest.files if n not in names]
    manifest.files = {name: sha256_file(pack_dir / name) for name in names}
    manifest.validate()
    path = pack_dir / MANIFEST_NAME
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(manifest.to_json(), encoding="utf-8")
    tmp.replace(path)
    return path
