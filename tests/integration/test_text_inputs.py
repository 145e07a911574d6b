"""Text towers as Immich ships them: int32 ids, an attention-mask input, weights in one ONNX
external-data file per tensor, a fixed batch of one; and NLLB's language token.

The towers are small transformers exported by torch.onnx; the tokenizer is a BPE trained here
on a few multilingual sentences, laid out as the NLLB tokenizer's (Metaspace, language codes as
special tokens, ``eng_Latn $A </s>``), so open_clip's own HFTokenizer can load it as the reference.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from desktop_app.cli import main
from desktop_app.encoder import Encoder
from desktop_app.errors import PackError, PixfindError
from desktop_app.pack import ImageSettings, PackManifest, TextSettings, write_manifest
from model_training.onnx_export import export_onnx

LANGS = ["eng_Latn", "deu_Latn", "fra_Latn", "rus_Cyrl", "jpn_Jpan"]
CORPUS = [
    "a dog on the beach at sunset",
    "two cats sleeping on a red sofa",
    "ein Hund am Strand bei Sonnenuntergang",
    "zwei Katzen schlafen auf einem roten Sofa",
    "un chien sur la plage au coucher du soleil",
    "deux chats dorment sur un canapé rouge",
    "собака на пляже на закате",
    "две кошки спят на красном диване",
    "夕焼けの海辺の犬",
    "赤いソファで眠る二匹の猫",
]
CONTEXT = 24
PAD = 1
DIM = 16


def build_tokenizer(folder: Path) -> None:
    """An NLLB-style tokenizer.json (+ tokenizer_config.json for transformers' NllbTokenizer)."""
    from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers, processors, trainers

    tok = Tokenizer(models.BPE(unk_token="<unk>", fuse_unk=True))
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always", split=True)
    tok.decoder = decoders.Metaspace(replacement="▁", prepend_scheme="always", split=True)
    trainer = trainers.BpeTrainer(vocab_size=300, special_tokens=["<s>", "<pad>", "</s>", "<unk>"], show_progress=False)
    tok.train_from_iterator(CORPUS, trainer)
    tok.add_special_tokens([AddedToken(t, special=True, normalized=False) for t in [*LANGS, "<mask>"]])
    tok.post_processor = processors.TemplateProcessing(
        single="eng_Latn $A </s>",
        pair="eng_Latn $A $B </s>",
        special_tokens=[("eng_Latn", tok.token_to_id("eng_Latn")), ("</s>", tok.token_to_id("</s>"))],
    )
    folder.mkdir(parents=True, exist_ok=True)
    tok.save(str(folder / "tokenizer.json"))
    config = {
        "tokenizer_class": "NllbTokenizer",
        "src_lang": "eng_Latn",
        "bos_token": "<s>",
        "eos_token": "</s>",
        "sep_token": "</s>",
        "cls_token": "<s>",
        "pad_token": "<pad>",
        "unk_token": "<unk>",
        "mask_token": "<mask>",
        "additional_special_tokens": LANGS,
        "model_max_length": 1024,
    }
    (folder / "tokenizer_config.json").write_text(json.dumps(config), encoding="utf-8")


class TinyTextTower(torch.nn.Module):
    """Embedding + one masked self-attention block + mean pooling over the mask (as XLM-R M-CLIP)."""

    def __init__(self, vocab: int, width: int = 32, seed: int = 0):
        super().__init__()
        torch.manual_seed(seed)
        self.embedding = torch.nn.Embedding(vocab, width)
        self.position = torch.nn.Parameter(torch.randn(CONTEXT, width) * 0.1)
        self.qkv = torch.nn.Linear(width, 3 * width)
        self.out = torch.nn.Linear(width, width)
        self.mlp = torch.nn.Sequential(torch.nn.Linear(width, 2 * width), torch.nn.GELU(), torch.nn.Linear(2 * width, width))
        self.projection = torch.nn.Linear(width, DIM)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        ids = input_ids.long()
        mask = attention_mask.to(torch.float32)
        x = self.embedding(ids) + self.position[: ids.shape[1]]
        q, k, v = self.qkv(x).chunk(3, dim=-1)
        scores = q @ k.transpose(1, 2) / q.shape[-1] ** 0.5 + (1.0 - mask[:, None, :]) * -1e9
        x = x + self.out(torch.softmax(scores, dim=-1) @ v)
        x = x + self.mlp(x)
        pooled = (x * mask[..., None]).sum(1) / mask.sum(1, keepdim=True).clamp(min=1.0)
        return F.normalize(self.projection(pooled), dim=-1)


class ImmichStyleTower(torch.nn.Module):
    """Immich's open_clip export: one int32 input "text", the mask derived from the pad id inside."""

    def __init__(self, tower: TinyTextTower):
        super().__init__()
        self.tower = tower

    def forward(self, text: torch.Tensor) -> torch.Tensor:
        return self.tower(text, (text != PAD).to(torch.int32))


class TinyVisual(torch.nn.Module):
    def __init__(self):
        super().__init__()
        torch.manual_seed(1)
        self.linear = torch.nn.Linear(3 * 16 * 16, DIM)

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.linear(pixels.flatten(1)), dim=-1)


