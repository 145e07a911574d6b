"""Exporting open_clip towers to ONNX and converting them to fp16 or int8."""

from __future__ import annotations

import warnings
from pathlib import Path

import onnx
import torch

from desktop_app.errors import PixfindError

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


def export_onnx(module: torch.nn.Module, example: torch.Tensor, input_name: str, path: Path, weight_bytes: int | None = None) -> None:
    """One tower, batch axis dynamic, as the pack interface wants it (``input_name`` -> ``embedding``).

    ``weight_bytes``: the weights the graph will hold, when ``module`` carries more than it uses.
    """
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
            dynamic_axes={input_name: {0: "batch"}, OUTPUT: {0: "batch"}},
            opset_version=OPSET,
            do_constant_folding=True,
        )
    onnx.checker.check_model(str(path))


def _bytes(params) -> int:
    return sum(p.numel() * p.element_size() for p in params)


def export_towers(model: torch.nn.Module, image_size: tuple[int, int], context_length: int, out_dir: Path) -> tuple[Path, Path]:
    """Write fp32 visual.onnx and textual.onnx with a dynamic batch axis."""
    out_dir = Path(out_dir)
    model = model.float().eval()
    visual, textual = out_dir / "visual.onnx", out_dir / "textual.onnx"
    visual_bytes = _bytes(model.visual.parameters())
    export_onnx(_VisualTower(model), torch.randn(2, 3, *image_size), VISUAL_INPUT, visual, visual_bytes)
    # Example ids must carry the end-of-text token as the row maximum, as real tokenised text does,
    # because open_clip pools at argmax(ids) for its default (argmax) text pooling.
    ids = torch.zeros(2, context_length, dtype=torch.long)
    ids[:, 0], ids[:, 1], ids[:, 2] = 1, 2, 3
    export_onnx(_TextualTower(model), ids, TEXTUAL_INPUT, textual, _bytes(model.parameters()) - visual_bytes)
    return visual, textual


def convert_precision(path: Path, precision: str) -> None:
    """Rewrite an fp32 ONNX file in place as fp16 (GPU) or dynamic int8 (CPU)."""
    if precision == "fp32":
        return
    if precision == "fp16":
        from onnxruntime.transformers.float16 import convert_float_to_float16

        model = onnx.load(str(path))
        # keep_io_types: the app feeds float32 pixels and reads float32 embeddings for every precision.
        model16 = convert_float_to_float16(model, keep_io_types=True, disable_shape_infer=False)
        onnx.save(model16, str(path))
    elif precision == "int8":
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
    else:
        raise PixfindError(f"unknown precision {precision!r} (fp32, fp16 or int8)")
