"""Immich's CLIP repositories, converted into pixfind packs.

The layout (``machine-learning/export`` in the Immich repository, read by
``immich_ml/models/clip``)::

    config.json                     open_clip's model config (embed_dim, vision_cfg, text_cfg)
    visual/model.onnx               input "image" float32 [1, 3, S, S] -> "embedding" [1, D]
    visual/preprocess_cfg.json      open_clip's preprocess config (size, mean, std, interpolation, resize_mode)
    textual/model.onnx              input "text" int32 [1, L] (M-CLIP: "input_ids" + "attention_mask")
    textual/tokenizer.json          a Hugging Face tokenizer saved by transformers,
    textual/tokenizer_config.json   with its pad token here
    textual/special_tokens_map.json (older transformers only)

Large towers keep their weights in ONNX external-data files beside ``model.onnx``.

The graphs are used as they are: their input names and int32 ids are described in pack.json
(format 2), never renamed. What changes:
- a batch axis exported fixed at 1 is declared symbolic when the graph then really computes a
  batch of two the same as two batches of one (checked here with ONNX Runtime); otherwise the
  graph keeps its fixed batch and the encoder feeds it one row at a time;
- external-data tensors are gathered into one ``visual.onnx.data``/``textual.onnx.data`` file
  beside the pack's graph (their locations must stay inside the repository folder), so the two
  towers' files cannot collide and pack.json lists two files, not hundreds.

Text settings follow what Immich and open_clip do: the context length from ``text_cfg``
(77 when absent, and it must match the graph), the pad id of ``tokenizer_config.json``'s pad
token, open_clip's cleaning (lower case for the OpenAI CLIP BPE, ``tokenizer_kwargs.clean``,
else whitespace), and for NLLB tokenizers a FLORES-200 language token (default eng_Latn).
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Callable
from pathlib import Path

from ..errors import PackError, one_line
from ..pack import (
    INTERPOLATIONS,
    MAX_CONTEXT_LENGTH,
    MAX_EMBEDDING_DIM,
    MAX_IMAGE_SIZE,
    RESIZE_MODES,
    TEXTUAL_FILE,
    TOKENIZER_FILE,
    VISUAL_FILE,
    ImageSettings,
    PackManifest,
    TextSettings,
)
from . import onnx_graph, write_converted

CONFIG = "config.json"
VISUAL_GRAPH = "visual/model.onnx"
VISUAL_PREPROCESS = "visual/preprocess_cfg.json"
TEXTUAL_GRAPH = "textual/model.onnx"
TEXTUAL_TOKENIZER = "textual/tokenizer.json"
TEXTUAL_TOKENIZER_CONFIG = "textual/tokenizer_config.json"
TEXTUAL_SPECIAL_TOKENS = "textual/special_tokens_map.json"
#: What a repository must hold (external-data files come on top, named by the graphs).
REQUIRED = (CONFIG, VISUAL_GRAPH, VISUAL_PREPROCESS, TEXTUAL_GRAPH, TEXTUAL_TOKENIZER, TEXTUAL_TOKENIZER_CONFIG)
OPTIONAL = (TEXTUAL_SPECIAL_TOKENS,)
MAX_CONFIG_BYTES = 1 << 20
MAX_TOKENIZER_BYTES = 64 << 20
DEFAULT_CONTEXT_LENGTH = 77  # open_clip's and Immich's default when text_cfg has none
NLLB_DEFAULT_LANGUAGE = "eng_Latn"

Log = Callable[[str], None]


def looks_like(files: set[str]) -> bool:
    """Whether a set of repository paths has Immich's CLIP layout."""
    return {CONFIG, VISUAL_GRAPH, TEXTUAL_GRAPH} <= files


def missing_files(files: set[str]) -> list[str]:
    return [name for name in REQUIRED if name not in files]


