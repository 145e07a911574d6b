"""Exporting open_clip towers to ONNX and converting them to fp16 or int8."""

from __future__ import annotations

import logging
import warnings
from contextlib import contextmanager
from pathlib import Path

import onnx
import torch
import torch.nn.functional as F

from desktop_app.encoder import IMAGE, TEXT
from desktop_app.errors import PixfindError
from desktop_app.pack import GRAPH_CONTEXT_LENGTH_KEY

OPSET = 17
VISUAL_INPUT = "pixel_values"
TEXTUAL_INPUT = "input_ids"
OUTPUT = "embedding"
_PROTOBUF_LIMIT = 2 * 1024**3


class _VisualTower(torch.nn.Module):
    def __init__(self, model: torch.nn.Module):
        super().__init__()
        self.model = model

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        return self.model.encode_image(pixels, normalize=True)


class _TextualTower(torch.nn.Module):
    def __init__(self, model: torch.nn.Module):
        super().__init__()
        self.model = model

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return self.model.encode_text(ids, normalize=True)


# Text pooling that reads a position at or before the end-of-text token; with attention that cannot
# see later positions (causal) or padding (a pad mask), the positions after the last real token then
# change nothing, and a batch can be cut to its longest text ("sequence": "trim" in pack.json).
_TRIMMABLE_POOLS = ("argmax", "eos", "first")


class _TrimmedClipText(torch.nn.Module):
    """open_clip ``CLIP.encode_text`` for ids of any length up to the context: the positional
    embedding and the causal mask are cut to the input's length (open_clip uses them whole)."""

    def __init__(self, model: torch.nn.Module):
        super().__init__()
        self.model = model

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        from open_clip.transformer import text_global_pool

        m = self.model
        length = ids.shape[1]
        cast = m.transformer.get_cast_dtype()
        x = m.token_embedding(ids).to(cast) + m.positional_embedding[:length].to(cast)
        x = m.transformer(x, attn_mask=m.attn_mask[:length, :length])
        x = m.ln_final(x)
        x = text_global_pool(x, ids, m.text_pool_type, eos_token_id=getattr(m, "text_eos_id", None))
        return F.normalize(_project(x, m.text_projection), dim=-1)


class _TrimmedTextTransformer(torch.nn.Module):
    """open_clip ``TextTransformer`` (CustomTextCLIP's text tower) with its causal mask cut to the input's length."""

    def __init__(self, text: torch.nn.Module):
        super().__init__()
        self.text = text

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        from open_clip.transformer import text_global_pool

        t = self.text
        length = ids.shape[1]
        cast = t.transformer.get_cast_dtype()
        x = t.token_embedding(ids).to(cast)
        mask = t.attn_mask[:length, :length] if t.attn_mask is not None else None
        if t.use_pad_mask:
            pad = t._build_additive_mask(ids, length, x.dtype)
            mask = pad if mask is None else mask.unsqueeze(0) + pad
        x = x + t.positional_embedding[:length].to(cast)
        x = t.transformer(x, attn_mask=mask)
        x = t.ln_final(x)
        x = text_global_pool(x, ids, pool_type=t.pool_type, eos_token_id=getattr(t, "eos_id", None))
        return F.normalize(_project(x, t.text_projection), dim=-1)


class _ShapeFreeAttention(torch.nn.Module):
    """Batch-first self-attention computed with the weights of an ``nn.MultiheadAttention``, written
    with reshapes that infer the token axis: traced through torch's own attention, the exported
    graph keeps the example's token count as a constant and fails on any other length."""

    def __init__(self, mha: torch.nn.MultiheadAttention):
        super().__init__()
        self.mha = mha

    def forward(self, query, key=None, value=None, need_weights=False, attn_mask=None, **_unused):
        m = self.mha
        heads, width = m.num_heads, m.embed_dim
        head = width // heads
        batch = query.shape[0]
        q, k, v = F.linear(query, m.in_proj_weight, m.in_proj_bias).reshape(batch, -1, 3, heads, head).permute(2, 0, 3, 1, 4)
        scores = (q * head**-0.5) @ k.transpose(-2, -1)
        if attn_mask is not None:
            if attn_mask.dim() == 3:  # [batch * heads, L, L], as nn.MultiheadAttention takes it
                attn_mask = attn_mask.reshape(batch, heads, attn_mask.shape[-2], attn_mask.shape[-1])
            scores = scores + attn_mask
        out = (scores.softmax(dim=-1) @ v).transpose(1, 2).reshape(batch, -1, width)
        return F.linear(out, m.out_proj.weight, m.out_proj.bias), None


