"""TextTokenizer's edges that the parity tests do not reach: pack.json text options against the
tokenizer file (context length, padding side, truncation, trim, language), the one-line errors for
what cannot work, and NLLB-style language tokens.

The CLIP tokenizer is open_clip's own vocabulary (its bundled ``bpe_simple_vocab_16e6.txt.gz``)
built by ``desktop_app.clip_bpe`` as the pack exporter does; the NLLB-style one is a small BPE
trained here, laid out as NLLB's (language codes as special tokens, ``eng_Latn $A </s>``).
"""

from __future__ import annotations

import importlib.util
import json
import re
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from tokenizers import AddedToken, Tokenizer, models, pre_tokenizers, processors, trainers

from desktop_app import clip_bpe
from desktop_app.errors import PackError, PixfindError, one_line
from desktop_app.pack import TextSettings
from desktop_app.text_tokenizer import TextTokenizer, clean_text

SOT, EOT = 49406, 49407
A_DOG = [SOT, 320, 1929, EOT]  # open_clip's ViT-B-32 tokenizer: "a dog" -> <start_of_text> a dog <end_of_text>
LONG = " ".join(f"w{i}" for i in range(12))  # about 30 BPE ids: whole in 77, truncated in 8


def _write(folder: Path, tok: Tokenizer, edit=None) -> Path:
    """Save ``tok`` as folder/tokenizer.json, after ``edit(data)`` changes its JSON."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "tokenizer.json"
    tok.save(str(path))
    if edit is not None:
        data = json.loads(path.read_text(encoding="utf-8"))
        edit(data)
        path.write_text(json.dumps(data), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def clip_tok() -> Tokenizer:
    spec = importlib.util.find_spec("open_clip")
    vocab = Path(spec.submodule_search_locations[0]) / "bpe_simple_vocab_16e6.txt.gz"
    return clip_bpe.from_vocabulary_file(vocab, context_length=77)


@pytest.fixture(scope="module")
def clip_file(clip_tok, tmp_path_factory) -> Path:
    return _write(tmp_path_factory.mktemp("clip"), clip_tok)


def clip_settings(**changes) -> TextSettings:
    return replace(TextSettings(context_length=77, clean="lower", pad_id=0), **changes)


def _body(clip_file: Path, text: str) -> list[int]:
    """The BPE ids of ``text`` without the specials (from a 77-token encoding)."""
    ids = TextTokenizer(clip_file, clip_settings()).encode(text)[0].tolist()
    assert ids[-1] == 0  # padded: the whole text fits
    return ids[1 : ids.index(EOT)]


# --------------------------------------------------------------------------- context length


def test_context_length_two_holds_just_the_start_and_end_tokens(clip_file):
    # open_clip: [sot, ...text, eot][:2] with the last id set to <end_of_text>, for plain texts and
    # for texts with a literal special token alike
    tokens = TextTokenizer(clip_file, clip_settings(context_length=2)).tokenize(["a dog", "x <end_of_text> y"])
    assert tokens.ids.tolist() == [[SOT, EOT], [SOT, EOT]]
    assert tokens.lengths.tolist() == [2, 2]


@pytest.mark.parametrize("length", [0, -5])
def test_context_length_must_be_positive(clip_file, length):
    with pytest.raises(PackError) as info:
        TextTokenizer(clip_file, clip_settings(context_length=length))
    assert str(info.value) == f"{clip_file}: text context_length {length} is not positive"


def test_context_length_one_is_too_short_for_the_clip_specials(clip_file):
    with pytest.raises(PackError) as info:
        TextTokenizer(clip_file, clip_settings(context_length=1))
    assert str(info.value) == f"{clip_file}: context_length 1 is too short for the special tokens"


def test_clip_tokenizer_needs_both_specials_whatever_its_post_processor(clip_tok, tmp_path):
    # Texts with a literal <end_of_text> get <start_of_text> and <end_of_text> from TextTokenizer
    # itself, so a CLIP vocabulary needs room for two even in a file without a post-processor.
    path = _write(tmp_path, clip_tok, lambda data: data.update(post_processor=None))
    with pytest.raises(PackError, match="context_length 1 is too short for the special tokens"):
        TextTokenizer(path, clip_settings(context_length=1))


def test_impossible_context_length_is_one_line_with_the_librarys_reason(clip_file):
    huge = 2**70  # more than any tokenizers length (usize) can hold
    with pytest.raises(OverflowError) as library:
        Tokenizer.from_file(str(clip_file)).enable_truncation(max_length=huge)
    with pytest.raises(PackError) as info:
        TextTokenizer(clip_file, clip_settings(context_length=huge))
    assert str(info.value) == f"{clip_file}: cannot apply truncation/padding from pack.json ({one_line(library.value)})"


def test_unknown_clean_mode_is_a_one_line_pack_error(clip_file):
    with pytest.raises(PackError) as info:
        TextTokenizer(clip_file, clip_settings(clean="upper"))
    assert str(info.value) == f"{clip_file}: text clean mode 'upper' is not one of lower, whitespace, canonicalize"


def test_unknown_clean_mode_for_clean_text_is_a_one_line_value_error():
    with pytest.raises(ValueError) as info:
        clean_text("A Dog", "upper")
    assert str(info.value) == "unknown text clean mode 'upper' (expected one of lower, whitespace, canonicalize)"


# --------------------------------------------------------------------------- truncation and padding from the file


def test_left_truncating_tokenizer_keeps_a_long_texts_end(clip_file, clip_tok, tmp_path):
    body = _body(clip_file, LONG)
    assert len(body) > 6
    path = _write(tmp_path, clip_tok, lambda data: data["truncation"].update(direction="Left"))
    ids = TextTokenizer(path, clip_settings(context_length=8)).encode(LONG)
    assert ids.tolist() == [[SOT, *body[-6:], EOT]]
    # the file decides only the side: a right-truncating one keeps the start
    right = TextTokenizer(clip_file, clip_settings(context_length=8)).encode(LONG)
    assert right.tolist() == [[SOT, *body[:6], EOT]]


def test_a_files_truncation_strategy_does_not_break_long_texts(clip_file, clip_tok, tmp_path):
    # "only_second" truncates a pair's second text; for one text the app always truncates it
    path = _write(tmp_path, clip_tok, lambda data: data["truncation"].update(strategy="OnlySecond"))
    texts = [LONG, "a dog"]
    ids = TextTokenizer(path, clip_settings(context_length=8)).encode(texts)
    assert np.array_equal(ids, TextTokenizer(clip_file, clip_settings(context_length=8)).encode(texts))


def test_left_padding_tokenizer_pads_before_the_text(clip_tok, tmp_path):
    path = _write(tmp_path, clip_tok, lambda data: data["padding"].update(direction="Left"))
    tokens = TextTokenizer(path, clip_settings(context_length=8)).tokenize(["a dog"])
    assert tokens.ids.tolist() == [[0, 0, 0, 0, *A_DOG]]
    assert tokens.lengths.tolist() == [4] and tokens.ids.dtype == tokens.lengths.dtype == np.int64


def test_left_padding_tokenizer_cannot_be_trimmed(clip_tok, tmp_path):
    path = _write(tmp_path, clip_tok, lambda data: data["padding"].update(direction="Left"))
    with pytest.raises(PackError) as info:
        TextTokenizer(path, clip_settings(sequence="trim"))
    assert str(info.value) == f"{path}: pads on the left, so texts cannot be trimmed or given a language token"


@pytest.mark.parametrize("drop", [None, "padding", "truncation"])
def test_right_padding_tokenizer_can_be_trimmed(clip_tok, tmp_path, drop):
    # a file without padding or truncation settings pads and truncates on the right
    path = _write(tmp_path, clip_tok, (lambda data: data.update({drop: None})) if drop else None)
    tokens = TextTokenizer(path, clip_settings(context_length=8, sequence="trim")).tokenize(["a dog", LONG])
    assert tokens.ids[0].tolist() == [*A_DOG, 0, 0, 0, 0]
    assert tokens.ids[1, 0] == SOT and tokens.ids[1, -1] == EOT
    assert tokens.lengths.tolist() == [4, 8]


def test_no_texts_give_empty_int64_arrays(clip_file):
    tokens = TextTokenizer(clip_file, clip_settings(context_length=12)).tokenize([])
    assert tokens.ids.shape == (0, 12) and tokens.lengths.shape == (0,)
    assert tokens.ids.dtype == tokens.lengths.dtype == np.int64


# --------------------------------------------------------------------------- NLLB-style language token

LANGS = ["eng_Latn", "deu_Latn", "fra_Latn"]
CORPUS = ["a dog on the beach", "two cats on a red sofa", "ein Hund am Strand", "un chien sur la plage"]
PAD = 1


@pytest.fixture(scope="module")
def nllb_tok() -> Tokenizer:
    tok = Tokenizer(models.BPE(unk_token="<unk>", fuse_unk=True))
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always", split=True)
    trainer = trainers.BpeTrainer(vocab_size=120, special_tokens=["<s>", "<pad>", "</s>", "<unk>"], show_progress=False)
    tok.train_from_iterator(CORPUS, trainer)
    tok.add_special_tokens([AddedToken(t, special=True, normalized=False) for t in LANGS])
    tok.post_processor = processors.TemplateProcessing(
        single="eng_Latn $A </s>",
        pair="eng_Latn $A $B </s>",
        special_tokens=[("eng_Latn", tok.token_to_id("eng_Latn")), ("</s>", tok.token_to_id("</s>"))],
    )
    assert tok.token_to_id("<pad>") == PAD
    return tok


@pytest.fixture(scope="module")
def nllb_file(nllb_tok, tmp_path_factory) -> Path:
    return _write(tmp_path_factory.mktemp("nllb"), nllb_tok)


def nllb_settings(**changes) -> TextSettings:
    language = {"scheme": "flores200", "default": "eng_Latn"}
    return replace(TextSettings(context_length=12, clean="whitespace", pad_id=PAD, language=language), **changes)


def nllb_reference(tok: Tokenizer, text: str, lang: str) -> list[int]:
    """NLLB's ``<lang> text </s>``, padded to 12: the file's own encoding with its first token replaced."""
    ids = tok.encode(text).ids
    assert ids[0] == tok.token_to_id("eng_Latn")
    return [tok.token_to_id(lang), *ids[1:]] + [PAD] * (12 - len(ids))


def test_each_text_starts_with_its_language_token(nllb_file, nllb_tok):
    texts = ["ein Hund", "un chien", "a dog"]
    tokens = TextTokenizer(nllb_file, nllb_settings()).tokenize(texts, language=["deu_Latn", "fra_Latn", None])
    expected = [nllb_reference(nllb_tok, t, lang) for t, lang in zip(texts, ["deu_Latn", "fra_Latn", "eng_Latn"])]
    assert tokens.ids.tolist() == expected
    assert len(set(tokens.ids[:, 0].tolist())) == 3  # three different language tokens
    assert tokens.lengths.tolist() == [sum(i != PAD for i in row) for row in expected]


def test_one_language_for_every_text(nllb_file, nllb_tok):
    tokenizer = TextTokenizer(nllb_file, nllb_settings())
    texts = ["ein Hund am Strand", "zwei Katzen"]
    expected = [nllb_reference(nllb_tok, t, "deu_Latn") for t in texts]
    assert tokenizer.encode(texts, language="deu_Latn").tolist() == expected
    assert tokenizer.encode(texts).tolist() == [nllb_reference(nllb_tok, t, "eng_Latn") for t in texts]
    # a language once checked stays right on later calls
    assert tokenizer.check_language("fra_Latn") == "fra_Latn"
    assert tokenizer.encode("un chien", language="fra_Latn").tolist() == [nllb_reference(nllb_tok, "un chien", "fra_Latn")]


def test_one_language_per_text_must_match_the_texts(nllb_file):
    with pytest.raises(ValueError, match="^1 languages for 2 texts$"):
        TextTokenizer(nllb_file, nllb_settings()).tokenize(["a", "b"], language=["deu_Latn"])


def test_unknown_language_is_one_line_naming_the_tokenizer_file(nllb_file):
    tokenizer = TextTokenizer(nllb_file, nllb_settings())
    with pytest.raises(PixfindError) as info:
        tokenizer.check_language("spa_Latn")
    assert str(info.value) == "language 'spa_Latn' is not one this model knows (no spa_Latn token in tokenizer.json)"
    with pytest.raises(PixfindError, match=re.escape("no spa_Latn token")):
        tokenizer.encode("un perro", language="spa_Latn")
    assert tokenizer.known_language("spa_Latn", "eng_Latn") == "eng_Latn"
    assert tokenizer.known_language("deu_Latn", "eng_Latn") == "deu_Latn"


def test_default_language_must_be_the_tokenizers_first_token(nllb_file):
    with pytest.raises(PackError) as info:
        TextTokenizer(nllb_file, nllb_settings(language={"scheme": "flores200", "default": "deu_Latn"}))
    assert str(info.value) == (
        f"{nllb_file}: does not start texts with the language token 'deu_Latn' that pack.json's text language says;"
        " not an NLLB-style tokenizer"
    )


def test_left_padding_tokenizer_cannot_take_a_language_token(nllb_tok, tmp_path):
    nllb_tok = Tokenizer.from_str(nllb_tok.to_str())
    nllb_tok.enable_padding(direction="left", pad_id=PAD, pad_token="<pad>")
    path = _write(tmp_path, nllb_tok)
    with pytest.raises(PackError) as info:
        TextTokenizer(path, nllb_settings())
    assert str(info.value) == f"{path}: pads on the left, so texts cannot be trimmed or given a language token"


def test_a_tokenizer_with_one_special_token_fits_a_context_of_one(nllb_tok, nllb_file, tmp_path):
    # SigLIP's sentencepiece tokenizers write "$A </s>": one special token, so a context of one
    # holds just </s>; the pair template (two </s>) does not count
    t5_like = Tokenizer.from_str(nllb_tok.to_str())
    eos = t5_like.token_to_id("</s>")
    t5_like.post_processor = processors.TemplateProcessing(
        single="$A </s>", pair="$A </s> $B </s>", special_tokens=[("</s>", eos)]
    )
    path = _write(tmp_path, t5_like)
    tokens = TextTokenizer(path, nllb_settings(context_length=1, language=None)).tokenize(["ein Hund", ""])
    assert tokens.ids.tolist() == [[eos], [eos]] and tokens.lengths.tolist() == [1, 1]
    # NLLB's eng_Latn and </s> do not fit in one
    assert nllb_tok.num_special_tokens_to_add(False) == 2
    with pytest.raises(PackError, match="context_length 1 is too short for the special tokens"):
        TextTokenizer(nllb_file, nllb_settings(context_length=1))


# --------------------------------------------------------------------------- damaged files and other CLIP files


def test_a_damaged_tokenizer_file_is_one_line_with_the_librarys_reason(tmp_path):
    path = tmp_path / "tokenizer.json"
    path.write_text('{"version": "1.0", "model": ', encoding="utf-8")  # cut short
    with pytest.raises(Exception) as library:
        Tokenizer.from_file(str(path))
    with pytest.raises(PackError) as info:
        TextTokenizer(path, clip_settings())
    assert str(info.value) == f"{path}: not a valid tokenizer.json ({one_line(library.value)})"


def test_a_clip_file_with_a_normalizer_keeps_literal_special_tokens_as_open_clip_does(clip_tok, clip_file, tmp_path):
    """Hugging Face's CLIP tokenizer.json (what Immich and rclip packs carry) has a normalizer; a text
    that spells a special token goes through it too, and gives the ids open_clip's SimpleTokenizer gives."""
    from tokenizers import normalizers

    with_normalizer = Tokenizer.from_str(clip_tok.to_str())
    with_normalizer.normalizer = normalizers.Sequence([normalizers.NFC(), normalizers.Lowercase()])
    path = _write(tmp_path / "hf-clip", with_normalizer)
    text = "a dog <end_of_text> on a beach"
    ours = TextTokenizer(path, clip_settings()).encode([text])[0].tolist()
    assert ours == TextTokenizer(clip_file, clip_settings()).encode([text])[0].tolist()
    assert ours[:3] == [SOT, 320, 1929] and ours.count(EOT) == 2  # the literal one, and the end
