"""End-to-end indexing throughput: pixfind against a naive baseline, in the same run.

pixfind: scan, draft-mode decode in a thread pool overlapping ONNX Runtime batches,
SQLite transactions and hnswlib. Baseline (what rclip-style tools do): full-resolution
decode, open_clip's torchvision preprocessing and the PyTorch model in eager mode, one
image at a time. Both use the same architecture (random weights: speed does not depend
on them). The baseline runs on --baseline-count images and is reported per image.

    python benchmarks/indexing_throughput.py --count 1000 --size 4000x3000 --arch ViT-B-32
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def generate(folder: Path, count: int, size: tuple[int, int]) -> list[Path]:
    """Camera-sized JPEGs with varied, photo-like content (smooth colour fields, noise, edges)."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    w, h = size
    for i in range(count):
        path = folder / f"img{i:05d}.jpg"
        paths.append(path)
        if path.exists():
            continue
        rng = np.random.default_rng(i)
        base = Image.fromarray(rng.integers(0, 256, (6, 8, 3), dtype=np.uint8)).resize((w // 4, h // 4), Image.BICUBIC)
        arr = np.asarray(base, dtype=np.int16) + rng.integers(-12, 12, (h // 4, w // 4, 3), dtype=np.int16)
        img = Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8)).resize((w, h), Image.BILINEAR)
        img.save(path, "JPEG", quality=90)
    return paths


def build_pack(arch: str, work: Path) -> Path:
    out = work / f"pack-{arch}"
    if not (out / "pack.json").exists():
        from model_training.export import export_pack

        export_pack(arch, out, name=arch.lower())
    return out


def run_pixfind(pack: Path, folder: Path, batch_size: int, workers: int | None) -> dict:
    from desktop_app.encoder import Encoder
    from desktop_app.library.indexer import Indexer
    from desktop_app.library.library_dir import Library

    encoder = Encoder(pack, verify=False)
    with tempfile.TemporaryDirectory() as lib_dir, Library(lib_dir) as lib:
        report = Indexer(lib, encoder, batch_size=batch_size, workers=workers).run([str(folder)])
        sizes = {p.name: p.stat().st_size for p in Path(lib_dir).rglob("*") if p.is_file()}
    return {
        "images": report.encoded,
        "seconds": round(report.seconds, 2),
        "images_per_second": round(report.encoded / report.seconds, 2),
        "provider": encoder.active_provider,
        # decode is summed over worker threads; wait is the time the encoder stood idle waiting for them
        "timings_seconds": {k: round(v, 2) for k, v in report.timings.items()},
        "library_bytes": sum(sizes.values()),
    }


def run_baseline(arch: str, paths: list[Path]) -> dict:
    import open_clip
    import torch

    model, _, preprocess = open_clip.create_model_and_transforms(arch, pretrained=None)
    model.eval()
    decode = prep = enc = 0.0
    start = time.perf_counter()
    with torch.no_grad():
        for path in paths:
            t0 = time.perf_counter()
            image = Image.open(path).convert("RGB")
            t1 = time.perf_counter()
            tensor = preprocess(image).unsqueeze(0)
            t2 = time.perf_counter()
            model.encode_image(tensor)
            t3 = time.perf_counter()
            decode, prep, enc = decode + t1 - t0, prep + t2 - t1, enc + t3 - t2
    seconds = time.perf_counter() - start
    n = len(paths)
    return {
        "images": n,
        "seconds": round(seconds, 2),
        "images_per_second": round(n / seconds, 2),
        "ms_per_image": {"decode": round(1000 * decode / n, 1), "preprocess": round(1000 * prep / n, 1), "encode": round(1000 * enc / n, 1)},
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--count", type=int, default=1000)
    ap.add_argument("--size", default="4000x3000")
    ap.add_argument("--arch", default="ViT-B-32")
    ap.add_argument("--pack", type=Path, help="an existing model pack (default: export --arch with random weights)")
    ap.add_argument("--baseline-count", type=int, default=50)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--workers", type=int, default=None)
    ap.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "pixfind-bench")
    args = ap.parse_args()
    size = tuple(int(v) for v in args.size.lower().split("x"))
    folder = args.work / f"photos-{args.size}-{args.count}"
    t = time.perf_counter()
    paths = generate(folder, args.count, size)
    gen_s = time.perf_counter() - t
    pack = args.pack or build_pack(args.arch, args.work)
    result = {
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores",
        "images": args.count,
        "size": args.size,
        "arch": args.arch,
        "generate_seconds": round(gen_s, 1),
        "pixfind": run_pixfind(pack, folder, args.batch_size, args.workers),
        "baseline": run_baseline(args.arch, paths[: args.baseline_count]),
    }
    result["speedup"] = round(result["pixfind"]["images_per_second"] / result["baseline"]["images_per_second"], 2)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