@contextmanager
def _shape_free_attention(transformer: torch.nn.Module):
    """Swap each block's attention of an open_clip Transformer for :class:`_ShapeFreeAttention` while exporting."""
    blocks = [b for b in transformer.resblocks if isinstance(getattr(b, "attn", None), torch.nn.MultiheadAttention)]
    for block in blocks:
        block.attn = _ShapeFreeAttention(block.attn)
    try:
        yield
    finally:
        for block in blocks:
            block.attn = block.attn.mha


def _attention_is_plain(transformer: torch.nn.Module) -> bool:
    """Whether every block's attention is batch-first self-attention :class:`_ShapeFreeAttention` computes."""
    for block in getattr(transformer, "resblocks", ()):
        attn = getattr(block, "attn", None)
        if not isinstance(attn, torch.nn.MultiheadAttention):
            return False
        if not attn.batch_first or not attn._qkv_same_embed_dim or attn.bias_k is not None or attn.add_zero_attn:
            return False
    return bool(getattr(transformer, "resblocks", ()))


def _project(x: torch.Tensor, projection) -> torch.Tensor:
    if projection is None:
        return x
    return projection(x) if isinstance(projection, torch.nn.Linear) else x @ projection


def trimmable_text_tower(model: torch.nn.Module) -> torch.nn.Module | None:
    """A text tower whose output for a row ignores every position after its end-of-text token, for
    ids cut to any length; None when the architecture does not allow it.

    CLIP (causal attention, pooled at the end-of-text token) does. SigLIP in open_clip does not:
    its attention is bidirectional without a pad mask and it pools the last position, which is
    padding, so every pad token changes the embedding and no shorter input gives the same result.
    Hugging Face text towers (XLM-R, NLLB) are exported fixed.
    """
    from open_clip.model import CLIP
    from open_clip.transformer import TextTransformer

    if isinstance(model, CLIP):
        if (
            getattr(model, "attn_mask", None) is not None
            and model.text_pool_type in _TRIMMABLE_POOLS
            and _attention_is_plain(model.transformer)
        ):
            return _TrimmedClipText(model)
        return None
    text = getattr(model, "text", None)
    if isinstance(text, TextTransformer) and text.cls_emb is None and text.pool_type in _TRIMMABLE_POOLS:
        if (text.attn_mask is not None or text.use_pad_mask) and _attention_is_plain(text.transformer):
            return _TrimmedTextTransformer(text)
    return None


def export_onnx(
    module: torch.nn.Module,
    example: torch.Tensor,
    input_name: str,
    path: Path,
    weight_bytes: int | None = None,
    *,
    context_length: int | None = None,
) -> None:
    """One tower, batch axis dynamic, as the pack interface wants it (``input_name`` -> ``embedding``).

    ``weight_bytes``: the weights the graph will hold, when ``module`` carries more than it uses.
    ``context_length``: a text tower whose token axis is dynamic too, taking up to that many tokens
    (recorded in the graph's metadata, where the app checks it against pack.json).
    """
    dynamic_sequence = context_length is not None
    if weight_bytes is None:
        weight_bytes = _bytes(module.parameters())
    if weight_bytes >= _PROTOBUF_LIMIT:
        raise PixfindError(f"{path.name}: tower has {weight_bytes / 2**30:.1f} GiB of weights, over ONNX's 2 GiB single-file limit")
    # The TorchScript exporter: the dynamo exporter (torch 2.15) writes an invalid graph for
    # open_clip's text tower (duplicate value names), and this one is proven on CLIP.
    # Not under no_grad: there nn.MultiheadAttention takes its fused fast path, which has no ONNX form.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            module,
            (example,),
            str(path),
            dynamo=False,
            input_names=[input_name],
            output_names=[OUTPUT],
            dynamic_axes={input_name: {0: "batch", 1: "sequence"} if dynamic_sequence else {0: "batch"}, OUTPUT: {0: "batch"}},
            opset_version=OPSET,
            do_constant_folding=True,
        )
    if dynamic_sequence:
        model = onnx.load(str(path))
        onnx.helper.set_model_props(model, {GRAPH_CONTEXT_LENGTH_KEY: str(int(context_length))})
        onnx.save(model, str(path))
    onnx.checker.check_model(str(path))


def _bytes(params) -> int:
    return sum(p.numel() * p.element_size() for p in params)


