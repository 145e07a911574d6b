"""Choosing the starter pack's settings by measurement, on real photos available offline.

The gallery is every sample photo listed in ``tests/data/starter_captions.json`` (shipped inside
scikit-image, scikit-learn and matplotlib); the queries are the captions written for them.

    .venv/bin/python benchmarks/starter_sweep.py            # the sweep (torch, a few minutes)
    .venv/bin/python benchmarks/starter_sweep.py --packs    # + prototype vs default, built as real packs
    .venv/bin/python benchmarks/starter_sweep.py --packs-only
    .venv/bin/python benchmarks/starter_sweep.py --int8         # text tower: dynamic vs weight-only int8

Metrics (a caption is found when an image of its group ranks within K):
  R@1, R@5  text-to-image recall over all captions;  MRR  mean reciprocal rank;
  issue     rank of the right photo for the issue's eight queries (first = 1);
  pairs     image-to-image: the two motorcycle photos and the two chessboards, each as query,
            counted when the other one ranks first (4 queries);
  dup@1     image-to-image: a cropped, flipped, re-lit copy of each photo as query, counted when
            the original ranks first among the originals.
The sweep runs the torch models and does ConSE in NumPy (the same maths as the ONNX graph);
``--packs`` builds real packs and measures them through the app's own encoder (ONNX Runtime).
"""

from __future__ import annotations

import argparse
import hashlib
import itertools
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from model_training.starter.evaluate import (
    Gallery,
    augmented,
    image_to_image,
    load_gallery,
    measure_pack,
    text_to_image,
)

CACHE = Path(tempfile.gettempdir()) / "pixfind-starter-sweep"
VARIANTS = ("lite0", "lite1", "lite2")


# ----------------------------------------------------------------------------- torch side (sweep)


def _cached(key: str, compute):
    CACHE.mkdir(parents=True, exist_ok=True)
    path = CACHE / (hashlib.sha256(key.encode()).hexdigest()[:20] + ".npy")
    if path.exists():
        return np.load(path)
    value = compute()
    np.save(path, value)
    return value


class TorchSide:
    def __init__(self):
        import torch

        from model_training.starter import build

        torch.set_num_threads(2)
        self.torch, self.build = torch, build
        self.tok = build.load_tokenizer()
        self.text_tower = build.TextTower(build.load_minilm(), self.tok.token_to_id("[PAD]")).eval()
        self._classifiers = {}

    def texts(self, texts: list[str]) -> np.ndarray:
        return self.build.embed_texts(self.text_tower, self.tok, texts).numpy()

    def class_embeddings(self, names: str, prompts: tuple[str, ...]) -> np.ndarray:
        def compute():
            per_class = self.build.class_prompts(prompts, self.build.class_names(names))
            return self.build.class_embeddings(self.text_tower, self.tok, per_class).numpy()

        return _cached(f"classes|{names}|{json.dumps(prompts)}", compute)

    def logits(self, variant: str, normalisation: str, images, tag: str) -> np.ndarray:
        from desktop_app.pack import ImageSettings
        from desktop_app.preprocess import ImagePreprocessor

        def compute():
            if variant not in self._classifiers:
                self._classifiers[variant] = self.build.load_classifier(variant)
            size = self.build.VARIANTS[variant]
            mean, std = self.build.MEAN_STD[normalisation]
            pre = ImagePreprocessor(ImageSettings(size=(size, size), mean=mean, std=std))
            with self.torch.no_grad():
                return self._classifiers[variant](self.torch.from_numpy(pre(images))).numpy()

        return _cached(f"logits|{variant}|{normalisation}|{tag}", compute)