def _read_json(folder: Path, name: str, limit: int = MAX_CONFIG_BYTES) -> dict:
    path = folder / name
    try:
        with open(path, "rb") as f:
            raw = f.read(limit + 1)
    except FileNotFoundError:
        raise PackError(f"{path}: missing; an Immich CLIP model needs it") from None
    except OSError as e:
        raise PackError(f"{path}: unreadable ({e.strerror or one_line(e)})") from None
    if len(raw) > limit:
        raise PackError(f"{path}: larger than {limit >> 20} MiB; not a model's configuration")
    try:
        data = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as e:
        raise PackError(f"{path}: not valid JSON ({one_line(e, 80)})") from None
    if not isinstance(data, dict):
        raise PackError(f"{path}: expected a JSON object")
    return data


def _int(value, low: int, high: int) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and low <= value <= high else None


def image_settings(folder: Path) -> ImageSettings:
    """visual/preprocess_cfg.json (open_clip's ``get_model_preprocess_cfg``) as the pack's image settings."""
    cfg = _read_json(folder, VISUAL_PREPROCESS)
    where = folder / VISUAL_PREPROCESS
    size = cfg.get("size")
    if isinstance(size, (list, tuple)) and len(size) == 2:
        height, width = (_int(v, 1, MAX_IMAGE_SIZE) for v in size)
    else:
        height = width = _int(size, 1, MAX_IMAGE_SIZE)
    if height is None or width is None:
        raise PackError(f"{where}: size {str(size)[:40]} is not an image size")
    interpolation = str(cfg.get("interpolation", "bicubic")).lower()
    if interpolation not in INTERPOLATIONS:
        raise PackError(f"{where}: interpolation {interpolation[:20]!r} is not one pixfind supports ({', '.join(INTERPOLATIONS)})")
    resize_mode = cfg.get("resize_mode", "shortest")  # open_clip's default for configs older than the field
    if resize_mode not in RESIZE_MODES:
        raise PackError(f"{where}: resize_mode {str(resize_mode)[:20]!r} is not one of {', '.join(RESIZE_MODES)}")
    if cfg.get("mode", "RGB") != "RGB":
        raise PackError(f"{where}: colour mode {str(cfg.get('mode'))[:10]!r} is not RGB")
    values = {}
    for key, default in (("mean", ImageSettings.mean), ("std", ImageSettings.std)):
        v = cfg.get(key, default)
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            v = [v] * 3
        if not isinstance(v, (list, tuple)) or len(v) != 3 or not all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in v):
            raise PackError(f"{where}: {key} {str(v)[:40]} is not three numbers")
        values[key] = tuple(float(x) for x in v)
    fill = _int(cfg.get("fill_color", 0), 0, 255)
    if fill is None:
        raise PackError(f"{where}: fill_color {str(cfg.get('fill_color'))[:20]} is not in 0..255")
    return ImageSettings(
        size=(height, width),
        resize_mode=resize_mode,
        interpolation=interpolation,
        mean=values["mean"],
        std=values["std"],
        fill_color=fill,
    )


