"""Immich-layout CLIP repositories built the way Immich's exporter builds them, for tests.

Mirrors ``machine-learning/export/immich_model_exporter/exporters/onnx/models/openclip.py``
(and ``mclip.py`` for the multilingual text tower): the TorchScript ONNX exporter at opset 19
with no dynamic axes (batch fixed at 1), inputs named "image" and "text" (int32 ids; M-CLIP:
"input_ids" + "attention_mask", int32), output "embedding"; ``config.json`` is open_clip's model
config, ``visual/preprocess_cfg.json`` open_clip's preprocess config, and the tokenizer is a
Hugging Face tokenizer saved with ``transformers``' ``save_pretrained`` into ``textual/``.

Weights are random (``pretrained=None``) and the tokenizers are built offline: the OpenAI CLIP
BPE from the vocabulary open_clip ships, or a Unigram model trained here with ``tokenizers``.
"""

from __future__ import annotations

import json
import warnings
from dataclasses import dataclass
from pathlib import Path

IMMICH_OPSET = 19  # exporters/onnx/__init__.py: export(..., opset_version=19)


@dataclass
class BuiltRepo:
    path: Path
    model: object  # the torch module the ONNX graphs were exported from
    hf_tokenizer: object  # the transformers tokenizer saved into textual/
    context_length: int


def _save_config(config: dict, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(config, indent=2), encoding="utf-8")


def _export(module, args, path: Path, input_names: list[str]) -> None:
    import torch

    path.parent.mkdir(parents=True, exist_ok=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            module,
            args,
            path.as_posix(),
            input_names=input_names,
            output_names=["embedding"],
            opset_version=IMMICH_OPSET,
            dynamo=False,  # the exporter Immich's pinned torch used
        )


def clip_hf_tokenizer():
    """transformers' CLIPTokenizer with OpenAI's vocabulary (what openai/clip-vit-base-patch32 holds)."""
    from open_clip.tokenizer import SimpleTokenizer
    from transformers import CLIPTokenizer

    simple = SimpleTokenizer()
    rename = {"<start_of_text>": "<|startoftext|>", "<end_of_text>": "<|endoftext|>"}
    vocab = {rename.get(token, token): index for token, index in simple.encoder.items()}
    merges = [tuple(pair) for pair, _ in sorted(simple.bpe_ranks.items(), key=lambda kv: kv[1])]
    return CLIPTokenizer(vocab=vocab, merges=merges)