def _export_text(module: torch.nn.Module, path: Path, *, immich: bool) -> None:
    """Export, then store every weight in its own external-data file (as Immich's large towers do)."""
    import onnx

    ids = torch.full((1 if immich else 2, CONTEXT), PAD, dtype=torch.int32)
    ids[:, :4] = torch.tensor([5, 40, 41, 2], dtype=torch.int32)
    tmp = path.with_suffix(".tmp.onnx")
    if immich:  # as Immich's exporter: fixed batch of 1, fixed length, input "text"
        torch.onnx.export(module, (ids,), str(tmp), dynamo=False, input_names=["text"], output_names=["embedding"], opset_version=17)
    else:
        mask = (ids != PAD).to(torch.int32)
        axes = {0: "batch", 1: "sequence"}
        torch.onnx.export(
            module,
            (ids, mask),
            str(tmp),
            dynamo=False,
            input_names=["input_ids", "attention_mask"],
            output_names=["embedding"],
            dynamic_axes={"input_ids": axes, "attention_mask": axes, "embedding": {0: "batch"}},
            opset_version=17,
        )
    model = onnx.load(str(tmp))
    tmp.unlink()
    onnx.save_model(model, str(path), save_as_external_data=True, all_tensors_to_one_file=False, size_threshold=0)


def external_files(pack: Path) -> list[str]:
    known = {"visual.onnx", "textual.onnx", "tokenizer.json", "tokenizer_config.json", "pack.json"}
    return sorted(p.name for p in pack.iterdir() if p.name not in known and not p.name.startswith("."))


def build_pack(out: Path, *, immich: bool = False, **text_settings) -> Path:
    out.mkdir(parents=True)
    build_tokenizer(out)
    from tokenizers import Tokenizer

    vocab = Tokenizer.from_file(str(out / "tokenizer.json")).get_vocab_size(with_added_tokens=True)
    tower = TinyTextTower(vocab).eval()
    _export_text(ImmichStyleTower(tower) if immich else tower, out / "textual.onnx", immich=immich)
    export_onnx(TinyVisual().eval(), torch.randn(2, 3, 16, 16), "pixel_values", out / "visual.onnx")
    settings = dict(
        context_length=CONTEXT,
        clean="whitespace",
        pad_id=PAD,
        ids_dtype="int32",
        mask_input=None if immich else "attention_mask",
        sequence="fixed" if immich else "trim",
        language={"scheme": "flores200", "default": "eng_Latn"},
    )
    settings.update(text_settings)
    manifest = PackManifest(
        name=out.name,
        embedding_dim=DIM,
        precision="fp32",
        image=ImageSettings(size=(16, 16)),
        text=TextSettings(**settings),
        files={name: "" for name in ["tokenizer_config.json", *external_files(out)]},
    )
    write_manifest(out, manifest)
    torch.save(tower.state_dict(), out.parent / f"{out.name}.pt")  # the torch reference, outside the pack
    return out


def torch_reference(pack: Path, ids: np.ndarray) -> np.ndarray:
    from tokenizers import Tokenizer

    vocab = Tokenizer.from_file(str(pack / "tokenizer.json")).get_vocab_size(with_added_tokens=True)
    tower = TinyTextTower(vocab).eval()
    tower.load_state_dict(torch.load(pack.parent / f"{pack.name}.pt", weights_only=True))
    ids_t = torch.from_numpy(np.asarray(ids, dtype=np.int64))
    with torch.no_grad():
        return tower(ids_t, (ids_t != PAD).to(torch.int32)).numpy()


