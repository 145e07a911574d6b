"""Image-encoder throughput on CPU: open_clip PyTorch eager vs the app's ONNX Runtime packs (fp32, int8).

Baseline (what rclip-style tools run): ``model.encode_image`` under ``torch.no_grad``, float32, CPU.
Against it, the app's ``Encoder.encode_pixels`` on fp32 and dynamic-int8 model packs. All three get
the same preprocessed random pixel tensors, so decoding and preprocessing are excluded; the same
thread count is given to torch and to ONNX Runtime. Weights are random (speed does not depend on
them): a seeded open_clip model is saved with ``torch.save`` and exported with
``export_pack(..., checkpoint=...)``, so the real export path (and its verification against
open_clip) is what gets measured. Engines run back to back per batch size, in one process.

Timing: per (model, batch, engine) one warm-up call, then ``--repeats`` timed runs of at least
``--min-seconds`` each (as many calls as fit); the median run gives img/s. Slow cells (ViT-L-14-336
in eager torch takes seconds per image) are capped by ``--cell-budget``: fewer timed runs, one call
each, and a smaller warm-up batch when a full-batch warm-up would exceed ``--max-warmup-seconds``.
The table says how many calls each number rests on.

    python benchmarks/encoder_throughput.py --quick
    python benchmarks/encoder_throughput.py --models ViT-B-32,ViT-L-14-336 --batches 1,16,64 --json out.json

Text queries (``--text-packs PACK[,PACK...]``): the time to encode one query (batch 1, the window's
search-as-you-type case), the whole ``Encoder.encode_texts`` call (cleaning, tokenising, ONNX
Runtime), for a short query and a 20-word one, median of ``--text-repeats`` calls, with the pack's
text tower fed up to the end-of-text token ("trim", pack format 2) and padded to the context
length ("fixed": the same graph and session, pack.json's setting overridden in memory).

    python benchmarks/encoder_throughput.py --text-packs ~/.local/share/pixfind/models/starter
"""

from __future__ import annotations

import argparse
import gc
import json
import math
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from machine import cpu_model, loadavg  # benchmarks/machine.py, beside this script

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

ENGINES = ("torch", "ort-fp32", "ort-int8")