def export_towers(
    model: torch.nn.Module, image_size: tuple[int, int], context_length: int, out_dir: Path
) -> tuple[Path, Path, str]:
    """Write fp32 visual.onnx and textual.onnx with a dynamic batch axis.

    Returns their paths and the text tower's sequence mode: "trim" when its token axis is dynamic
    too (see :func:`trimmable_text_tower`; the pack's verification must confirm it), else "fixed".
    """
    out_dir = Path(out_dir)
    model = model.float().eval()
    visual, textual = out_dir / "visual.onnx", out_dir / "textual.onnx"
    visual_bytes = _bytes(model.visual.parameters())
    export_onnx(_VisualTower(model), torch.randn(2, 3, *image_size), VISUAL_INPUT, visual, visual_bytes)
    trimmed = trimmable_text_tower(model)
    # Example ids must carry the end-of-text token as the row maximum, as real tokenised text does,
    # because open_clip pools at argmax(ids) for its default (argmax) text pooling. A trimmed tower
    # is traced on a shorter length than the context, so a length baked into the graph by mistake
    # fails the verification at full length.
    length = min(context_length, 8) if trimmed is not None else context_length
    ids = torch.zeros(2, length, dtype=torch.long)
    ids[:, 0], ids[:, 1], ids[:, 2] = 1, 2, 3
    text_bytes = _bytes(model.parameters()) - visual_bytes
    if trimmed is None:
        export_onnx(_TextualTower(model), ids, TEXTUAL_INPUT, textual, text_bytes)
    else:
        with _shape_free_attention(trimmed.model.transformer if isinstance(trimmed, _TrimmedClipText) else trimmed.text.transformer):
            export_onnx(trimmed, ids, TEXTUAL_INPUT, textual, text_bytes, context_length=context_length)
    return visual, textual, "fixed" if trimmed is None else "trim"


def convert_precision(path: Path, precision: str, tower: str) -> None:
    """Rewrite an fp32 ONNX tower in place as fp16 (GPU) or int8 (CPU); ``tower`` ("image" or "text")
    chooses the int8 method (see :func:`_quantise_text_int8` and :func:`_quantise_dynamic_int8`).

    The towers :func:`export_onnx` writes are single files under 2 GiB, and both conversions shrink
    them, so each is saved as one file again.
    """
    if tower not in (IMAGE, TEXT):
        raise PixfindError(f"unknown tower {tower!r} ({IMAGE} or {TEXT})")
    if precision == "fp32":
        return
    if precision == "fp16":
        from onnxruntime.transformers.float16 import convert_float_to_float16

        model = onnx.load(str(path))
        # keep_io_types: the app feeds float32 pixels and reads float32 embeddings for every precision.
        model16 = convert_float_to_float16(model, keep_io_types=True, disable_shape_infer=False)
        onnx.save(model16, str(path))
    elif precision == "int8":
        (_quantise_text_int8 if tower == TEXT else _quantise_dynamic_int8)(path)
    else:
        raise PixfindError(f"unknown precision {precision!r} (fp32, fp16 or int8)")


def _quantise_dynamic_int8(path: Path) -> None:
    """Dynamic int8 of every MatMul and Gemm: int8 weights, activations quantised per tensor as they come."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    tmp = path.with_suffix(".int8.onnx")
    # Per-channel weight scales: on a trained transformer (all-MiniLM-L6-v2, benchmarks/int8_quality.py)
    # per-tensor scales let the worst sentence embedding drift to cosine 0.83; per-channel keeps it
    # near 0.96 at the same speed.
    quantize_dynamic(
        str(path),
        str(tmp),
        weight_type=QuantType.QInt8,
        per_channel=True,
        op_types_to_quantize=["MatMul", "Gemm"],
    )
    tmp.replace(path)


def _quantise_text_int8(path: Path) -> None:
    """Weight-only block int8 of every MatMul with a constant weight (ONNX Runtime's MatMulNBits):
    a symmetric scale per block of 32 weights along the input axis; accuracy level 4 computes in
    int8 with the activations quantised per block too.

    A query's few tokens make the fp32 text tower stream all its weights for little arithmetic;
    int8 weights stream a quarter of the bytes (a random-weight ViT-B-32 text tower through the
    app's encoder: 3.9 ms a short query against 7.8-8.7 ms on 2 cores). The small blocks keep
    trained weights' outliers in check: all-MiniLM-L6-v2's sentence embeddings stay at worst cosine
    0.9978 to fp32 (mean 0.9996, nearest neighbour kept for 97.7 %), where dynamic int8 with
    per-channel scales drops to 0.962 (benchmarks/int8_quality.py). Without an accuracy level
    (fp32 compute on dequantised weights) it is 5x slower than fp32.
    """
    # The quantiser's module calls logging.basicConfig(level=INFO) on import, which would put a line per
    # node (and every other library's INFO messages from then on) on the terminal; a handler on the
    # root logger makes that call do nothing.
    root, guard = logging.getLogger(), logging.NullHandler()
    root.addHandler(guard)
    try:
        from onnxruntime.quantization.matmul_nbits_quantizer import DefaultWeightOnlyQuantConfig, MatMulNBitsQuantizer
    finally:
        root.removeHandler(guard)

    config = DefaultWeightOnlyQuantConfig(block_size=32, is_symmetric=True, accuracy_level=4, bits=8)
    quantizer = MatMulNBitsQuantizer(onnx.load(str(path)), algo_config=config)
    quantizer.process()
    quantizer.model.save_model_to_file(str(path), use_external_data_format=False)