def _token_text(value) -> str | None:
    """A special token as tokenizer_config.json writes it: a string, or an AddedToken object."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and isinstance(value.get("content"), str):
        return value["content"]
    return None


def _is_clip_bpe(tokenizer_json: dict) -> bool:
    model = tokenizer_json.get("model") if isinstance(tokenizer_json.get("model"), dict) else {}
    vocab = model.get("vocab") if isinstance(model.get("vocab"), dict) else {}
    return model.get("type") == "BPE" and "<|startoftext|>" in vocab and "<|endoftext|>" in vocab


def text_settings(folder: Path, model_cfg: dict, graph: onnx_graph.GraphInput, mask: str | None) -> TextSettings:
    """The pack's text settings from config.json, the tokenizer files and the text graph."""
    text_cfg = model_cfg.get("text_cfg") if isinstance(model_cfg.get("text_cfg"), dict) else {}
    context_length = text_cfg.get("context_length", DEFAULT_CONTEXT_LENGTH)
    if _int(context_length, 1, MAX_CONTEXT_LENGTH) is None:
        raise PackError(f"{folder / CONFIG}: text_cfg context_length {str(context_length)[:20]} is not in 1..{MAX_CONTEXT_LENGTH}")
    declared = graph.shape[1] if len(graph.shape) == 2 else None
    if isinstance(declared, int) and declared != context_length:
        raise PackError(
            f"{folder / TEXTUAL_GRAPH}: takes {declared} tokens but {CONFIG} says context_length {context_length}; "
            "the repository mixes files of different models"
        )
    tokenizer_cfg = _read_json(folder, TEXTUAL_TOKENIZER_CONFIG)
    pad_token = _token_text(tokenizer_cfg.get("pad_token"))
    if pad_token is None:
        raise PackError(f"{folder / TEXTUAL_TOKENIZER_CONFIG}: names no pad_token")
    tokenizer_json = _read_json(folder, TEXTUAL_TOKENIZER, MAX_TOKENIZER_BYTES)
    from tokenizers import Tokenizer

    try:
        tokenizer = Tokenizer.from_str(json.dumps(tokenizer_json))
    except Exception as e:  # noqa: BLE001 - tokenizers raises bare Exceptions for malformed files
        raise PackError(f"{folder / TEXTUAL_TOKENIZER}: not a valid tokenizer.json ({one_line(e, 120)})") from None
    pad_id = tokenizer.token_to_id(pad_token)  # what Immich's OpenClipTextualEncoder pads with
    if pad_id is None:
        raise PackError(f"{folder / TEXTUAL_TOKENIZER_CONFIG}: pad_token {pad_token[:20]!r} is not in the tokenizer")

    kwargs = text_cfg.get("tokenizer_kwargs") if isinstance(text_cfg.get("tokenizer_kwargs"), dict) else {}
    if _is_clip_bpe(tokenizer_json):
        clean = "lower"  # open_clip's SimpleTokenizer lower-cases (the HF CLIP tokenizer's normalizer too)
    else:
        clean = kwargs.get("clean", "whitespace")  # open_clip's HFTokenizer default
    if clean not in ("lower", "whitespace", "canonicalize"):
        raise PackError(f"{folder / CONFIG}: text_cfg tokenizer_kwargs clean {str(clean)[:20]!r} is not supported")

    language = None
    tokenizer_class = str(tokenizer_cfg.get("tokenizer_class", ""))
    hf_name = str(text_cfg.get("hf_tokenizer_name", ""))
    if tokenizer_class.lower().startswith("nllb") or "nllb" in hf_name.lower():
        if tokenizer.token_to_id(NLLB_DEFAULT_LANGUAGE) is None:
            raise PackError(f"{folder / TEXTUAL_TOKENIZER}: an NLLB tokenizer without the {NLLB_DEFAULT_LANGUAGE} token")
        language = {"scheme": "flores200", "default": NLLB_DEFAULT_LANGUAGE}
    return TextSettings(
        context_length=context_length,
        clean=clean,
        pad_id=int(pad_id),
        tokenizer_file=TOKENIZER_FILE,
        ids_dtype=graph.dtype,
        mask_input=mask,
        sequence="fixed",
        language=language,
    )


def _text_inputs(folder: Path, model) -> tuple[onnx_graph.GraphInput, str | None]:
    """The ids input and the attention-mask input (M-CLIP), checked."""
    inputs = onnx_graph.graph_inputs(model)
    where = folder / TEXTUAL_GRAPH
    if len(inputs) == 1:
        ids, mask = inputs[0], None
    elif len(inputs) == 2:
        masks = [i for i in inputs if "mask" in i.name.lower()]
        if len(masks) != 1:
            raise PackError(f"{where}: two inputs ({inputs[0].name!r}, {inputs[1].name!r}) and neither is an attention mask")
        mask = masks[0].name
        ids = next(i for i in inputs if i.name != mask)
        if masks[0].dtype != ids.dtype:
            raise PackError(f"{where}: its attention mask is {masks[0].dtype} but its ids are {ids.dtype}")
    else:
        raise PackError(f"{where}: takes {len(inputs)} inputs; a text encoder takes the ids (and an attention mask)")
    if ids.dtype not in ("int32", "int64") or len(ids.shape) != 2:
        raise PackError(f"{where}: input {ids.name!r} is {ids.dtype} {list(ids.shape)}, not int32/int64 token ids [N, L]")
    return ids, mask


