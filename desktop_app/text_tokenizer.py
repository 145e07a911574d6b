"""Text tokenisation for the app: open_clip's tokenizers, token for token, without torch.

A pack's ``tokenizer.json`` holds everything the Hugging Face ``tokenizers`` library needs
(vocabulary, pre-tokenizer, special tokens, truncation and padding). Text cleaning stays
out of it: open_clip cleans in Python (ftfy, HTML unescaping, whitespace, lower case or
canonicalisation) before tokenising, and so does :class:`TextTokenizer`, with copies of
open_clip's own cleaning functions (``pack.json``'s ``text.clean`` says which).

One case is handled outside ``tokenizer.json``: with the OpenAI CLIP BPE, a literal
``<start_of_text>``/``<end_of_text>`` typed into the text becomes the special token only
where open_clip's regex would match it (not when it follows punctuation such as ``'<``);
``tokenizers`` always extracts added tokens first, so such texts are encoded chunk by chunk.
"""

from __future__ import annotations

import html
import string
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .errors import PackError, PixfindError, one_line
from .pack import CLEAN_MODES, TextSettings

CLIP_START = "<start_of_text>"
CLIP_END = "<end_of_text>"

_TRANS_PUNCTUATION = str.maketrans("", "", string.punctuation)


# --- open_clip's cleaning functions (open_clip/tokenizer.py), kept identical -------------


def basic_clean(text: str) -> str:
    if not _left_alone_by_ftfy(text):
        import ftfy  # imported only here: most queries never need it, and a cold search pays its import

        text = ftfy.fix_text(text)
    text = html.unescape(html.unescape(text))
    return text.strip()


def _left_alone_by_ftfy(text: str) -> bool:
    """Printable ASCII with no ``&``: every fix ftfy makes needs a non-ASCII character, a control
    character, a line break or an HTML entity, so ``ftfy.fix_text`` returns such a text unchanged."""
    return text.isascii() and text.isprintable() and "&" not in text


def whitespace_clean(text: str) -> str:
    text = " ".join(text.split())
    text = text.strip()
    return text


def canonicalize_text(text: str) -> str:
    """Lower case, ASCII punctuation removed, ``_`` as a space, whitespace collapsed (big_vision's)."""
    text = text.replace("_", " ")
    text = text.translate(_TRANS_PUNCTUATION)
    text = text.lower()
    text = " ".join(text.split())
    return text.strip()


def clean_text(text: str, mode: str) -> str:
    """open_clip's ``get_clean_fn(mode)(text)``."""
    if mode == "lower":
        return whitespace_clean(basic_clean(text)).lower()
    if mode == "whitespace":
        return whitespace_clean(basic_clean(text))
    if mode == "canonicalize":
        return canonicalize_text(basic_clean(text))
    raise ValueError(f"unknown text clean mode {mode!r} (expected one of {', '.join(CLEAN_MODES)})")


@dataclass
class Tokens:
    """Token ids [N, context_length] (int64, padded on the right) and each row's count of real tokens."""

    ids: np.ndarray
    lengths: np.ndarray