def open_clip_ids(pack: Path, texts: list[str], flores: str) -> np.ndarray:
    """open_clip's NLLB tokenisation of ``texts`` in language ``flores``: ``<flores> text </s>``.

    The language is given as the tokenizer's src_lang: open_clip's ``set_language`` sets the same
    post-processor, but transformers puts back ``src_lang``'s on every call (its input mode).
    """
    from open_clip.tokenizer import HFTokenizer

    return HFTokenizer(str(pack), context_length=CONTEXT, clean="whitespace", src_lang=flores)(texts).numpy()


@pytest.fixture(scope="module")
def mask_pack(tmp_path_factory) -> Path:
    return build_pack(tmp_path_factory.mktemp("multilingual") / "tiny-multilingual")


@pytest.fixture(scope="module")
def immich_pack(tmp_path_factory) -> Path:
    return build_pack(tmp_path_factory.mktemp("immich") / "tiny-immich", immich=True)


@pytest.fixture
def pack_copy(mask_pack, tmp_path) -> Path:
    target = tmp_path / "pack"
    shutil.copytree(mask_pack, target)
    return target


TEXTS = {
    "de": ["ein Hund am Strand", "zwei Katzen schlafen auf einem roten Sofa bei Sonnenuntergang am Strand"],
    "fr": ["un chien", "deux chats dorment sur un canapé rouge"],
    "ru": ["собака на пляже"],
    "ja": ["赤いソファで眠る二匹の猫"],
    "en": ["a dog", ""],
}


def cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)


def test_the_pack_keeps_one_external_data_file_per_weight(mask_pack):
    # The fixture is what it claims: several weights, each in its own file, all listed in pack.json.
    files = external_files(mask_pack)
    manifest = json.loads((mask_pack / "pack.json").read_text())
    assert len(files) >= 8 and set(files) <= set(manifest["files"])
    assert manifest["format_version"] == 2 and (mask_pack / "textual.onnx").stat().st_size < 20_000


@pytest.mark.parametrize("iso, flores", [("de", "deu_Latn"), ("fr", "fra_Latn"), ("ru", "rus_Cyrl"), ("ja", "jpn_Jpan"), ("en", "eng_Latn")])
def test_language_token_ids_match_open_clip_and_embeddings_match_torch(mask_pack, iso, flores):
    encoder = Encoder(mask_pack)
    texts = TEXTS[iso]
    expected = open_clip_ids(mask_pack, texts, flores)
    from tokenizers import Tokenizer

    language_token = Tokenizer.from_file(str(mask_pack / "tokenizer.json")).token_to_id(flores)
    assert (expected[:, 0] == language_token).all()  # the reference is what NLLB means: <lang> text </s>
    np.testing.assert_array_equal(encoder.tokenizer.encode(texts, language=flores), expected)
    by_iso, by_flores = encoder.encode_texts(texts, language=iso), encoder.encode_texts(texts, language=flores)
    np.testing.assert_allclose(by_iso, by_flores, atol=1e-6)
    # fp32 ONNX against fp32 torch on the same ids: only summation order differs
    assert cosines(by_iso, torch_reference(mask_pack, expected)).min() >= 0.9999


def test_the_language_token_reaches_the_tower(mask_pack):
    encoder = Encoder(mask_pack)
    german, french = encoder.encode_texts(["ein Hund"], language="de"), encoder.encode_texts(["ein Hund"], language="fr")
    assert cosines(german, french)[0] < 0.9999


def test_detected_language_is_used_when_none_is_given(mask_pack):
    encoder = Encoder(mask_pack)
    text = ["zwei Katzen schlafen auf einem roten Sofa"]
    np.testing.assert_allclose(encoder.encode_texts(text), encoder.encode_texts(text, language="de"), atol=1e-6)
    russian = ["две кошки спят на красном диване"]
    np.testing.assert_allclose(encoder.encode_texts(russian), encoder.encode_texts(russian, language="ru"), atol=1e-6)