def _check_visual(folder: Path, model, image: ImageSettings) -> None:
    inputs = onnx_graph.graph_inputs(model)
    where = folder / VISUAL_GRAPH
    if len(inputs) != 1:
        raise PackError(f"{where}: takes {len(inputs)} inputs; an image encoder takes the pixels")
    pixels = inputs[0]
    if pixels.dtype != "float32" or len(pixels.shape) != 4 or pixels.shape[1] != 3:
        raise PackError(
            f"{where}: input {pixels.name!r} is {pixels.dtype} {list(pixels.shape)}, not float32 pixels [N, 3, H, W] "
            "(graphs that take uint8 images are not supported)"
        )
    h, w = pixels.shape[2], pixels.shape[3]
    if isinstance(h, int) and isinstance(w, int) and (h, w) != tuple(image.size):
        raise PackError(f"{where}: takes {h}x{w} images but {VISUAL_PREPROCESS} says {image.size[0]}x{image.size[1]}")


def _embedding_dim(folder: Path, model_cfg: dict, *models) -> int:
    dim = _int(model_cfg.get("embed_dim"), 1, MAX_EMBEDDING_DIM)
    if dim is None:
        raise PackError(f"{folder / CONFIG}: embed_dim {str(model_cfg.get('embed_dim'))[:20]} is not an embedding size")
    for name, model in zip((VISUAL_GRAPH, TEXTUAL_GRAPH), models):
        outputs = onnx_graph.graph_outputs(model)
        declared = outputs[0].shape[-1] if outputs and outputs[0].shape else None
        if isinstance(declared, int) and declared != dim:
            raise PackError(f"{folder / name}: gives {declared}-d embeddings but {CONFIG} says embed_dim {dim}")
    return dim


def _link_or_copy(src: Path, dst: Path) -> None:
    """Hard-link a (read-only, content-addressed) cached file into the pack, or copy it."""
    src = Path(src).resolve()
    try:
        os.link(src, dst)
    except OSError:
        shutil.copyfile(src, dst)


def _place_graph(folder: Path, rel: str, model, changed: bool, out: Path, name: str, log: Log) -> list[str]:
    """Write (or link) one tower into the pack as ``name``; returns the extra files it needs."""
    source = folder / rel
    externals = onnx_graph.external_files(model)
    if externals:
        data_name = f"{name}.data"
        count = onnx_graph.gather_external_data(model, source.parent, source, out / data_name)
        log(f"{rel}: gathered {count} external-data tensors from {len(externals)} files into {data_name}")
        onnx_graph.save_model(model, out / name)
        return [data_name]
    if changed:
        onnx_graph.save_model(model, out / name)
    else:
        _link_or_copy(source, out / name)
    return []


