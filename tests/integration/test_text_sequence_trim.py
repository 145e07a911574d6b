"""Text towers that stop at the end-of-text token ("sequence": "trim", pack format 2).

A random-weight open_clip ViT-B-32 goes through the real export path (`export_pack`): its text
tower is exported with a dynamic token axis and the app feeds each batch only up to its longest
text. A SigLIP text tower (bidirectional attention, pooled at the last position) is exported
fixed, because padding changes its output. A format-1 pack (fixed graph, no new fields) still
loads and gives the same embeddings.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import open_clip
import pytest
import torch

from desktop_app.encoder import Encoder
from desktop_app.pack import TEXTUAL_FILE, read_manifest, sha256_file
from model_training.export import export_pack
from model_training.onnx_export import TEXTUAL_INPUT, _TextualTower, export_onnx

# fp32 ONNX against fp32 torch on the same ids: only summation order differs (the export bound).
MIN_COSINE = 0.9999

MIXED = [
    "a red car",
    "",
    "a photo of two dogs playing in the snow next to a wooden cabin under a bright blue winter sky",
    " ".join(["a very long caption that goes on and on"] * 12),  # truncated at 77 tokens
    "東京タワーの夜景",
    "Шахматная доска на деревянном столе",
    "قطة على النافذة",
    "👍🏽 🏳️‍🌈 emoji",
    "it's a bird... it's a plane...",
]


def cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)


@pytest.fixture(scope="module")
def vit_b32(tmp_path_factory):
    """ViT-B-32 with seeded random weights, exported by `export_pack`, and the same torch model."""
    out = tmp_path_factory.mktemp("vitb32") / "vitb32"
    torch.manual_seed(0)
    manifest, result = export_pack("ViT-B-32", out, name="vitb32", calibrate=False)
    torch.manual_seed(0)
    model = open_clip.create_model("ViT-B-32", pretrained=None).eval()
    return out, manifest, result, model


def open_clip_text(model, texts: list[str], name: str = "ViT-B-32") -> np.ndarray:
    with torch.no_grad():
        return model.encode_text(open_clip.get_tokenizer(name)(texts), normalize=True).numpy()


def test_clip_is_exported_trimmed_and_verified(vit_b32):
    pack, manifest, result, _ = vit_b32
    assert manifest.format_version == 2 and manifest.text.sequence == "trim"
    assert result.textual_min_cosine >= MIN_COSINE
    on_disk = json.loads((pack / "pack.json").read_text())
    assert on_disk["format_version"] == 2 and on_disk["text"]["sequence"] == "trim"
    shape = Encoder(pack, lazy=True).textual_session.get_inputs()[0].shape
    assert isinstance(shape[1], str)  # the token axis is dynamic


def test_trimmed_batches_match_open_clip(vit_b32):
    pack, _, _, model = vit_b32
    encoder = Encoder(pack)
    reference = open_clip_text(model, MIXED)
    batch = encoder.encode_texts(MIXED)
    alone = np.concatenate([encoder.encode_texts([t]) for t in MIXED])
    assert cosines(batch, reference).min() >= MIN_COSINE
    assert cosines(alone, reference).min() >= MIN_COSINE
    for size in (2, 3):  # batches of neighbours of different lengths
        assert cosines(encoder.encode_texts(MIXED, batch_size=size), reference).min() >= MIN_COSINE


def test_a_query_costs_only_its_tokens(vit_b32):
    pack, _, _, _ = vit_b32
    encoder = Encoder(pack)
    tokens = encoder.tokenizer.tokenize(["a red car"])
    assert tokens.lengths.tolist() == [5]  # <start_of_text> a red car <end_of_text>
    session = encoder.textual_session
    (direct,) = session.run(None, {session.get_inputs()[0].name: tokens.ids[:, :5]})
    np.testing.assert_allclose(encoder.encode_texts(["a red car"]), direct, atol=1e-6)


def test_a_format_1_pack_still_loads_and_gives_the_same_embeddings(vit_b32, tmp_path):
    """A pack as pixfind wrote it before format 2: the text graph fixed at 77 tokens, pack.json format 1."""
    pack, _, _, model = vit_b32
    old = tmp_path / "old"
    shutil.copytree(pack, old)
    ids = torch.zeros(2, 77, dtype=torch.long)
    ids[:, 0], ids[:, 1], ids[:, 2] = 1, 2, 3
    export_onnx(_TextualTower(model.float().eval()), ids, TEXTUAL_INPUT, old / TEXTUAL_FILE)
    manifest = json.loads((old / "pack.json").read_text())
    manifest["format_version"] = 1
    for key in ("ids_dtype", "mask_input", "sequence", "language"):
        del manifest["text"][key]
    manifest["files"][TEXTUAL_FILE] = sha256_file(old / TEXTUAL_FILE)
    (old / "pack.json").write_text(json.dumps(manifest, indent=2))

    loaded = read_manifest(old)
    assert loaded.format_version == 1 and loaded.text.sequence == "fixed"
    encoder = Encoder(old)
    assert encoder.textual_session.get_inputs()[0].shape[1] == 77
    old_emb, new_emb = encoder.encode_texts(MIXED), Encoder(pack).encode_texts(MIXED)
    assert cosines(old_emb, new_emb).min() >= MIN_COSINE
    assert cosines(old_emb, open_clip_text(model, MIXED)).min() >= MIN_COSINE


# --------------------------------------------------------------------------- SigLIP

SIGLIP_CONTEXT = 16


def _siglip_tokenizer(folder: Path) -> int:
    """A SentencePiece-style (Unigram, Metaspace) tokenizer as SigLIP's: ``text </s>``, padded with <pad>."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers

    tok = Tokenizer(models.Unigram())
    tok.pre_tokenizer = pre_tokenizers.Metaspace()
    tok.decoder = decoders.Metaspace()
    corpus = [t for t in MIXED if t] + ["a dog on a beach", "two cats on a sofa", "mountains with snow"]
    trainer = trainers.UnigramTrainer(vocab_size=200, special_tokens=["<pad>", "</s>", "<unk>"], unk_token="<unk>", show_progress=False)
    tok.train_from_iterator(corpus, trainer)
    tok.post_processor = processors.TemplateProcessing(single="$A </s>", special_tokens=[("</s>", tok.token_to_id("</s>"))])
    folder.mkdir(parents=True)
    tok.save(str(folder / "tokenizer.json"))
    config = {"tokenizer_class": "PreTrainedTokenizerFast", "pad_token": "<pad>", "eos_token": "</s>", "unk_token": "<unk>"}
    (folder / "tokenizer_config.json").write_text(json.dumps(config))
    return tok.get_vocab_size()