def machine_info(threads: int) -> dict:
    import onnxruntime
    import open_clip
    import torch

    return {
        "cpu": cpu_model(),
        "logical_cores": os.cpu_count(),
        "affinity_cores": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "threads": threads,
        "torch_threads": torch.get_num_threads(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "onnxruntime": onnxruntime.__version__,
        "open_clip": open_clip.__version__,
        "platform": platform.platform(),
    }


def prepare_model(arch: str, work: Path, seed: int, log) -> tuple[object, dict[str, Path], dict[str, dict]]:
    """A seeded random open_clip model, its checkpoint, and fp32 + int8 packs exported from it."""
    import open_clip
    import torch

    from desktop_app.pack import read_manifest
    from model_training.export import export_pack

    slug = arch.lower().replace("/", "-")
    torch.manual_seed(seed)
    model = open_clip.create_model(arch, pretrained=None).float().eval()
    ckpt = work / f"{slug}-seed{seed}.pth"
    if not ckpt.exists():
        torch.save(model.state_dict(), ckpt)
    packs, verification, reused = {}, {}, []
    for precision in ("fp32", "int8"):
        out = work / f"pack-{slug}-seed{seed}-{precision}"
        if (out / "pack.json").exists():
            log(f"  reusing {out.name}")
            reused.append(precision)
        else:
            t = time.perf_counter()
            log(f"  exporting {arch} {precision} pack (export_pack, checkpoint={ckpt.name}) ...")
            export_pack(arch, out, checkpoint=ckpt, precision=precision, name=f"{slug}-bench-{precision}")
            log(f"    done in {time.perf_counter() - t:.0f} s")
            gc.collect()
        packs[precision] = out
        verification[precision] = read_manifest(out).verification
    verification["reused"] = reused
    return model, packs, verification


class Timer:
    def __init__(self, min_seconds: float, repeats: int, cell_budget: float, max_warmup: float):
        self.min_seconds, self.repeats, self.cell_budget, self.max_warmup = min_seconds, repeats, cell_budget, max_warmup

    def measure(self, call, pixels: np.ndarray, batch: int, est_call_s: float | None) -> dict:
        """Warm up, then timed runs; returns img/s of the median run and how it was obtained."""
        warm_batch = batch
        if est_call_s is not None and est_call_s > self.max_warmup and batch > 1:
            # A full-batch warm-up would cost as much as a timed call: warm up on a smaller batch
            # (same engine, same weights, same image size) and spend the budget on the timed call.
            warm_batch = max(1, min(batch, int(batch * self.max_warmup / est_call_s)))
        t = time.perf_counter()
        out = call(pixels[:warm_batch])
        warm_s = time.perf_counter() - t
        call_s = warm_s * batch / warm_batch if warm_batch != batch else warm_s
        if est_call_s is not None and warm_batch != batch:
            call_s = max(call_s, est_call_s)
        x = pixels[:batch]
        calls_per_run = max(1, math.ceil(self.min_seconds / max(call_s, 1e-9)))
        runs = self.repeats
        if call_s * calls_per_run * runs > self.cell_budget:
            calls_per_run = 1
            runs = max(1, min(self.repeats, int(self.cell_budget // max(call_s, 1e-9))))
        rates, total_calls = [], 0
        for _ in range(runs):
            t = time.perf_counter()
            for _ in range(calls_per_run):
                out = call(x)
            dt = time.perf_counter() - t
            rates.append(batch * calls_per_run / dt)
            total_calls += calls_per_run
        return {
            "images_per_second": statistics.median(rates),
            "runs_images_per_second": [round(r, 3) for r in rates],
            "runs": runs,
            "calls_per_run": calls_per_run,
            "timed_calls": total_calls,
            "warmup_batch": warm_batch,
            "warmup_seconds": round(warm_s, 3),
            "output": out,
        }


def cosines(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    a = a / np.linalg.norm(a, axis=1, keepdims=True)
    b = b / np.linalg.norm(b, axis=1, keepdims=True)
    c = (a * b).sum(axis=1)
    return float(c.min()), float(c.mean())


def bench_model(arch: str, batches: list[int], threads: int, timer: Timer, work: Path, seed: int, log) -> dict:
    import torch

    from desktop_app.encoder import CPU, Encoder

    t0 = time.perf_counter()
    model, packs, verification = prepare_model(arch, work, seed, log)
    export_s = time.perf_counter() - t0
    encoders = {p: Encoder(packs[p], providers=[CPU], threads=threads, verify=False) for p in ("fp32", "int8")}
    size = encoders["fp32"].manifest.image.size
    h, w = (size, size) if isinstance(size, int) else tuple(size)
    rng = np.random.default_rng(seed)
    # Already-preprocessed pixels (roughly what a normalised photo looks like): preprocessing is excluded.
    pixels = np.ascontiguousarray(rng.standard_normal((max(batches), 3, h, w), dtype=np.float32))
    pixels_t = torch.from_numpy(pixels)

    def torch_call(x: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return model.encode_image(pixels_t[: x.shape[0]], normalize=True).numpy()

    calls = {
        "torch": torch_call,
        "ort-fp32": encoders["fp32"].encode_pixels,
        "ort-int8": encoders["int8"].encode_pixels,
    }
    per_image_s: dict[str, float] = {}
    rows = []
    for batch in sorted(batches):
        row = {"model": arch, "batch": batch, "image_size": [h, w], "engines": {}, "loadavg_before": loadavg()}
        outputs = {}
        for engine in ENGINES:
            est = per_image_s[engine] * batch if engine in per_image_s else None
            log(f"  {arch} batch {batch}: {engine} ...")
            m = timer.measure(calls[engine], pixels, batch, est)
            outputs[engine] = m.pop("output")
            per_image_s[engine] = 1.0 / m["images_per_second"]
            row["engines"][engine] = m
            log(f"    {m['images_per_second']:.2f} img/s ({m['timed_calls']} timed call(s), warm-up batch {m['warmup_batch']})")
        tput = {e: row["engines"][e]["images_per_second"] for e in ENGINES}
        row["ratio_fp32_vs_torch"] = tput["ort-fp32"] / tput["torch"]
        row["ratio_int8_vs_torch"] = tput["ort-int8"] / tput["torch"]
        row["ratio_int8_vs_fp32"] = tput["ort-int8"] / tput["ort-fp32"]
        # Sanity: the engines compute the same embedding for these pixels (random weights).
        n = min(o.shape[0] for o in outputs.values())
        row["cosine_vs_torch"] = {
            p: dict(zip(("min", "mean"), cosines(outputs["torch"][:n], outputs[f"ort-{p}"][:n]))) for p in ("fp32", "int8")
        }
        row["loadavg_after"] = loadavg()
        rows.append(row)
    encoders.clear()
    gc.collect()
    return {"model": arch, "export_seconds": round(export_s, 1), "verification": verification, "rows": rows}


TEXT_QUERIES = (
    "a red car",
    "a photo of two dogs playing in the snow next to a wooden cabin under a bright blue sky at sunset today",
)


def bench_text_queries(pack: Path, threads: int, repeats: int) -> list[dict]:
    """Per query: median ms per call with the token axis trimmed and padded to the context length."""
    from desktop_app.encoder import CPU, Encoder

    trimmed = Encoder(pack, providers=[CPU], threads=threads, verify=False)
    if trimmed.manifest.text.sequence != "trim":
        raise SystemExit(f"{pack}: its text tower is not trimmed (pack.json text sequence {trimmed.manifest.text.sequence!r})")
    padded = Encoder(pack, providers=[CPU], threads=threads, verify=False)
    padded.manifest.text.sequence = "fixed"  # the same graph fed context_length tokens, as before format 2
    rows = []
    for query in TEXT_QUERIES:
        row = {"pack": trimmed.name, "query": query, "words": len(query.split()),
               "tokens": int(trimmed.tokenizer.tokenize([query]).lengths[0]), "context": trimmed.manifest.text.context_length}
        outputs = {}
        for mode, encoder in (("fixed", padded), ("trim", trimmed)):
            outputs[mode] = encoder.encode_texts([query])  # warm-up
            times = []
            for _ in range(repeats):
                t = time.perf_counter()
                encoder.encode_texts([query])
                times.append(time.perf_counter() - t)
            row[f"{mode}_ms"] = statistics.median(times) * 1000
        row["cosine"] = cosines(outputs["fixed"], outputs["trim"])[0]
        rows.append(row)
    return rows


def print_text_report(info: dict, rows: list[dict], repeats: int) -> None:
    print(f"CPU: {info['cpu']} | threads: ORT intra-op {info['threads']} | onnxruntime {info['onnxruntime']}")
    print(f"Text query encode time, batch 1, median of {repeats} calls (load average {info['loadavg_start']} -> {loadavg()})")
    headers = ["pack", "words", "tokens/context", "fixed ms", "trim ms", "fixed/trim", "cosine fixed vs trim"]
    body = [
        [r["pack"], str(r["words"]), f"{r['tokens']}/{r['context']}", f"{r['fixed_ms']:.2f}", f"{r['trim_ms']:.2f}",
         f"{r['fixed_ms'] / r['trim_ms']:.1f}x", f"{r['cosine']:.7f}"]
        for r in rows
    ]
    widths = [max(len(x) for x in col) for col in zip(headers, *body)]
    for line in [headers, *body]:
        print("  ".join(c.rjust(w) for c, w in zip(line, widths)))


def print_report(info: dict, results: list[dict], args, notes: list[str]) -> None:
    try:
        from rich.console import Console
        from rich.table import Table
    except ImportError:  # plain text fallback
        Console = None

    mach = (
        f"CPU: {info['cpu']} | cores: {info['logical_cores']} logical ({info['affinity_cores']} usable) | "
        f"threads: torch {info['torch_threads']}, ORT intra-op {info['threads']} | "
        f"torch {info['torch']}, onnxruntime {info['onnxruntime']}, open_clip {info['open_clip']}, Python {info['python']}"
    )
    load = f"load average (1/5/15 min) at start {info['loadavg_start']}, at end {info['loadavg_end']}"
    headers = ["model", "batch", "torch eager img/s", "ORT fp32 img/s", "ORT int8 img/s", "fp32/torch", "int8/torch", "int8/fp32", "timed calls t/f/i"]
    body = []
    for res in results:
        for r in res["rows"]:
            e = r["engines"]
            body.append(
                [
                    r["model"],
                    str(r["batch"]),
                    f"{e['torch']['images_per_second']:.2f}",
                    f"{e['ort-fp32']['images_per_second']:.2f}",
                    f"{e['ort-int8']['images_per_second']:.2f}",
                    f"{r['ratio_fp32_vs_torch']:.2f}x",
                    f"{r['ratio_int8_vs_torch']:.2f}x",
                    f"{r['ratio_int8_vs_fp32']:.2f}x",
                    "/".join(str(e[k]["timed_calls"]) for k in ENGINES),
                ]
            )
    vheaders = ["model", "pack", "image worst cos", "text worst cos", "bound", "bench pixels cos vs torch (min)"]
    vbody = []
    for res in results:
        for p in ("fp32", "int8"):
            v = res["verification"].get(p, {})
            bench_min = min(r["cosine_vs_torch"][p]["min"] for r in res["rows"])
            vbody.append(
                [res["model"], p, f"{v.get('visual_min_cosine', float('nan')):.6f}", f"{v.get('textual_min_cosine', float('nan')):.6f}", str(v.get("bound")), f"{bench_min:.6f}"]
            )
    title = "Image-encoder throughput, CPU, preprocessing excluded (median of timed runs)"
    if Console is not None:
        console = Console(width=max(140, Console().width))
        console.print(mach)
        console.print(load)
        t = Table(title=title)
        for hd in headers:
            t.add_column(hd, justify="left" if hd == "model" else "right")
        for b in body:
            t.add_row(*b)
        console.print(t)
        vt = Table(title="export_pack verification against open_clip (random weights) and engine agreement")
        for hd in vheaders:
            vt.add_column(hd, justify="left" if hd in ("model", "pack") else "right")
        for b in vbody:
            vt.add_row(*b)
        console.print(vt)
        for n in notes:
            console.print(f"note: {n}", highlight=False)
    else:
        print(mach)
        print(load)
        print(title)
        for tab in ((headers, body), (vheaders, vbody)):
            widths = [max(len(str(x)) for x in col) for col in zip(tab[0], *tab[1])]
            for line in [tab[0], *tab[1]]:
                print("  ".join(str(c).rjust(wd) for c, wd in zip(line, widths)))
            print()
        for n in notes:
            print(f"note: {n}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", default="ViT-B-32,ViT-L-14-336", help="comma-separated open_clip architectures")
    ap.add_argument("--batches", default="1,16,64", help="comma-separated batch sizes")
    ap.add_argument("--threads", type=int, default=None, help="threads for torch and ORT (default: all usable cores)")
    ap.add_argument("--min-seconds", type=float, default=3.0, help="minimum length of one timed run")
    ap.add_argument("--repeats", type=int, default=3, help="timed runs per cell; the median is reported")
    ap.add_argument("--cell-budget", type=float, default=90.0, help="seconds of timed calls per (model, batch, engine) before runs are cut down")
    ap.add_argument("--max-warmup-seconds", type=float, default=20.0, help="warm up on a smaller batch when a full one would take longer")
    ap.add_argument("--quick", action="store_true", help="ViT-B-32 only, batches 1 and 8, short runs")
    ap.add_argument("--work", type=Path, default=None, help="keep checkpoints and packs here and reuse them (default: a temp dir)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", type=Path, default=None, help="write the raw numbers here")
    ap.add_argument("--text-packs", default=None, help="comma-separated pack folders: time text queries, trimmed vs padded")
    ap.add_argument("--text-repeats", type=int, default=50, help="timed calls per text query and mode; the median is reported")
    args = ap.parse_args()
    if args.quick:
        args.models, args.batches = "ViT-B-32", "1,8"
        args.min_seconds, args.repeats = min(args.min_seconds, 1.5), min(args.repeats, 3)

    import torch

    threads = args.threads or (len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count())
    torch.set_num_threads(threads)
    models = [m.strip() for m in args.models.split(",") if m.strip()]
    batches = sorted({int(b) for b in args.batches.split(",") if b.strip()})
    info = machine_info(threads)
    info["loadavg_start"] = loadavg()
    if args.text_packs:
        rows = [r for pack in args.text_packs.split(",") if pack.strip() for r in bench_text_queries(Path(pack.strip()).expanduser(), threads, args.text_repeats)]
        print_text_report(info, rows, args.text_repeats)
        if args.json:
            args.json.write_text(json.dumps({"machine": info, "text_queries": rows}, indent=2), encoding="utf-8")
        return
    timer = Timer(args.min_seconds, args.repeats, args.cell_budget, args.max_warmup_seconds)

    def log(msg: str) -> None:
        print(msg, file=sys.stderr, flush=True)

    log(f"{info['cpu']}, {info['logical_cores']} cores, {threads} threads; load average {info['loadavg_start']}")
    started = time.perf_counter()
    results = []
    with tempfile.TemporaryDirectory(prefix="pixfind-encbench-") as tmp:
        work = args.work or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        for arch in models:
            log(f"{arch}:")
            results.append(bench_model(arch, batches, threads, timer, work, args.seed, log))
    info["loadavg_end"] = loadavg()
    info["total_seconds"] = round(time.perf_counter() - started, 1)

    notes = [
        (
            f"timing: 1 warm-up call, then up to {args.repeats} timed runs of >= {args.min_seconds:g} s each; "
            f"cells whose timed calls would exceed {args.cell_budget:g} s are cut to fewer runs of a single call "
            "(see 'timed calls' for torch/fp32/int8), and full-batch warm-ups longer than "
            f"{args.max_warmup_seconds:g} s are replaced by a smaller-batch warm-up."
        ),
    ]
    for res in results:
        cut = [
            f"batch {r['batch']} {e}: {r['engines'][e]['timed_calls']} call(s)"
            + (f", warm-up batch {r['engines'][e]['warmup_batch']}" if r["engines"][e]["warmup_batch"] != r["batch"] else "")
            for r in res["rows"]
            for e in ENGINES
            if r["engines"][e]["timed_calls"] < 2 or r["engines"][e]["warmup_batch"] != r["batch"]
        ]
        if cut:
            notes.append(f"{res['model']}: minimal timing (slow on this CPU): " + "; ".join(cut))
        reused = res["verification"].get("reused") or []
        notes.append(
            f"{res['model']}: checkpoint save + fp32 and int8 export_pack (with verification) took {res['export_seconds']:g} s"
            + (f" (packs {', '.join(reused)} reused from --work, exported there earlier by export_pack)" if reused else "")
        )
    int8_ratios = [r["ratio_int8_vs_torch"] for res in results for r in res["rows"]]
    if int8_ratios:
        notes.append(
            f"target ORT int8 >= 4x torch eager: met in {sum(x >= 4 for x in int8_ratios)}/{len(int8_ratios)} cells "
            f"(range {min(int8_ratios):.2f}x-{max(int8_ratios):.2f}x)"
        )
    notes.append(f"total benchmark time {info['total_seconds']:g} s; random weights (speed only; cosines are not quality on real weights)")
    print_report(info, results, args, notes)

    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        payload = {"machine": info, "args": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()}, "results": results, "notes": notes}
        args.json.write_text(json.dumps(payload, indent=2), encoding="utf-8")
        log(f"wrote {args.json}")


if __name__ == "__main__":
    main()