def _try_dynamic_batch(folder: Path, rel: str, model, feed_of: Callable[[int], dict], scratch: Path, log: Log) -> tuple[str, bool]:
    """Declare a fixed batch axis symbolic if the graph then computes batches right; returns what was
    done and whether ``model`` changed.

    Torch's exporter often folds the batch size into Reshape shapes; such a graph still loads with
    a symbolic batch but fails, or computes garbage, on two rows. So it is run on two rows and on
    each row alone, and kept symbolic only when both agree (to float rounding).
    """
    if not onnx_graph.fixed_batch(model):
        return "dynamic", False
    import numpy as np
    import onnxruntime as ort

    candidate = onnx_graph.load_model(folder / rel) if not onnx_graph.external_files(model) else None
    if candidate is None:  # external data: the graph cannot be run from a scratch copy without its data
        return "fixed (external data; encoded one row at a time)", False
    onnx_graph.make_batch_symbolic(candidate)
    trial = scratch / f"batch-trial-{Path(rel).parent.name}.onnx"
    onnx_graph.save_model(candidate, trial)
    options = ort.SessionOptions()
    options.log_severity_level = 4
    try:
        session = ort.InferenceSession(str(trial), sess_options=options, providers=["CPUExecutionProvider"])
        feed = feed_of(2)
        together = session.run(None, feed)[0]
        alone = np.concatenate([session.run(None, {k: v[i : i + 1] for k, v in feed.items()})[0] for i in range(2)])
        agrees = together.shape == alone.shape and bool(np.allclose(together, alone, atol=1e-5, rtol=1e-4))
    except Exception as e:  # noqa: BLE001 - the graph cannot take another batch size: keep it fixed
        log(f"{rel}: its batch axis cannot be made dynamic ({one_line(e, 100)}); encoded one row at a time")
        return "fixed (batch size folded into the graph; encoded one row at a time)", False
    finally:
        trial.unlink(missing_ok=True)
    if not agrees:
        return "fixed (a batch of two differs from two batches of one; encoded one row at a time)", False
    onnx_graph.make_batch_symbolic(model)
    return "made dynamic (checked on a batch of two)", True


def convert(folder: Path, out: Path, *, name: str, source: dict | None = None, log: Log | None = None) -> PackManifest:
    """Write a pixfind pack into the new folder ``out`` from the Immich repository in ``folder``."""
    log = log or (lambda _msg: None)
    folder, out = Path(folder), Path(out)
    started = time.perf_counter()
    missing = [n for n in REQUIRED if not (folder / n).is_file()]
    if missing:
        raise PackError(f"{folder}: {missing[0]} is missing; an Immich CLIP model needs {', '.join(REQUIRED)}")
    model_cfg = _read_json(folder, CONFIG)
    image = image_settings(folder)
    visual = onnx_graph.load_model(folder / VISUAL_GRAPH)
    textual = onnx_graph.load_model(folder / TEXTUAL_GRAPH)
    _check_visual(folder, visual, image)
    ids, mask = _text_inputs(folder, textual)
    text = text_settings(folder, model_cfg, ids, mask)
    dim = _embedding_dim(folder, model_cfg, visual, textual)

    import numpy as np

    height, width = image.size
    dtype = np.int32 if text.ids_dtype == "int32" else np.int64
    out.mkdir(parents=True)
    rng = np.random.default_rng(0)

    def pixels(n):
        return {onnx_graph.graph_inputs(visual)[0].name: rng.standard_normal((n, 3, height, width)).astype(np.float32)}

    def tokens(n):
        ids_rows = rng.integers(3, 100, size=(n, text.context_length)).astype(dtype)
        feed = {ids.name: ids_rows}
        if mask:
            feed[mask] = np.ones_like(ids_rows)
        return feed

    visual_batch, visual_changed = _try_dynamic_batch(folder, VISUAL_GRAPH, visual, pixels, out, log)
    textual_batch, textual_changed = _try_dynamic_batch(folder, TEXTUAL_GRAPH, textual, tokens, out, log)
    extra = _place_graph(folder, VISUAL_GRAPH, visual, visual_changed, out, VISUAL_FILE, log)
    extra += _place_graph(folder, TEXTUAL_GRAPH, textual, textual_changed, out, TEXTUAL_FILE, log)
    _link_or_copy(folder / TEXTUAL_TOKENIZER, out / TOKENIZER_FILE)

    source = dict(source or {})
    source.update(
        {
            "format": "immich",
            "model_config": model_cfg,
            "graph_inputs": {"visual": onnx_graph.graph_inputs(visual)[0].name, "textual": ids.name},
            "batch": {"visual": visual_batch, "textual": textual_batch},
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
        files={n: "" for n in extra},
        description=f"converted from Immich's {source.get('repo', folder.name)}",
    )
    return write_converted(out, manifest)