@pytest.fixture(scope="module")
def siglip(tmp_path_factory):
    """A small model whose text tower is open_clip's SigLIP text tower (config as ViT-B-16-SigLIP's text_cfg)."""
    root = tmp_path_factory.mktemp("siglip")
    vocab = _siglip_tokenizer(root / "tokenizer")
    config = {
        "embed_dim": 32,
        "custom_text": True,
        "init_logit_bias": -10,
        "vision_cfg": {"image_size": 32, "layers": 1, "width": 32, "head_width": 16, "patch_size": 8},
        "text_cfg": {
            "context_length": SIGLIP_CONTEXT,
            "vocab_size": vocab,
            "hf_tokenizer_name": str(root / "tokenizer"),
            "tokenizer_kwargs": {"clean": "canonicalize"},
            "width": 32,
            "heads": 2,
            "layers": 2,
            "no_causal_mask": True,
            "proj_bias": True,
            "pool_type": "last",
            "norm_kwargs": {"eps": 1e-6},
        },
    }
    arch = root / "tiny-sigtext.json"
    arch.write_text(json.dumps(config))
    torch.manual_seed(0)
    manifest, result = export_pack(str(arch), root / "pack", tokenizer_path=root / "tokenizer", name="sigtext", calibrate=False)
    torch.manual_seed(0)
    model = open_clip.create_model("tiny-sigtext", pretrained=None).eval()
    tokenizer = open_clip.tokenizer.HFTokenizer(str(root / "tokenizer"), context_length=SIGLIP_CONTEXT, clean="canonicalize")
    return root / "pack", manifest, result, model, tokenizer


def test_siglip_text_tower_stays_fixed_and_matches_open_clip(siglip):
    pack, manifest, result, model, tokenizer = siglip
    assert manifest.text.sequence == "fixed" and result.textual_min_cosine >= MIN_COSINE
    encoder = Encoder(pack)
    with torch.no_grad():
        reference = model.encode_text(tokenizer(MIXED), normalize=True).numpy()
    assert cosines(encoder.encode_texts(MIXED), reference).min() >= MIN_COSINE
    assert cosines(np.concatenate([encoder.encode_texts([t]) for t in MIXED]), reference).min() >= MIN_COSINE


def test_siglip_output_depends_on_the_padding(siglip):
    """Why SigLIP is not trimmed: cut after its last token, a text's embedding changes."""
    _, _, _, model, tokenizer = siglip
    ids = tokenizer(["a dog on a beach"])
    length = int((ids != tokenizer.tokenizer.pad_token_id).sum())
    with torch.no_grad():
        full = model.encode_text(ids, normalize=True).numpy()
        cut = model.encode_text(ids[:, :length], normalize=True).numpy()
    assert cosines(full, cut)[0] < MIN_COSINE