class TextTokenizer:
    """Cleans and tokenises texts into int64 ids [N, context_length], as open_clip's tokenizer does.

    With ``settings.language`` (NLLB-CLIP) the first token is the text's language: open_clip's
    ``HFTokenizer.set_language`` makes the NLLB tokenizer write ``<lang_code> text </s>``, and
    ``tokenizer.json`` writes the default language there, so that token is replaced per text.
    """

    def __init__(self, tokenizer_json: Path, settings: TextSettings):
        from tokenizers import Tokenizer

        path = Path(tokenizer_json)
        self.path = path
        self.settings = settings
        self.context_length = int(settings.context_length)
        if settings.clean not in CLEAN_MODES:
            raise PackError(f"{path}: text clean mode {settings.clean!r} is not one of {', '.join(CLEAN_MODES)}")
        if self.context_length <= 0:
            raise PackError(f"{path}: text context_length {self.context_length} is not positive")
        if not path.is_file():
            raise PackError(f"{path}: tokenizer file is missing from the model pack")
        try:
            tokenizer = Tokenizer.from_file(str(path))
        except Exception as e:  # noqa: BLE001 - tokenizers raises a bare Exception for malformed files
            raise PackError(f"{path}: not a valid tokenizer.json ({one_line(e)})") from None

        vocab_size = tokenizer.get_vocab_size(with_added_tokens=True)
        pad_id = int(settings.pad_id)
        if not 0 <= pad_id < vocab_size:
            raise PackError(f"{path}: pad id {pad_id} is outside the tokenizer's vocabulary of {vocab_size}")

        specials = {tok.content: tid for tid, tok in tokenizer.get_added_tokens_decoder().items() if tok.special}
        self._clip_bpe = CLIP_START in specials and CLIP_END in specials
        if self.context_length < (2 if self._clip_bpe else tokenizer.num_special_tokens_to_add(False)):
            raise PackError(f"{path}: context_length {self.context_length} is too short for the special tokens")

        # Truncation and padding come from pack.json, whatever the file says; the file only
        # decides the side (open_clip's tokenizers all truncate and pad on the right). The file's
        # truncation strategy is not used: for one sequence "only_first" and "longest_first" are the
        # same, and "only_second" would fail every text that needs truncating.
        truncate_side = (tokenizer.truncation or {}).get("direction", "right")
        pad_side = (tokenizer.padding or {}).get("direction", "right")
        try:
            tokenizer.enable_truncation(
                max_length=self.context_length, stride=0, strategy="longest_first", direction=truncate_side
            )
            # Only the ids and the attention mask are read, so the pad token's name and type id do not matter.
            tokenizer.enable_padding(direction=pad_side, pad_id=pad_id, length=self.context_length)
        except Exception as e:  # noqa: BLE001 - tokenizers raises bare Exceptions for settings it cannot apply
            raise PackError(f"{path}: cannot apply truncation/padding from pack.json ({one_line(e)})") from None
        self._tokenizer = tokenizer
        if pad_side != "right" and (settings.sequence == "trim" or settings.language):
            raise PackError(f"{path}: pads on the left, so texts cannot be trimmed or given a language token")
        self._language_ids: dict[str, int] = {}
        if settings.language:
            default = settings.language["default"]
            first = tokenizer.encode("", add_special_tokens=True).ids[:1]
            if first != [self._token_id(default)]:
                raise PackError(
                    f"{path}: does not start texts with the language token {default!r} that pack.json's text "
                    "language says; not an NLLB-style tokenizer"
                )

        if self._clip_bpe:
            from tokenizers import pre_tokenizers

            byte_level = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)
            self._specials = tuple(specials)
            # A special token as the pre-tokenizer (byte level) writes it, and its id.
            self._special_pieces = {byte_level.pre_tokenize_str(content)[0][0]: tid for content, tid in specials.items()}
            self._sot = specials[CLIP_START]
            self._eot = specials[CLIP_END]

    def clean(self, text: str) -> str:
        return clean_text(text, self.settings.clean)

    def _token_id(self, token: str) -> int | None:
        tid = self._tokenizer.token_to_id(token)
        return None if tid is None else int(tid)

    def check_language(self, code: str) -> str:
        """``code`` (FLORES-200) when this tokenizer has its language token; else a one-line error."""
        if code not in self._language_ids:
            tid = self._token_id(code)
            if tid is None:
                raise PixfindError(f"language {code!r} is not one this model knows (no {code} token in {self.path.name})")
            self._language_ids[code] = tid
        return code

    def known_language(self, code: str, default: str) -> str:
        """``code`` when this tokenizer knows it, else ``default`` (for detected languages)."""
        try:
            return self.check_language(code)
        except PixfindError:
            return default

    def encode(self, texts: Sequence[str] | str, language: str | Sequence[str] | None = None) -> np.ndarray:
        """Token ids, int64 [len(texts), context_length]."""
        return self.tokenize(texts, language).ids

    def tokenize(self, texts: Sequence[str] | str, language: str | Sequence[str] | None = None) -> Tokens:
        """Token ids, int64 [len(texts), context_length], and how many of each row's ids are real tokens.

        ``language``: a FLORES-200 code, or one per text, for a tokenizer with a language token;
        None keeps the default language. Ignored by other tokenizers.
        """
        if isinstance(texts, str):
            texts = [texts]
        length = self.context_length
        if len(texts) == 0:
            return Tokens(np.zeros((0, length), dtype=np.int64), np.zeros(0, dtype=np.int64))
        cleaned = [self.clean(t) for t in texts]
        out = np.full((len(cleaned), length), self.settings.pad_id, dtype=np.int64)
        lengths = np.zeros(len(cleaned), dtype=np.int64)
        fast_rows = list(range(len(cleaned)))
        if self._clip_bpe:
            fast_rows = []
            for i, text in enumerate(cleaned):
                if any(s in text for s in self._specials):
                    ids = self._encode_clip_with_literal_specials(text)
                    lengths[i] = len(ids)
                    out[i, : len(ids)] = ids
                else:
                    fast_rows.append(i)
        if fast_rows:
            encodings = self._tokenizer.encode_batch([cleaned[i] for i in fast_rows], add_special_tokens=True)
            for i, enc in zip(fast_rows, encodings):
                ids = enc.ids
                if len(ids) != length:  # cannot happen with the settings above; never feed a wrong shape
                    raise PackError(f"{self.path}: tokenizer produced {len(ids)} ids instead of {length}")
                out[i] = ids
                lengths[i] = sum(enc.attention_mask)
        if self.settings.language:
            codes = [language] * len(texts) if language is None or isinstance(language, str) else list(language)
            if len(codes) != len(texts):
                raise ValueError(f"{len(codes)} languages for {len(texts)} texts")
            default = self.settings.language["default"]
            out[:, 0] = [self._language_ids[self.check_language(code or default)] for code in codes]
        return Tokens(out, lengths)

    def _encode_clip_with_literal_specials(self, text: str) -> list[int]:
        """open_clip SimpleTokenizer semantics for a text that contains a special token's string.

        The pre-tokenizer splits exactly as open_clip's regex (specials included), so a chunk that
        is a special token's string is the special token; every other chunk goes through the BPE.
        """
        tok = self._tokenizer
        if tok.normalizer is not None:
            text = tok.normalizer.normalize_str(text)
        pieces = [p for p, _ in tok.pre_tokenizer.pre_tokenize_str(text)] if tok.pre_tokenizer else [text]
        ids = [self._sot]
        for piece in pieces:
            special = self._special_pieces.get(piece)
            if special is not None:
                ids.append(special)
            else:
                ids.extend(t.id for t in tok.model.tokenize(piece))
        # as open_clip truncates: <end_of_text> stays the last id
        return ids[: self.context_length - 1] + [self._eot]
