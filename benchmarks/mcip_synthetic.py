"""The MCIP paper's experiment in miniature, offline on a CPU: base CLIP, GPR-FT, realignment, MCIP.

Data (model_training.synthetic): drawn objects whose captions name size, colour, shape and
background but never the fill pattern, while the fine classes differ in that pattern.
(1) A small CLIP is trained from scratch on captioned draws of every object (its "web");
(2) GPR-FT fine-tunes its image tower with ArcFace on the training fine classes; (3) realignment
re-trains the last 16 text-tower tensors on cached image embeddings of the web set; (4) MCIP
fine-tunes with ArcFace plus the multi-caption loss on pseudo-captions the base CLIP retrieves
from a caption corpus; (5) MCIP + realignment. Columns: I2I mAP (GPR1200 protocol) and k-NN
accuracy (k=21) on colour-shape pairs held out with all their patterns; T2I Recall@1/5 and
zero-shot accuracy (colour-shape names x the 80 OpenAI templates) on a separate captioned test
draw of every object, as Flickr30k/COCO are separate from the I2I sets in the paper. The best
model is exported to a pack and scored again through the app's Encoder (parity).

    .venv/bin/python benchmarks/mcip_synthetic.py [--out DIR] [--scale 0.5]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import open_clip
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from model_training import synthetic
from model_training.data.datasets import ImageDataset, collate
from model_training.data.transforms import train_transform
from model_training.distributed import DistInfo
from model_training.evaluation import metrics
from model_training.evaluation.embedders import (
    PackEmbedder,
    TorchEmbedder,
    openai_templates,
    zero_shot_classifier,
)
from model_training.feature_cache import (
    CachedPairs,
    build_feature_cache,
    image_caption_collate,
    pair_collate,
)
from model_training.open_clip_models import eval_transform, resolve_arch
from model_training.pseudo_captions import retrieve
from model_training.runs import fit, save_clip
from model_training.tasks import (
    CaptionBank,
    ClipPretrain,
    GPRFineTune,
    MCIPFineTune,
    Realign,
)
from model_training.trainer.loop import LoopConfig

CONFIG = ROOT / "model_training" / "configs" / "synthetic-vit.json"
SETTINGS = ROOT / "model_training" / "configs" / "synthetic-benchmark.yaml"
SEED = 0


def settings(scale: float, path: Path = SETTINGS) -> dict:
    """The shipped settings, every stage's epochs multiplied by ``scale`` (at least 1)."""
    import yaml

    cfg = yaml.safe_load(path.read_text())
    for stage in ("pretrain", "finetune", "realign"):
        cfg[stage]["epochs"] = max(1, round(cfg[stage]["epochs"] * scale))
    return cfg


