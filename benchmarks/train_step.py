"""One GPR-FT training step, measured: samples/s, peak memory, model FLOPs utilisation, CPU-vs-device loss.

The step is the real one (GPRFineTune: image tower + ArcFace proxies, AdamW param groups with the proxies'
learning-rate multiplier, gradient clipping, bf16 autocast on GPU, optional gradient checkpointing and patch
dropout) on random pixels and labels with random weights (no download). MFU = model FLOPs per step (counted
by torch's FlopCounterMode on a forward + backward without recomputation) x steps/s, divided by the bf16
matrix-multiply rate measured on the same device just before. Parity: the first loss of the same weights and
batch on the CPU (fp32) and on the device (fp32 and with autocast).

    python benchmarks/train_step.py --arch ViT-L-14-336 --batch 128 --grad-checkpointing
    python benchmarks/train_step.py --arch ViT-SO400M-14-SigLIP-384 --batch 32 --grad-checkpointing --patch-dropout 0.33
    python benchmarks/train_step.py --arch ViT-B-32 --batch 8 --steps 2 --device cpu   # a smoke run anywhere
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from machine import cpu_model, loadavg

from model_training.open_clip_models import build_model
from model_training.tasks import GPRFineTune, set_patch_dropout
from model_training.trainer.optim import build_optimizer

NUM_CLASSES = 1000


def matmul_rate(device: torch.device, dtype: torch.dtype, n: int = 8192, repeats: int = 20) -> float:
    """Measured FLOP/s of an n x n x n matrix product (the ceiling MFU is quoted against)."""
    if device.type == "cpu":
        n, repeats = 1024, 5
    a, b = (torch.randn(n, n, device=device, dtype=dtype) for _ in range(2))
    for _ in range(3):
        a @ b
    sync(device)
    start = time.perf_counter()
    for _ in range(repeats):
        a @ b
    sync(device)
    return 2 * n**3 * repeats / (time.perf_counter() - start)


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def make_module(arch: str, device: torch.device, grad_checkpointing: bool, patch_dropout: float, seed: int = 0):
    torch.manual_seed(seed)
    loaded = build_model(arch, pretrained=None)
    clip = loaded.model
    clip.set_grad_checkpointing(grad_checkpointing)
    set_patch_dropout(clip, patch_dropout)
    torch.manual_seed(seed + 1)
    module = GPRFineTune(clip, NUM_CLASSES, clip.visual.output_dim).to(device)
    return module, clip.visual.image_size


def batch_for(image_size, batch: int, device: torch.device, seed: int = 0) -> dict:
    h, w = (image_size, image_size) if isinstance(image_size, int) else image_size
    g = torch.Generator().manual_seed(seed)
    return {"image": torch.randn(batch, 3, h, w, generator=g).to(device),
            "label": torch.randint(0, NUM_CLASSES, (batch,), generator=g).to(device)}


def autocast(device: torch.device, precision: str):
    if precision == "bf16" and device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def train_step(module, optimizer, batch, device, precision: str) -> float:
    with autocast(device, precision):
        loss = module(batch)["loss"]
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_([p for g in optimizer.param_groups for p in g["params"]], 1.0)
    optimizer.step()
    return float(loss.detach())


def model_flops(arch: str, image_size, device: torch.device, batch: int, patch_dropout: float) -> float:
    """FLOPs of forward + backward for ``batch`` samples, counted on 2 samples (every op is linear in the batch)."""
    from torch.utils.flop_counter import FlopCounterMode

    module, _ = make_module(arch, device, grad_checkpointing=False, patch_dropout=patch_dropout)
    sample = batch_for(image_size, 2, device)
    counter = FlopCounterMode(display=False)
    with counter:
        module(sample)["loss"].backward()
    del module
    return counter.get_total_flops() * batch / 2


def parity(arch: str, device: torch.device, batch: int = 4) -> dict:
    """The first loss of identical weights and batch: CPU fp32 against the device in fp32 and bf16 autocast."""
    out = {}
    runs = [("cpu", "fp32")] + ([(device.type, "fp32"), (device.type, "bf16")] if device.type != "cpu" else [])
    for where, precision in runs:
        dev = torch.device(where)
        module, size = make_module(arch, dev, False, 0.0)
        module.eval()  # no patch dropout or other randomness: the same function everywhere
        with torch.no_grad(), autocast(dev, precision):
            out[f"{where} {precision}"] = float(module(batch_for(size, batch, dev))["loss"])
        del module
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--arch", default="ViT-L-14-336")
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--steps", type=int, default=10, help="timed steps (after --warmup)")
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--precision", choices=("bf16", "fp32"), default="bf16")
    ap.add_argument("--grad-checkpointing", action="store_true")
    ap.add_argument("--patch-dropout", type=float, default=0.0)
    ap.add_argument("--no-parity", action="store_true")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args(argv)
    device = torch.device(("cuda" if torch.cuda.is_available() else "cpu") if args.device == "auto" else args.device)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else cpu_model()
    print(f"{args.arch}, batch {args.batch}, {args.precision}, grad checkpointing {args.grad_checkpointing}, "
          f"patch dropout {args.patch_dropout} on {name} (load {loadavg()})", flush=True)

    dtype = torch.bfloat16 if args.precision == "bf16" and device.type == "cuda" else torch.float32
    peak_rate = matmul_rate(device, dtype)
    module, size = make_module(args.arch, device, args.grad_checkpointing, args.patch_dropout)
    optimizer = build_optimizer(module, {"lr": 1e-6, "weight_decay": 0.01, "betas": (0.9, 0.999), "eps": 1e-8,
                                         "lr_multipliers": {"loss.": 100.0}})
    batch = batch_for(size, args.batch, device)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    losses = [train_step(module, optimizer, batch, device, args.precision) for _ in range(args.warmup)]
    sync(device)
    start = time.perf_counter()
    losses += [train_step(module, optimizer, batch, device, args.precision) for _ in range(args.steps)]
    sync(device)
    seconds = (time.perf_counter() - start) / args.steps
    peak_memory = torch.cuda.max_memory_allocated(device) if device.type == "cuda" else None
    del module, optimizer, batch
    if device.type == "cuda":
        torch.cuda.empty_cache()
    flops = model_flops(args.arch, size, device, args.batch, args.patch_dropout)
    result = {
        "arch": args.arch, "batch": args.batch, "device": name, "precision": args.precision if device.type == "cuda" else "fp32 (autocast is GPU-only)",
        "seconds per step": round(seconds, 4), "samples/s": round(args.batch / seconds, 2),
        "peak memory GiB": round(peak_memory / 2**30, 2) if peak_memory is not None else None,
        "model TFLOP per step": round(flops / 1e12, 3), "measured matmul TFLOP/s": round(peak_rate / 1e12, 1),
        "MFU": round(flops / seconds / peak_rate, 4), "losses": [round(v, 4) for v in losses],
    }
    if not args.no_parity:
        result["first loss"] = parity(args.arch, device)
    width = max(len(k) for k in result)
    for k, v in result.items():
        print(f"{k:>{width}}: {v}")
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