def conse(logits: np.ndarray, classes: np.ndarray, top_t: int, temperature: float, center: float = 0.0) -> np.ndarray:
    if center:
        classes = classes - center * classes.mean(axis=0, keepdims=True)
    z = logits / temperature
    p = np.exp(z - z.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    if top_t < p.shape[1]:
        kth = -np.sort(-p, axis=1)[:, top_t - 1 : top_t]
        p = p * (p >= kth)
    emb = p @ classes
    return emb / np.linalg.norm(emb, axis=1, keepdims=True)


PROMPT_SETS = {
    "photo": ("a photo of a {class}.",),
    "bare": ("{class}",),
    "definition": ("{class}: {definition}",),
    "photo+definition": ("a photo of a {class}.", "{class}: {definition}"),
    "lemmas": ("a photo of a {lemmas}.",),
    "4 templates": ("a photo of a {class}.", "a picture of a {class}.", "a close-up photo of a {class}.", "a {class}."),
    "4 templates+definition": (
        "a photo of a {class}.",
        "a picture of a {class}.",
        "a close-up photo of a {class}.",
        "a {class}.",
        "{class}: {definition}",
    ),
    "clip simple 7": (
        "itap of a {class}.",
        "a bad photo of the {class}.",
        "a origami {class}.",
        "a photo of the large {class}.",
        "a {class} in a video game.",
        "art of the {class}.",
        "a photo of the small {class}.",
    ),
}


def row(label: str, t2i: dict, i2i: dict) -> str:
    issue = " ".join(str(r) for r in t2i["issue"].values())
    return (
        f"{label:<58} {t2i['r1']:5.3f} {t2i['r5']:5.3f} {t2i['mrr']:5.3f}  "
        f"{i2i['pairs']}/{i2i['pairs_total']}  {i2i.get('dup1', float('nan')):5.3f}  {issue}"
    )


HEADER = f"{'setting':<58} {'R@1':>5} {'R@5':>5} {'MRR':>5}  pairs  dup@1  issue-query ranks"


def sweep(gallery: Gallery, quick: bool = False) -> list[tuple[float, str]]:
    from desktop_app.preprocess import load_image

    side = TorchSide()
    images = [load_image(p) for p in gallery.paths]
    dups = [augmented(im) for im in images]
    text_emb = side.texts(gallery.captions)
    issue_legend = ", ".join(gallery.issue_queries)
    print(f"gallery: {len(images)} images, {len(gallery.captions)} captions; issue queries in order: {issue_legend}\n")

    results = []

    def evaluate(label, variant, norm, names, prompts_key, top_t, temperature, center=0.0):
        classes = side.class_embeddings(names, PROMPT_SETS[prompts_key])
        emb = conse(side.logits(variant, norm, images, "gallery"), classes, top_t, temperature, center)
        dup = conse(side.logits(variant, norm, dups, "dups"), classes, top_t, temperature, center)
        t2i, i2i = text_to_image(gallery, text_emb, emb), image_to_image(gallery, emb, dup)
        score = t2i["r1"] + t2i["r5"] + t2i["mrr"]
        results.append((score, label, t2i, i2i))
        print(row(label, t2i, i2i), flush=True)
        return t2i, i2i

    print("1. preprocessing and classifier size ('a photo of a {class}.', torchvision names)")
    print(HEADER)
    for (top_t, temperature), variant, norm in itertools.product(((10, 1.0), (20, 2.0)), VARIANTS, ("imagenet", "tf")):
        tag = " (prototype)" if (variant, norm, top_t) == ("lite0", "imagenet", 10) else ""
        evaluate(f"{variant} {norm} mean/std, T={top_t} temp={temperature}{tag}", variant, norm, "torchvision", "photo", top_t, temperature)

    print("\n2. class names and prompt wording (tf mean/std)")
    print(HEADER)
    for variant, (top_t, temperature) in itertools.product(("lite0", "lite2"), ((20, 2.0), (50, 3.0))):
        for names, key in [("torchvision", "photo"), ("torchvision", "photo+definition")] + [
            ("openclip", k) for k in PROMPT_SETS
        ]:
            if quick and key not in ("photo", "photo+definition"):
                continue
            evaluate(f"{variant} {names} names, {key}, T={top_t} temp={temperature}", variant, "tf", names, key, top_t, temperature)

    print("\n3. T and temperature (tf mean/std, openclip names)")
    print(HEADER)
    for variant in VARIANTS:
        for key in ("photo", "photo+definition", "4 templates+definition"):
            for top_t, temperature in itertools.product((1, 5, 10, 20, 50, 100, 1000), (1.0, 2.0, 3.0, 4.0, 5.0)):
                if quick and variant == "lite1":
                    continue
                evaluate(f"{variant} {key}, T={top_t} temp={temperature}", variant, "tf", "openclip", key, top_t, temperature)

    print("\n3b. robustness: mean over the neighbourhood T in {20, 50, 100} x temperature in {2, 3, 4}")
    print(f"{'variant, prompts':<40} {'R@1':>5} {'R@5':>5} {'MRR':>5}  {'dup@1':>5}  worst R@1")
    for variant, key in itertools.product(VARIANTS, ("photo", "photo+definition", "4 templates+definition")):
        classes = side.class_embeddings("openclip", PROMPT_SETS[key])
        logits = side.logits(variant, "tf", images, "gallery")
        dup_logits = side.logits(variant, "tf", dups, "dups")
        cells = []
        for top_t, temperature in itertools.product((20, 50, 100), (2.0, 3.0, 4.0)):
            emb = conse(logits, classes, top_t, temperature)
            t2i = text_to_image(gallery, text_emb, emb)
            i2i = image_to_image(gallery, emb, conse(dup_logits, classes, top_t, temperature))
            cells.append((t2i["r1"], t2i["r5"], t2i["mrr"], i2i["dup1"]))
        mean, worst = np.mean(cells, axis=0), np.min(cells, axis=0)
        print(f"{variant + ', ' + key:<40} {mean[0]:5.3f} {mean[1]:5.3f} {mean[2]:5.3f}  {mean[3]:5.3f}  {worst[0]:5.3f}")

    print("\n4. centring the class embeddings (subtract center x their mean; openclip names, tf mean/std)")
    print(HEADER)
    for variant in VARIANTS:
        for key in ("photo", "photo+definition"):
            for (top_t, temperature), center in itertools.product(((20, 2.0), (20, 3.0), (50, 3.0), (1000, 1.0)), (0.5, 1.0)):
                evaluate(
                    f"{variant} {key}, T={top_t} temp={temperature} center={center}",
                    variant, "tf", "openclip", key, top_t, temperature, center,
                )
    return results


# ----------------------------------------------------------------------------- real packs


def compare_packs(gallery: Gallery) -> None:
    from model_training.starter.build import PROTOTYPE, build_starter_pack

    print("\n5. real packs through the app's encoder (ONNX Runtime, CPU; int8 text tower unless said)")
    print(HEADER)
    with tempfile.TemporaryDirectory() as tmp:
        for i, (label, kwargs) in enumerate(
            (
                ("prototype: lite0, T=10, temp 1, 'a photo of a {class}.'", dict(PROTOTYPE)),
                ("starter defaults", {}),
                ("starter defaults, fp32 text tower", dict(text_precision="fp32")),
            )
        ):
            started = time.perf_counter()
            pack = build_starter_pack(Path(tmp) / f"pack{i}", **kwargs)
            seconds = time.perf_counter() - started
            t2i, i2i = measure_pack(pack, gallery)
            files = {f.name: f.stat().st_size for f in pack.iterdir()}
            print(row(label, t2i, i2i))
            manifest = json.loads((pack / "pack.json").read_text())
            sizes = ", ".join(f"{name} {size / 2**20:.1f}" for name, size in sorted(files.items()))
            print(f"    built in {seconds:.0f} s; {sum(files.values()) / 2**20:.1f} MiB ({sizes} MiB)")
            print(f"    verification: {manifest['verification']}")
            misses = [f"{c!r}:{r}" for c, r in zip(gallery.captions, t2i["ranks"]) if r > 1]
            print(f"    captions not ranked first: {', '.join(misses)}")
            print(f"    pair ranks: {i2i['pair_ranks']}", flush=True)


def _run_onnx(path: Path, array: np.ndarray) -> np.ndarray:
    """One bare ONNX graph (not a pack) on CPU: the variants compared here are not packs."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 3
    session = ort.InferenceSession(str(path), sess_options=options, providers=["CPUExecutionProvider"])
    return session.run(None, {session.get_inputs()[0].name: array})[0]


def compare_int8(gallery: Gallery) -> None:
    """Text tower: cosine to torch fp32 of each way of storing it, on the parity and gallery captions."""
    import torch
    from onnxruntime.quantization import QuantType, quantize_dynamic

    from model_training.starter import build

    print("\n6. text tower precision: worst / mean cosine to torch fp32 over the parity and gallery captions")
    tok = build.load_tokenizer()
    tower = build.TextTower(build.load_minilm(), tok.token_to_id("[PAD]")).eval()
    texts = build.PARITY_CAPTIONS + gallery.captions
    ids = build.tokenize(tok, texts)
    with torch.no_grad():
        reference = tower(ids).numpy()
    with tempfile.TemporaryDirectory() as tmp:
        fp32 = Path(tmp) / "fp32.onnx"
        build.export_onnx(tower, ids[:2], build.TEXTUAL_INPUT, fp32)
        variants = {"fp32 (ONNX)": fp32}
        for label, per_channel in (("dynamic int8, per tensor", False), ("dynamic int8, per channel", True)):
            out = Path(tmp) / f"dynamic{int(per_channel)}.onnx"
            quantize_dynamic(
                str(fp32), str(out), weight_type=QuantType.QInt8, op_types_to_quantize=["MatMul", "Gather"], per_channel=per_channel
            )
            variants[label] = out
        variants["int8 weights only (the pack)"] = Path(tmp) / "weights.onnx"
        build.quantize_int8(fp32, variants["int8 weights only (the pack)"])
        for label, path in variants.items():
            got = _run_onnx(path, ids.numpy())
            cos = (got * reference).sum(1) / np.linalg.norm(got, axis=1) / np.linalg.norm(reference, axis=1)
            worst = texts[int(cos.argmin())]
            print(
                f"  {label:<32} {path.stat().st_size / 2**20:5.1f} MiB  worst {cos.min():.4f} ({worst[:30]!r})  mean {cos.mean():.5f}"
            )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--packs", action="store_true", help="also build the prototype and default packs and measure them")
    parser.add_argument("--packs-only", action="store_true", help="only the real-pack comparison")
    parser.add_argument("--quick", action="store_true", help="a smaller sweep")
    parser.add_argument("--int8", action="store_true", help="only the text tower's int8 measurement")
    args = parser.parse_args(argv)
    gallery = load_gallery()
    if args.int8:
        compare_int8(gallery)
        return
    if not args.packs_only:
        results = sweep(gallery, quick=args.quick)
        print("\ntop 10 by R@1 + R@5 + MRR:")
        print(HEADER)
        for _score, label, t2i, i2i in sorted(results, key=lambda r: -r[0])[:10]:
            print(row(label, t2i, i2i))
    if args.packs or args.packs_only:
        compare_packs(gallery)


if __name__ == "__main__":
    main()
