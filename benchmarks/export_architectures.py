"""Export the architectures pixfind ships packs for, end to end, with random weights.

No checkpoint can be downloaded here, so each architecture is built with random weights,
saved as a full state dict (what the authors publish), and exported through the real
`pixfind export` path (checkpoint loading, ONNX export, tokenizer, verification against
open_clip). SigLIP's sentencepiece tokenizer cannot be downloaded either: a T5-style
stand-in with the same special tokens is trained locally and passed as --tokenizer, which
exercises the same code path the real tokenizer files take.

    python benchmarks/export_architectures.py --arch ViT-B-32 ViT-L-14-336 ViT-SO400M-14-SigLIP-384
"""

from __future__ import annotations

import argparse
import resource
import tempfile
import time
from pathlib import Path

import open_clip
import torch

from model_training.export import export_pack


def t5_like_tokenizer(out: Path) -> Path:
    """A Unigram + Metaspace fast tokenizer with T5's specials (<pad>=0, </s>=1, <unk>=2)."""
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.Unigram())
    tok.normalizer = normalizers.NFKC()
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always")
    tok.decoder = decoders.Metaspace(replacement="▁", prepend_scheme="always")
    words = "a photo of the dog cat on beach at sunset mountain snow city night red blue green car tower".split()
    corpus = [" ".join(words[(i * 7 + j) % len(words)] for j in range(8)) for i in range(300)]
    tok.train_from_iterator(corpus, trainers.UnigramTrainer(vocab_size=400, special_tokens=["<pad>", "</s>", "<unk>"], unk_token="<unk>"))
    tok.post_processor = processors.TemplateProcessing(single="$A </s>", special_tokens=[("</s>", 1)])
    PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="</s>", pad_token="<pad>", unk_token="<unk>").save_pretrained(str(out))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--arch", nargs="+", default=["ViT-B-32", "ViT-B-16", "ViT-L-14-336", "ViT-SO400M-14-SigLIP-384"])
    parser.add_argument("--precision", nargs="+", default=["fp32"], choices=["fp32", "fp16", "int8"])
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        for arch in args.arch:
            torch.manual_seed(0)
            model = open_clip.create_model(arch, pretrained=None)
            checkpoint = tmp / f"{arch}.pt"
            torch.save(model.state_dict(), checkpoint)
            del model
            cfg = open_clip.get_model_config(arch)
            tokenizer = t5_like_tokenizer(tmp / f"{arch}-tokenizer") if cfg["text_cfg"].get("hf_tokenizer_name") else None
            for precision in args.precision:
                out = tmp / f"{arch}-{precision}"
                start = time.perf_counter()
                manifest, result = export_pack(arch, out, checkpoint=checkpoint, tokenizer_path=tokenizer, precision=precision, log=print)
                seconds = time.perf_counter() - start
                size = sum(p.stat().st_size for p in out.iterdir())
                rows.append((arch, precision, manifest.embedding_dim, seconds, size, result.visual_min_cosine, result.textual_min_cosine, result.bound))
                print(f"{arch} {precision}: {seconds:.0f} s, {size / 2**20:.0f} MiB, cosine {result.visual_min_cosine:.6f} / {result.textual_min_cosine:.6f}", flush=True)
            checkpoint.unlink()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    print(f"\n{'architecture':<28}{'prec':<6}{'dim':>6}{'export s':>10}{'pack MiB':>10}{'image cos':>11}{'text cos':>10}{'bound':>8}")
    for arch, precision, dim, seconds, size, vis, txt, bound in rows:
        print(f"{arch:<28}{precision:<6}{dim:>6}{seconds:>10.0f}{size / 2**20:>10.0f}{vis:>11.6f}{txt:>10.6f}{bound:>8}")
    print(f"peak memory {peak:.1f} GiB")


if __name__ == "__main__":
    main()