def build_openclip_repo(out: Path, arch: str = "ViT-B-32", seed: int = 0) -> BuiltRepo:
    """An Immich open_clip repository (e.g. immich-app/ViT-B-32__openai) with random weights."""
    import open_clip
    import torch

    out = Path(out)
    torch.manual_seed(seed)
    torch.backends.mha.set_fastpath_enabled(False)
    model = open_clip.create_model(arch, pretrained=None, jit=False)
    model.eval()
    for param in model.parameters():
        param.requires_grad_(False)
    config = open_clip.get_model_config(arch)
    image_size = config["vision_cfg"]["image_size"]
    context_length = config["text_cfg"].get("context_length", 77)

    _save_config(open_clip.get_model_preprocess_cfg(model), out / "visual" / "preprocess_cfg.json")
    _save_config(config, out / "config.json")

    class Visual(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.model = model

        def forward(self, image):
            return self.model.encode_image(image, normalize=True)

    class Textual(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.model = model

        def forward(self, text):
            return self.model.encode_text(text, normalize=True)

    _export(Visual(), (torch.randn(1, 3, image_size, image_size),), out / "visual" / "model.onnx", ["image"])
    tokenizer = clip_hf_tokenizer()
    tokenizer.save_pretrained(out / "textual")
    _export(Textual(), (torch.ones(1, context_length, dtype=torch.int32),), out / "textual" / "model.onnx", ["text"])
    return BuiltRepo(out, model, tokenizer, context_length)


# ---------------------------------------------------------------- multilingual (M-CLIP layout)

MULTILINGUAL_CORPUS = [
    "a photo of a cat sleeping on the sofa",
    "a dog running on the beach at sunset",
    "ein Foto von einer Katze auf dem Sofa",
    "ein Hund läuft am Strand",
    "une photo d'un chat sur le canapé",
    "un chien qui court sur la plage",
    "猫がソファで寝ている写真",
    "夕日の浜辺を走る犬",
    "一只猫在沙发上睡觉的照片",
    "海滩上奔跑的狗",
    "кошка спит на диване",
    "собака бежит по пляжу на закате",
    "قطة نائمة على الأريكة",
    "كلب يركض على الشاطئ",
    "एक बिल्ली सोफे पर सो रही है",
    "समुद्र तट पर दौड़ता कुत्ता",
    "소파에서 자는 고양이 사진",
    "해변을 달리는 개",
    "γάτα που κοιμάται στον καναπέ",
    "mountains covered in snow under a blue sky",
    "Berge mit Schnee unter blauem Himmel",
    "雪に覆われた山と青い空",
    "горы покрытые снегом",
    "a cup of coffee on a wooden table",
    "eine Tasse Kaffee auf einem Holztisch",
    "木のテーブルの上のコーヒー",
    "чашка кофе на деревянном столе",
    "an astronaut in a space suit",
    "宇宙服を着た宇宙飛行士",
    "астронавт в скафандре",
]


def train_unigram_xlmr_tokenizer(vocab_size: int = 400):
    """An XLM-R-style tokenizer (SentencePiece Unigram, <s> </s> <pad> <unk> <mask>) trained here."""
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, trainers
    from transformers import XLMRobertaTokenizer

    backend = Tokenizer(models.Unigram())
    backend.normalizer = normalizers.NFKC()
    backend.pre_tokenizer = pre_tokenizers.Metaspace()
    trainer = trainers.UnigramTrainer(
        vocab_size=vocab_size,
        special_tokens=["<s>", "<pad>", "</s>", "<unk>"],
        unk_token="<unk>",
        shrinking_factor=0.75,
    )
    backend.train_from_iterator(MULTILINGUAL_CORPUS * 4, trainer=trainer)
    vocab = json.loads(backend.to_str())["model"]["vocab"]
    pieces = [(piece, score) for piece, score in vocab if piece not in ("<s>", "<pad>", "</s>", "<unk>")]
    # XLM-R's order: <s>=0, <pad>=1, </s>=2, <unk>=3, the pieces, then <mask>
    full = [("<s>", 0.0), ("<pad>", 0.0), ("</s>", 0.0), ("<unk>", 0.0), *pieces, ("<mask>", 0.0)]
    return XLMRobertaTokenizer(vocab=full)


def build_mclip_repo(out: Path, visual_arch: str, seed: int = 0, context_length: int = 77) -> BuiltRepo:
    """An Immich M-CLIP repository (e.g. immich-app/XLM-Roberta-Large-Vit-B-16Plus) with random weights:
    an XLM-R-style text tower (mean pooling over the attention mask, a linear projection, L2
    normalisation, as multilingual_clip does) and the open_clip image tower of ``visual_arch``."""
    import open_clip
    import torch
    from transformers import XLMRobertaConfig, XLMRobertaModel

    out = Path(out)
    torch.manual_seed(seed)
    torch.backends.mha.set_fastpath_enabled(False)
    clip = open_clip.create_model(visual_arch, pretrained=None, jit=False).eval()
    config = open_clip.get_model_config(visual_arch)
    embed_dim = config["embed_dim"]
    tokenizer = train_unigram_xlmr_tokenizer()
    xlmr = XLMRobertaModel(
        XLMRobertaConfig(
            vocab_size=len(tokenizer),
            hidden_size=64,
            num_hidden_layers=2,
            num_attention_heads=2,
            intermediate_size=128,
            max_position_embeddings=context_length + 4,
            pad_token_id=tokenizer.pad_token_id,
        ),
        add_pooling_layer=False,
    ).eval()

    class MultilingualText(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.transformer = xlmr
            self.LinearTransformation = torch.nn.Linear(64, embed_dim)

        def forward(self, input_ids, attention_mask):
            embs = self.transformer(input_ids, attention_mask)[0]
            embs = (embs * attention_mask.unsqueeze(2)).sum(dim=1) / attention_mask.sum(dim=1)[:, None]
            embs = self.LinearTransformation(embs)
            return torch.nn.functional.normalize(embs, dim=-1)

    text = MultilingualText().eval()
    for module in (clip, text):
        for param in module.parameters():
            param.requires_grad_(False)

    _save_config(open_clip.get_model_preprocess_cfg(clip), out / "visual" / "preprocess_cfg.json")
    _save_config(config, out / "config.json")

    class Visual(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.model = clip

        def forward(self, image):
            return self.model.encode_image(image, normalize=True)

    size = config["vision_cfg"]["image_size"]
    _export(Visual(), (torch.randn(1, 3, size, size),), out / "visual" / "model.onnx", ["image"])
    tokenizer.save_pretrained(out / "textual")
    ones = torch.ones(1, context_length, dtype=torch.int32)
    _export(text, (ones, ones), out / "textual" / "model.onnx", ["input_ids", "attention_mask"])
    return BuiltRepo(out, {"clip": clip, "text": text}, tokenizer, context_length)