class Benchmark:
    def __init__(self, out: Path, scale: float):
        self.out, self.cfg = out, settings(scale)
        self.arch, _ = resolve_arch(str(CONFIG))
        self.tokenizer = open_clip.get_tokenizer(self.arch)
        self.dist = DistInfo()
        d = self.cfg["data"]
        train_c, val_c, test_c = synthetic.split_classes(SEED, d["val_pairs"], d["test_pairs"])
        self.web = synthetic.make_set(synthetic.all_classes(), d["per_class_pretrain"], seed=5, size=d["image_size"])
        self.train = synthetic.make_set(train_c, d["per_class_train"], seed=1, size=d["image_size"])
        self.val = synthetic.make_set(val_c, d["per_class_eval"], seed=2, size=d["image_size"])
        self.test = synthetic.make_set(test_c, d["per_class_eval"], seed=3, size=d["image_size"])
        self.test_gallery = synthetic.make_set(test_c, d["per_class_eval"], seed=4, size=d["image_size"])
        # captioned sets of every object, as Flickr30k / COCO are for the paper's T2I and ZS columns
        everything = synthetic.all_classes()
        self.web_val = synthetic.make_set(everything, d["per_class_web_eval"], seed=6, size=d["image_size"])
        self.web_test = synthetic.make_set(everything, d["per_class_web_eval"], seed=7, size=d["image_size"])

    # ------------------------------------------------------------------ evaluation
    def t2i_queries(self, data: synthetic.SyntheticSet):
        """Every training phrasing of every description present; relevant = the images it describes."""
        groups: dict[tuple, list[int]] = {}
        for i in range(len(data.labels)):
            groups.setdefault(data.describable(i), []).append(i)
        texts, relevant = [], []
        for (z, c, s, b), members in sorted(groups.items()):
            for t in synthetic.CAPTION_TEMPLATES:
                texts.append(t.format(z=z, c=c, s=s, b=b))
                relevant.append(members)
        return texts, relevant

    def scores(self, embedder, full: bool = True) -> dict:
        test_f = embedder.encode_images(list(self.test.images))
        web_f = embedder.encode_images(list(self.web_test.images))
        texts, relevant = self.t2i_queries(self.web_test)
        recall = metrics.text_to_image_recall(embedder.encode_texts(texts), web_f, relevant, ks=(1, 5))
        out = {"I2I mAP": metrics.all_vs_all_map(test_f, self.test.labels), "T2I R@1": recall[1], "T2I R@5": recall[5]}
        if full:
            gallery_f = embedder.encode_images(list(self.test_gallery.images))
            out["kNN acc"] = metrics.knn_accuracy(test_f, self.test.labels, gallery_f, self.test_gallery.labels, k=21)
            pairs = sorted({c.caption_class for c in self.web_test.classes})
            pair_labels = [pairs.index(self.web_test.caption_class_of(i)) for i in range(len(self.web_test.labels))]
            classifier = zero_shot_classifier(embedder, pairs, openai_templates())
            out["ZS acc"] = metrics.zero_shot_accuracy(web_f, pair_labels, classifier)
        return out

    def validator(self, clip):
        embedder = TorchEmbedder(clip, self.tokenizer)

        def evaluate() -> dict:
            f = embedder.encode_images(list(self.val.images))
            web_f = embedder.encode_images(list(self.web_val.images))
            texts, relevant = self.t2i_queries(self.web_val)
            r = metrics.text_to_image_recall(embedder.encode_texts(texts), web_f, relevant, ks=(1, 5))
            m = {"val_i2i_map": metrics.all_vs_all_map(f, self.val.labels), "val_t2i_r1": r[1], "val_t2i_r5": r[5]}
            m["val_mean"] = (m["val_i2i_map"] + m["val_t2i_r1"]) / 2
            return m
        return evaluate

    # ------------------------------------------------------------------ stages
    def loop(self, epochs: int, eval_every: int = 0) -> LoopConfig:
        return LoopConfig(epochs=epochs, grad_clip=1.0, log_every=20, eval_every=eval_every, patience=0, progress=False)

    def load(self, path: Path):
        model = open_clip.create_model(self.arch, pretrained=None)
        model.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
        return model

    def pretrain(self) -> Path:
        torch.manual_seed(SEED)
        clip = open_clip.create_model(self.arch, pretrained=None)
        data = ImageDataset(self.web.images, train_transform(clip, color_jitter=0.0), captions=[[c] for c in self.web.captions])
        optim = {k: v for k, v in self.cfg["pretrain"].items() if k != "epochs"}
        res = fit(ClipPretrain(clip), data, image_caption_collate(self.tokenizer), out_dir=self.out / "base",
                  batch_size=self.cfg["batch"], optim=optim, loop=self.loop(self.cfg["pretrain"]["epochs"]),
                  dist=self.dist, save_model=save_clip(clip), seed=SEED)
        return res.best_path

    def finetune(self, base: Path, name: str, pseudo: list[list[str]] | None = None) -> Path:
        torch.manual_seed(SEED)
        clip = self.load(base)
        ft, loss = self.cfg["finetune"], self.cfg["finetune"]["loss"]
        data_captions = None
        if pseudo is None:
            module = GPRFineTune(clip, len(self.train.classes), clip.visual.output_dim, loss["scale"], loss["margin"])
        else:
            unique = sorted({c for caps in pseudo for c in caps})
            index = {c: i for i, c in enumerate(unique)}
            data_captions = [[index[c] for c in caps] for caps in pseudo]
            module = MCIPFineTune(clip, len(self.train.classes), clip.visual.output_dim,
                                  CaptionBank.encode(clip, self.tokenizer, unique), **loss)
        data = ImageDataset(self.train.images, train_transform(clip, color_jitter=ft["color_jitter"]),
                            labels=self.train.labels, captions=data_captions)
        steps = len(data) // self.cfg["batch"]
        optim = {k: v for k, v in ft["optim"].items() if k != "proxy_lr_mult"}
        optim["lr_multipliers"] = {"loss.": ft["optim"]["proxy_lr_mult"]}
        res = fit(module, data, collate, out_dir=self.out / name, batch_size=self.cfg["batch"], optim=optim,
                  loop=self.loop(ft["epochs"], eval_every=max(1, steps // ft["evals_per_epoch"])), dist=self.dist,
                  save_model=save_clip(clip), seed=SEED, evaluate=self.validator(clip), select="val_i2i_map")
        return res.best_path

    def realign(self, start: Path, name: str) -> Path:
        torch.manual_seed(SEED)
        clip = self.load(start)
        # the caption data of realignment is the "web" set, as CC12M is for the paper
        images = ImageDataset(self.web.images, eval_transform(clip))
        features = build_feature_cache(clip, images, self.out / name / "features", fingerprint=str(start), chunk_size=4096)
        pairs = CachedPairs(features, [[c] for c in self.web.captions])
        ra = self.cfg["realign"]
        module = Realign(clip, ra["unlocked_text_tensors"])
        res = fit(module, pairs, pair_collate(self.tokenizer), out_dir=self.out / name, batch_size=ra["batch"],
                  optim=ra["optim"], loop=self.loop(ra["epochs"], eval_every=ra["eval_every"]), dist=self.dist,
                  save_model=save_clip(clip), seed=SEED, evaluate=self.validator(clip), select="val_t2i_r1")
        return res.best_path

    def pseudo_captions(self, base: Path) -> list[list[str]]:
        """Retrieved, not generated: the base CLIP ranks a caption corpus against every training image."""
        embedder = TorchEmbedder(self.load(base), self.tokenizer)
        corpus = synthetic.caption_corpus()
        hits = retrieve(embedder.encode_images(list(self.train.images)), embedder.encode_texts(corpus),
                        self.cfg["pseudo_captions"]["top_k"], self.cfg["pseudo_captions"]["threshold"])
        captions = [[corpus[i] for i, _ in row] for row in hits]
        def names_it(i: int, caption: str) -> bool:
            words = set(caption.replace(".", " ").replace(",", " ").replace(":", " ").split())
            return all(w in words for w in self.train.describable(i))

        correct = np.mean([np.mean([names_it(i, c) for c in caps]) if caps else 0.0 for i, caps in enumerate(captions)])
        self.pseudo_stats = {"mean captions per image": float(np.mean([len(c) for c in captions])),
                             "images without captions": int(sum(not c for c in captions)),
                             "share naming size, colour, shape and background right": float(correct)}
        return captions


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=None, help="work directory (default: a temporary one)")
    ap.add_argument("--scale", type=float, default=1.0, help="multiply every stage's epochs (0.25 for a smoke run)")
    ap.add_argument("--threads", type=int, default=1,
                    help="torch threads (1 is fastest on a shared machine: 2 threads oversubscribe badly under load)")
    ap.add_argument("--json", type=Path, default=None, help="also write the results here")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    t0 = time.time()
    with tempfile.TemporaryDirectory() as tmp:
        out = args.out or Path(tmp)
        bench = Benchmark(out, args.scale)
        times, rows, paths = {}, {}, {}

        def stage(name, fn, *a):
            s = time.time()
            result = fn(*a)
            times[name] = time.time() - s
            print(f"[{time.time() - t0:6.0f}s] {name}: {times[name]:.0f}s", flush=True)
            return result

        paths["CLIP (from scratch)"] = stage("CLIP pre-training", bench.pretrain)
        base = paths["CLIP (from scratch)"]
        paths["+ GPR-FT"] = stage("GPR-FT", bench.finetune, base, "gpr-ft")
        paths["+ GPR-FT + Re-A"] = stage("GPR-FT realignment", bench.realign, paths["+ GPR-FT"], "gpr-ft-realign")
        pseudo = stage("pseudo-captions", bench.pseudo_captions, base)
        print("pseudo-captions:", json.dumps(bench.pseudo_stats), flush=True)
        paths["+ MCIP"] = stage("MCIP", bench.finetune, base, "mcip", pseudo)
        paths["+ MCIP + Re-A"] = stage("MCIP realignment", bench.realign, paths["+ MCIP"], "mcip-realign")
        for name, path in paths.items():
            rows[name] = bench.scores(TorchEmbedder(bench.load(path), bench.tokenizer))
        print_table(rows)
        best = max(rows, key=lambda n: rows[n]["I2I mAP"] + rows[n]["T2I R@5"] + rows[n]["T2I R@1"])
        parity = export_and_check(bench, paths[best], out / "pack", rows[best])
        total = time.time() - t0
        print(f"\nbest: {best}; exported pack parity: {json.dumps(parity)}")
        print(f"total time: {total:.0f}s ({', '.join(f'{k} {v:.0f}s' for k, v in times.items())})")
        if args.json:
            args.json.write_text(json.dumps({"rows": rows, "best": best, "parity": parity, "seconds": total,
                                             "stages": times, "pseudo_captions": bench.pseudo_stats}, indent=2))
    return 0


def print_table(rows: dict) -> None:
    cols = ["I2I mAP", "kNN acc", "T2I R@1", "T2I R@5", "ZS acc"]
    print("\n| model | " + " | ".join(cols) + " |")
    print("|---|" + "---|" * len(cols))
    for name, r in rows.items():
        print(f"| {name} | " + " | ".join(f"{100 * r[c]:.1f}" for c in cols) + " |")


def export_and_check(bench: Benchmark, checkpoint: Path, pack_dir: Path, torch_scores: dict) -> dict:
    """Export through the app's pack writer, then score the pack with the app's Encoder."""
    from model_training.export import export_pack

    export_pack(str(CONFIG), pack_dir, checkpoint=checkpoint, name="mcip-synthetic")
    pack = PackEmbedder(pack_dir)
    ref = TorchEmbedder(bench.load(checkpoint), bench.tokenizer)
    imgs = list(bench.test.images[:64])
    texts = bench.t2i_queries(bench.web_test)[0][:64]
    img_cos = float(np.min(np.sum(pack.encode_images(imgs) * ref.encode_images(imgs), axis=1)))
    txt_cos = float(np.min(np.sum(pack.encode_texts(texts) * ref.encode_texts(texts), axis=1)))
    pack_scores = bench.scores(pack, full=False)
    return {"min image cosine": round(img_cos, 6), "min text cosine": round(txt_cos, 6),
            **{f"pack {k}": round(v, 4) for k, v in pack_scores.items()},
            **{f"torch {k}": round(torch_scores[k], 4) for k in pack_scores}}


if __name__ == "__main__":
    sys.exit(main())
