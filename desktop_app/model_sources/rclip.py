"""rclip's model folder, converted into a pixfind pack.

rclip 3.3 (https://github.com/yurijmikhalevich/rclip) runs open_clip's ViT-B-32-256
(datacomp_s34b_b86k) as two ONNX graphs with ONNX Runtime. Its data dir (``RCLIP_DATADIR``,
by default ``~/.local/share/rclip`` on Linux) holds, as its ``model_download`` fetches them::

    ViT-B-32-256-datacomp_s34b_b86k/visual.onnx    input "input" float32 [N, 3, 256, 256] -> "output" [N, 512]
    ViT-B-32-256-datacomp_s34b_b86k/textual.onnx   input "input" int64 [N, 77] -> "output" [N, 512]
    tokenizer/bpe_simple_vocab_16e6.txt.gz         open_clip's BPE vocabulary
    (and visual.mlpackage on macOS, its db.sqlite3, licence files: not read)

The graphs come from rclip's ``scripts/convert_model.py`` (``model.visual`` and
``model.encode_text`` exported at opset 18 with a dynamic batch), so they end *unnormalised*:
rclip divides by the norm in NumPy (``rclip/model.py``). A pack's towers must give L2-normalised
embeddings, so each graph gets an ``LpNormalization`` node appended
(:func:`.onnx_graph.append_l2_normalisation`), checked by running the graph before and after on
two rows; a graph that already ends normalised is used as it is.

Everything else is what rclip hard-codes (``rclip/utils/preprocess.py`` and its copy of
SimpleTokenizer), which is open_clip's eval transform and tokenizer for ViT-B-32-256: shortest
side resized to 256 (bicubic, long side truncated), centre crop, OpenAI CLIP mean and std;
context 77, ftfy + HTML + whitespace cleaning and lower case, padding with 0. The image size is
taken from the graph when it declares one (it does: 256). ``tokenizer.json`` is built from the
vocabulary file by :mod:`desktop_app.clip_bpe`, token for token open_clip's.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from ..errors import PackError, PixfindError, one_line
from ..pack import (
    MAX_EMBEDDING_DIM,
    MAX_IMAGE_SIZE,
    TEXTUAL_FILE,
    TOKENIZER_FILE,
    VISUAL_FILE,
    ImageSettings,
    PackManifest,
    TextSettings,
)
from . import onnx_graph, write_converted

MODEL_SUBDIR = "ViT-B-32-256-datacomp_s34b_b86k"
VISUAL_GRAPH = f"{MODEL_SUBDIR}/visual.onnx"
TEXTUAL_GRAPH = f"{MODEL_SUBDIR}/textual.onnx"
VOCABULARY = "tokenizer/bpe_simple_vocab_16e6.txt.gz"
REQUIRED = (VISUAL_GRAPH, TEXTUAL_GRAPH, VOCABULARY)
ARCHITECTURE, PRETRAINED = "ViT-B-32-256", "datacomp_s34b_b86k"
DEFAULT_NAME = "rclip-vit-b-32-256"
IMAGE_SIZE = 256  # rclip/utils/preprocess.py
CONTEXT_LENGTH = 77  # rclip/utils/tokenizer.py
MEAN = (0.48145466, 0.4578275, 0.40821073)  # rclip/utils/preprocess.py (open_clip's OPENAI_DATASET_MEAN)
STD = (0.26862954, 0.26130258, 0.27577711)
#: How close to 1 the norm of an embedding must be for a graph to count as normalising already:
#: an unnormalised CLIP embedding has a norm of about 10 (random weights: anything), while float32
#: rounding keeps a normalised one within 1e-6.
NORM_TOLERANCE = 1e-3
CHECK_TEXTS = ["a photo of a cat", "two dogs running on a beach at sunset"]

Log = Callable[[str], None]


def looks_like(files: set[str]) -> bool:
    """Whether a set of paths (relative to a folder) is rclip's data dir; one of its files is enough,
    so that a folder missing the others is refused by name."""
    return any(name in files for name in REQUIRED)


def missing_files(files: set[str]) -> list[str]:
    return [name for name in REQUIRED if name not in files]


def data_dir(folder: Path) -> Path | None:
    """rclip's data dir for ``folder``: the folder itself, or the one above it when ``folder`` is
    its model subfolder; None when it is neither."""
    folder = Path(folder)
    if any((folder / name).is_file() for name in REQUIRED):
        return folder
    if folder.name == MODEL_SUBDIR and any((folder.parent / name).is_file() for name in REQUIRED):
        return folder.parent
    return None


def _single_input(model, where: Path) -> onnx_graph.GraphInput:
    inputs = onnx_graph.graph_inputs(model)
    if len(inputs) != 1:
        raise PackError(f"{where}: takes {len(inputs)} inputs; rclip's towers take one (\"input\")")
    if onnx_graph.external_files(model):
        raise PackError(f"{where}: keeps its weights in external-data files; rclip's graphs hold them inline")
    return inputs[0]


def image_settings(folder: Path, graph: onnx_graph.GraphInput) -> ImageSettings:
    where = folder / VISUAL_GRAPH
    if graph.dtype != "float32" or len(graph.shape) != 4 or graph.shape[1] != 3:
        raise PackError(f"{where}: input {graph.name!r} is {graph.dtype} {list(graph.shape)}, not float32 pixels [N, 3, H, W]")
    height, width = (v if isinstance(v, int) and 0 < v <= MAX_IMAGE_SIZE else IMAGE_SIZE for v in graph.shape[2:])
    return ImageSettings(size=(height, width), resize_mode="shortest", interpolation="bicubic", mean=MEAN, std=STD, fill_color=0)


def text_settings(folder: Path, graph: onnx_graph.GraphInput) -> TextSettings:
    where = folder / TEXTUAL_GRAPH
    if graph.dtype not in ("int64", "int32") or len(graph.shape) != 2:
        raise PackError(f"{where}: input {graph.name!r} is {graph.dtype} {list(graph.shape)}, not int64 token ids [N, L]")
    declared = graph.shape[1]
    if isinstance(declared, int) and declared != CONTEXT_LENGTH:
        raise PackError(f"{where}: takes {declared} tokens; rclip's tokenizer gives {CONTEXT_LENGTH}")
    return TextSettings(
        context_length=CONTEXT_LENGTH, clean="lower", pad_id=0, tokenizer_file=TOKENIZER_FILE, ids_dtype=graph.dtype, sequence="fixed"
    )


def _session(path: Path):
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 3
    try:
        return ort.InferenceSession(str(path), sess_options=options, providers=["CPUExecutionProvider"])
    except Exception as e:  # noqa: BLE001 - onnxruntime raises its own types for broken graphs
        raise PackError(f"{path}: ONNX Runtime cannot load it ({one_line(e, 160)})") from None


def _run(path: Path, feed: dict):
    import numpy as np

    try:
        (out,) = _session(path).run(None, feed)
    except PackError:
        raise
    except Exception as e:  # noqa: BLE001
        raise PackError(f"{path}: ONNX Runtime cannot run it ({one_line(e, 160)})") from None
    return np.asarray(out, dtype=np.float32)


def _place_normalised(source: Path, model, feed: dict, dest: Path, log: Log) -> tuple[str, int]:
    """Write the tower to ``dest`` ending L2-normalised; returns (what was done, embedding size)."""
    import numpy as np

    from .detect import link_or_copy

    raw = _run(source, feed)
    if raw.ndim != 2 or not 0 < raw.shape[1] <= MAX_EMBEDDING_DIM:
        raise PackError(f"{source}: gives an output of shape {list(raw.shape)}, not embeddings [N, D]")
    norms = np.linalg.norm(raw, axis=1)
    if not np.isfinite(raw).all() or (norms == 0).any():
        raise PackError(f"{source}: gives zero or non-finite embeddings on a test input; the graph is broken")
    if np.all(np.abs(norms - 1) < NORM_TOLERANCE):
        link_or_copy(source, dest)
        return "already normalised", raw.shape[1]
    try:
        onnx_graph.append_l2_normalisation(model)
    except PackError as e:
        raise PackError(f"{source}: cannot normalise its output ({e})") from None
    onnx_graph.save_model(model, dest)
    got = _run(dest, feed)
    expected = raw / norms[:, None]
    # float32 division: the appended node and NumPy agree to a few ulps
    if got.shape != raw.shape or not np.allclose(got, expected, atol=1e-5, rtol=1e-4):
        raise PackError(f"{source}: its output with an L2 normalisation node appended differs from the normalised output")
    log(f"{source.name}: output normalised by an appended LpNormalization node (checked on {len(raw)} rows)")
    return "LpNormalization appended", raw.shape[1]


def _tokenizer(folder: Path, out: Path) -> None:
    from .. import clip_bpe

    try:
        tokenizer = clip_bpe.from_vocabulary_file(folder / VOCABULARY, CONTEXT_LENGTH)
    except ImportError as e:  # the regex package computes the split pattern's character classes
        raise PackError(f"{folder / VOCABULARY}: building its tokenizer needs the {e.name} package (pip install {e.name})") from None
    try:
        tokenizer.save(str(out / TOKENIZER_FILE), pretty=False)
    except Exception as e:  # noqa: BLE001 - tokenizers raises bare Exceptions
        raise PixfindError(f"{out / TOKENIZER_FILE}: cannot write it ({one_line(e)})") from None


def convert(folder: Path, out: Path, *, name: str, source: dict | None = None, log: Log | None = None) -> PackManifest:
    """Write a pixfind pack into the new folder ``out`` from rclip's data dir ``folder`` (a local folder's
    files are confined to it by the caller, as a Hub snapshot's are links into its cache)."""
    import numpy as np

    from ..text_tokenizer import TextTokenizer

    log = log or (lambda _msg: None)
    folder, out = Path(folder), Path(out)
    started = time.perf_counter()
    missing = [n for n in REQUIRED if not (folder / n).is_file()]
    if missing:
        raise PackError(f"{folder}: {missing[0]} is missing; an rclip model folder needs {', '.join(REQUIRED)}")
    visual_path, textual_path = folder / VISUAL_GRAPH, folder / TEXTUAL_GRAPH
    visual, textual = onnx_graph.load_model(visual_path), onnx_graph.load_model(textual_path)
    pixels_in, ids_in = _single_input(visual, folder / VISUAL_GRAPH), _single_input(textual, folder / TEXTUAL_GRAPH)
    image, text = image_settings(folder, pixels_in), text_settings(folder, ids_in)

    out.mkdir(parents=True)
    _tokenizer(folder, out)
    ids = TextTokenizer(out / TOKENIZER_FILE, text).encode(CHECK_TEXTS)
    rows = len(CHECK_TEXTS)
    if isinstance(ids_in.shape[0], int):  # a fixed batch: feed exactly that many rows
        rows = ids_in.shape[0]
        ids = np.resize(ids, (rows, ids.shape[1]))
    pixels_rows = pixels_in.shape[0] if isinstance(pixels_in.shape[0], int) else 2
    pixels = np.random.default_rng(0).standard_normal((pixels_rows, 3, *image.size)).astype(np.float32)
    visual_done, dim = _place_normalised(visual_path, visual, {pixels_in.name: pixels}, out / VISUAL_FILE, log)
    ids = ids.astype(np.int32 if text.ids_dtype == "int32" else np.int64)
    textual_done, text_dim = _place_normalised(textual_path, textual, {ids_in.name: ids}, out / TEXTUAL_FILE, log)
    if dim != text_dim:
        raise PackError(f"{folder}: the image tower gives {dim}-d embeddings and the text tower {text_dim}-d; they are not one model")

    source = dict(source or {})
    source.update(
        {
            "format": "rclip",
            "architecture": ARCHITECTURE,
            "pretrained": PRETRAINED,  # as rclip's folder names it
            "graph_inputs": {"visual": pixels_in.name, "textual": ids_in.name},
            "normalisation": {"visual": visual_done, "textual": textual_done},
            "converted_in_s": round(time.perf_counter() - started, 1),
        }
    )
    manifest = PackManifest(
        name=name,
        embedding_dim=dim,
        precision="fp32",
        image=image,
        text=text,
        source=source,
        description="converted from rclip's model folder",
    )
    return write_converted(out, manifest)