def test_undetectable_text_falls_back_to_the_locale_then_the_default(mask_pack, monkeypatch):
    encoder = Encoder(mask_pack)
    for name in ("LC_ALL", "LC_MESSAGES"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("LANG", "fr_FR.UTF-8")
    np.testing.assert_allclose(encoder.encode_texts(["1234"]), encoder.encode_texts(["1234"], language="fr"), atol=1e-6)
    monkeypatch.setenv("LANG", "es_ES.UTF-8")  # Spanish: this model has no spa_Latn token -> its default
    np.testing.assert_allclose(encoder.encode_texts(["1234"]), encoder.encode_texts(["1234"], language="en"), atol=1e-6)


@pytest.mark.parametrize(
    "code, message",
    [
        ("xx", "unknown language code 'xx'"),
        ("klingon", "unknown language code 'klingon'"),
        ("deu_Xxxx", "unknown language code 'deu_Xxxx'"),
        ("es", "language 'spa_Latn' is not one this model knows"),
    ],
)
def test_unknown_language_code_is_one_line(mask_pack, code, message):
    with pytest.raises(PixfindError, match=message) as info:
        Encoder(mask_pack).encode_texts(["a dog"], language=code)
    assert "\n" not in str(info.value)


def test_trimmed_batches_give_each_row_its_own_embedding(mask_pack):
    encoder = Encoder(mask_pack)
    texts = ["a dog", "ein Hund am Strand bei Sonnenuntergang " * 6, "", "собака"]
    together = encoder.encode_texts(texts, language="de")
    alone = np.concatenate([encoder.encode_texts([t], language="de") for t in texts])
    np.testing.assert_allclose(together, alone, atol=1e-5)


def test_immich_style_graph_with_a_fixed_batch_of_one(immich_pack):
    encoder = Encoder(immich_pack)
    assert encoder.textual_session.get_inputs()[0].shape == [1, CONTEXT]
    texts = ["ein Hund am Strand", "zwei Katzen", "", "собака на пляже"]
    got = encoder.encode_texts(texts, language="de")
    ids = open_clip_ids(immich_pack, texts, "deu_Latn")
    assert got.shape == (4, DIM) and cosines(got, torch_reference(immich_pack, ids)).min() >= 0.9999


def test_install_index_and_search_through_the_cli(mask_pack, tmp_path, capsys):
    photos = tmp_path / "photos"
    photos.mkdir()
    rng = np.random.default_rng(0)
    for i in range(3):
        Image.fromarray(rng.integers(0, 255, (40, 50, 3), dtype=np.uint8)).save(photos / f"p{i}.jpg")
    assert main(["models", "import", str(mask_pack), "--name", "multi"]) == 0, capsys.readouterr().err
    assert main(["models", "verify", "multi"]) == 0, capsys.readouterr().err
    assert main(["index", str(photos), "--model", "multi"]) == 0, capsys.readouterr().err
    capsys.readouterr()
    assert main(["search", "ein Hund am Strand", "--model", "multi", "--all", "--json"]) == 0, capsys.readouterr().err
    detected = json.loads(capsys.readouterr().out)
    assert len(detected) == 3

    def scores(lang: str) -> dict[str, float]:
        assert main(["search", "ein Hund am Strand", "--model", "multi", "--all", "--json", "--lang", lang]) == 0
        return {row["path"]: row["score"] for row in json.loads(capsys.readouterr().out)}

    # --lang reaches the tower: the detected language (German) scores as --lang de does, French differently
    assert scores("de") == {row["path"]: row["score"] for row in detected}
    assert scores("fra_Latn") != scores("de")
    assert main(["search", "ein Hund", "--model", "multi", "--lang", "xx-nowhere"]) == 1
    err = capsys.readouterr().err
    assert "unknown language code 'xx-nowhere'" in err and err.count("\n") == 1


def _relocate(pack: Path, location: str) -> None:
    """Point the first external-data tensor of textual.onnx at ``location`` and re-record its sha256."""
    import onnx

    model = onnx.load(str(pack / "textual.onnx"), load_external_data=False)
    tensor = next(t for t in model.graph.initializer if t.data_location == onnx.TensorProto.EXTERNAL)
    next(e for e in tensor.external_data if e.key == "location").value = location
    onnx.save_model(model, str(pack / "textual.onnx"))
    manifest = json.loads((pack / "pack.json").read_text())
    from desktop_app.pack import sha256_file

    manifest["files"]["textual.onnx"] = sha256_file(pack / "textual.onnx")
    (pack / "pack.json").write_text(json.dumps(manifest))


@pytest.mark.parametrize(
    "location, message",
    [
        ("../outside.bin", "keeps its data in '../outside.bin', outside the model pack"),
        ("/etc/hostname", "keeps its data in '/etc/hostname', outside the model pack"),
        ("unlisted.bin", "keeps its data in 'unlisted.bin', which pack.json does not list"),
    ],
)
def test_external_data_outside_the_pack_or_unlisted_is_refused(pack_copy, location, message):
    (pack_copy / "unlisted.bin").write_bytes(b"\0" * 4096)
    (pack_copy.parent / "outside.bin").write_bytes(b"\0" * 4096)
    _relocate(pack_copy, location)
    with pytest.raises(PackError, match=message) as info:
        Encoder(pack_copy).encode_texts(["a dog"])
    assert "textual.onnx" in str(info.value) and "\n" not in str(info.value)


def test_external_data_through_a_symlink_out_of_the_pack_is_refused(pack_copy):
    listed = external_files(pack_copy)[0]
    outside = pack_copy.parent / "elsewhere.bin"
    shutil.move(pack_copy / listed, outside)
    (pack_copy / listed).symlink_to(outside)
    with pytest.raises(PackError, match="outside the model pack"):
        Encoder(pack_copy, verify=None).encode_texts(["a dog"])


def test_a_changed_external_data_file_is_refused_at_session_open(pack_copy):
    encoder = Encoder(pack_copy, lazy=True)
    victim = pack_copy / external_files(pack_copy)[0]
    victim.write_bytes(bytes(len(victim.read_bytes())))
    with pytest.raises(PackError, match="changed since the pack was opened"):
        encoder.encode_texts(["a dog"])


@pytest.mark.parametrize(
    "change, message",
    [
        ({"mask_input": "token_type_ids"}, "has no input named 'token_type_ids'"),
        ({"mask_input": None}, "takes one input"),
        ({"ids_dtype": "int64"}, "takes tensor\\(int32\\), but pack.json says the token ids are int64"),
    ],
)
def test_text_inputs_must_match_pack_json(pack_copy, change, message):
    manifest = json.loads((pack_copy / "pack.json").read_text())
    manifest["text"].update(change)
    (pack_copy / "pack.json").write_text(json.dumps(manifest))
    with pytest.raises(PackError, match=message):
        Encoder(pack_copy)


def test_trim_needs_a_dynamic_sequence_axis(immich_pack, tmp_path):
    pack = tmp_path / "pack"
    shutil.copytree(immich_pack, pack)
    manifest = json.loads((pack / "pack.json").read_text())
    manifest["text"]["sequence"] = "trim"
    (pack / "pack.json").write_text(json.dumps(manifest))
    with pytest.raises(PackError, match="sequence axis is fixed at 24, but pack.json says sequence 'trim'"):
        Encoder(pack)


def test_a_tokenizer_without_the_default_language_token_first_is_refused(pack_copy):
    manifest = json.loads((pack_copy / "pack.json").read_text())
    manifest["text"]["language"]["default"] = "deu_Latn"
    (pack_copy / "pack.json").write_text(json.dumps(manifest))
    with pytest.raises(PackError, match="does not start texts with the language token 'deu_Latn'"):
        Encoder(pack_copy).encode_texts(["a dog"])


# --------------------------------------------------------------------------- language codes


@pytest.mark.parametrize(
    "code, flores",
    [("de", "deu_Latn"), ("DE", "deu_Latn"), ("de-AT", "deu_Latn"), ("pt_BR", "por_Latn"), ("zh", "zho_Hans"),
     ("zh-TW", "zho_Hant"), ("zh-Hant", "zho_Hant"), ("ja", "jpn_Jpan"), ("ar", "arb_Arab"), ("ceb", "ceb_Latn"),
     ("deu_Latn", "deu_Latn"), (" fr ", "fra_Latn")],
)
def test_language_codes_map_to_flores200(code, flores):
    from desktop_app.language import to_flores200

    assert to_flores200(code) == flores


def test_the_language_tables_name_only_nllb_languages():
    from transformers.models.nllb.tokenization_nllb import FAIRSEQ_LANGUAGE_CODES

    from desktop_app.language import ISO639_1_TO_FLORES200, NLLB_CODES

    assert list(NLLB_CODES) == list(FAIRSEQ_LANGUAGE_CODES)
    assert set(ISO639_1_TO_FLORES200.values()) <= set(NLLB_CODES)


@pytest.mark.parametrize("code", ["jpn_Hira", "english", "", "d", "de--", "x" * 500])
def test_unknown_codes_are_one_line_errors(code):
    from desktop_app.language import to_flores200

    with pytest.raises(PixfindError, match="unknown language code") as info:
        to_flores200(code)
    assert "\n" not in str(info.value) and len(str(info.value)) < 200
