"""OpenAI CLIP's byte-level BPE (open_clip's ``SimpleTokenizer``) as a ``tokenizers`` tokenizer, built
without torch or open_clip.

Two callers build it here: the pack export (``model_training.tokenizer_export``, from an open_clip
tokenizer's vocabulary and merges) and the import of rclip's models (``model_sources.rclip``, from
the ``bpe_simple_vocab_16e6.txt.gz`` file open_clip and rclip ship). The result reproduces
``SimpleTokenizer`` token for token:

* a BPE model with the same vocabulary and merges and the ``</w>`` end-of-word suffix;
* the CLIP pre-tokenizer regex as a ``Split`` followed by a regex-free ``ByteLevel``. open_clip
  compiles the regex with Python's ``regex`` module and ``re.IGNORECASE``; the Rust side uses
  Oniguruma, whose Unicode tables are older and whose case folding differs. So the pattern is
  written out with explicit code-point classes computed with ``regex`` itself (``\\p{L}``,
  ``\\p{N}``, ``\\s`` and every case-insensitive literal), which makes the split identical
  whatever Unicode version ``tokenizers`` was built with;
* ``<start_of_text>``/``<end_of_text>`` added by a template post-processor, truncation (the last
  id stays ``<end_of_text>``) and padding with id 0.

Text cleaning (ftfy, HTML unescaping, whitespace, lower case) is not in ``tokenizer.json``: the app
does it in Python (``desktop_app.text_tokenizer``), as ``TextSettings.clean`` says.
"""

from __future__ import annotations

import functools
import gzip
import zlib
from pathlib import Path

from .errors import PackError, PixfindError, one_line

START_OF_TEXT = "<start_of_text>"
END_OF_TEXT = "<end_of_text>"
SPECIAL_TOKENS = (START_OF_TEXT, END_OF_TEXT)
#: The merges SimpleTokenizer reads: lines 1..48894 of the vocabulary file (line 0 is a header),
#: so that 256 byte tokens, their 256 end-of-word forms, the merges and 2 specials make 49408 ids.
MERGE_COUNT = 49152 - 256 - 2
#: open_clip's file is 1.4 MB, 3.2 MB unpacked; anything far larger is not a CLIP vocabulary.
MAX_VOCABULARY_FILE_BYTES = 16 << 20
MAX_VOCABULARY_TEXT_BYTES = 32 << 20


@functools.cache
def bytes_to_unicode() -> dict[int, str]:
    """open_clip's byte -> printable character table (GPT-2's): bytes that are printable keep their
    character, the others are moved to 256 and above."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(2**8):
        if b not in bs:
            bs.append(b)
            cs.append(2**8 + n)
            n += 1
    return dict(zip(bs, map(chr, cs)))


def read_merges(path: Path) -> list[tuple[str, str]]:
    """The merges of a CLIP vocabulary file (``bpe_simple_vocab_16e6.txt.gz``), as SimpleTokenizer
    reads them; a one-line PackError naming the file when it is not one."""
    path = Path(path)
    try:
        size = path.stat().st_size
        if size > MAX_VOCABULARY_FILE_BYTES:
            raise PackError(f"{path}: {size >> 20} MiB, not a CLIP BPE vocabulary (open_clip's is 1.4 MB)")
        with gzip.open(path, "rb") as f:
            raw = f.read(MAX_VOCABULARY_TEXT_BYTES + 1)
    except PackError:
        raise
    except (OSError, EOFError, zlib.error) as e:  # gzip.BadGzipFile is an OSError
        raise PackError(f"{path}: not a gzip-compressed CLIP BPE vocabulary ({one_line(e, 80)})") from None
    if len(raw) > MAX_VOCABULARY_TEXT_BYTES:
        raise PackError(f"{path}: unpacks to over {MAX_VOCABULARY_TEXT_BYTES >> 20} MiB; not a CLIP BPE vocabulary")
    try:
        lines = raw.decode("utf-8").split("\n")
    except UnicodeDecodeError:
        raise PackError(f"{path}: not UTF-8 text; not a CLIP BPE vocabulary") from None
    merges = [tuple(line.split()) for line in lines[1 : MERGE_COUNT + 1]]
    if len(merges) < MERGE_COUNT:
        raise PackError(f"{path}: holds {len(merges)} merges, a CLIP BPE vocabulary has at least {MERGE_COUNT}")
    for number, merge in enumerate(merges, start=2):
        if len(merge) != 2:
            raise PackError(f"{path}: line {number} is not a merge of two symbols; not a CLIP BPE vocabulary")
    return merges  # type: ignore[return-value]


def vocabulary(merges: list[tuple[str, str]], special_tokens: tuple[str, ...] = SPECIAL_TOKENS, where: str = "") -> dict[str, int]:
    """SimpleTokenizer's token -> id table for ``merges``; checks that every merge joins two
    symbols already in the vocabulary and that no token repeats (open_clip would silently lose ids)."""
    symbols = list(bytes_to_unicode().values())
    tokens = symbols + [s + "</w>" for s in symbols]
    known = set(tokens)
    for number, (first, second) in enumerate(merges, start=2):
        if first not in known or second not in known:
            raise PackError(f"{where}: line {number} merges symbols that are not in the vocabulary; not a CLIP BPE vocabulary")
        joined = first + second
        if joined in known:
            raise PackError(f"{where}: line {number} makes {joined[:20]!r} a second time; not a CLIP BPE vocabulary")
        known.add(joined)
        tokens.append(joined)
    tokens.extend(special_tokens)
    return dict(zip(tokens, range(len(tokens))))


# ---------------------------------------------------------------------- the split pattern


def _all_code_points() -> str:
    return "".join(map(chr, range(0xD800))) + "".join(map(chr, range(0xE000, 0x110000)))


def _index_to_cp(i: int) -> int:
    return i if i < 0xD800 else i + 0x800


def _ranges(cps: list[int]) -> list[tuple[int, int]]:
    out: list[tuple[int, int]] = []
    for cp in cps:
        if out and cp == out[-1][1] + 1:
            out[-1] = (out[-1][0], cp)
        else:
            out.append((cp, cp))
    return out


def _onig_class(ranges: list[tuple[int, int]]) -> str:
    if len(ranges) == 1 and ranges[0][0] == ranges[0][1]:
        return f"\\x{{{ranges[0][0]:X}}}"
    parts = [f"\\x{{{a:X}}}" if a == b else f"\\x{{{a:X}}}-\\x{{{b:X}}}" for a, b in ranges]
    return "[" + "".join(parts) + "]"


@functools.lru_cache(maxsize=8)
def clip_split_pattern(special_tokens: tuple[str, ...]) -> str:
    """open_clip's SimpleTokenizer regex, with IGNORECASE, as an Oniguruma pattern of explicit classes.

    open_clip: ``special|'s|'t|'re|'ve|'m|'ll|'d|[\\p{L}]+|[\\p{N}]|[^\\s\\p{L}\\p{N}]+`` with
    ``regex.IGNORECASE``. Every class and every case-insensitive literal character is replaced by
    the exact set of code points Python's ``regex`` matches, so the Rust engine splits the same way.
    """
    import regex

    everything = _all_code_points()
    flags = regex.IGNORECASE | regex.V0

    def class_of(pattern: str) -> str:
        cps: list[int] = []
        for m in regex.finditer(pattern, everything, flags):
            cps.extend(_index_to_cp(i) for i in range(m.start(), m.end()))
        if not cps:
            raise PixfindError(f"internal error: {pattern!r} matches no character")
        return _onig_class(_ranges(sorted(set(cps))))

    @functools.cache
    def literal_char(ch: str) -> str:
        return class_of(regex.escape(ch))

    def literal(text: str) -> str:
        return "".join(literal_char(ch) for ch in text)

    for tok in special_tokens:
        if regex.escape(tok, special_only=True) != tok:
            raise PixfindError(f"special token {tok!r} contains regex syntax; pixfind cannot export it")
    alternatives = [literal(tok) for tok in special_tokens]
    alternatives += [literal(c) for c in ("'s", "'t", "'re", "'ve", "'m", "'ll", "'d")]
    alternatives += [
        class_of(r"[\p{L}]+") + "+",
        class_of(r"[\p{N}]"),
        class_of(r"[^\s\p{L}\p{N}]+") + "+",
    ]
    return "|".join(alternatives)


# ---------------------------------------------------------------------- the tokenizer


def build(
    vocab: dict[str, int],
    merges: list[tuple[str, str]],
    special_tokens: list[str] | tuple[str, ...],
    context_length: int,
):
    """The ``tokenizers.Tokenizer`` equivalent of a SimpleTokenizer with this vocabulary, merges
    (in rank order) and special tokens (``<start_of_text>``, ``<end_of_text>``, then any extras)."""
    from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, pre_tokenizers, processors

    special_tokens = list(special_tokens)
    if special_tokens[:2] != list(SPECIAL_TOKENS):
        raise PixfindError(f"unexpected CLIP special tokens {special_tokens[:2]}")
    id_of = {v: k for k, v in vocab.items()}
    model = models.BPE(vocab=dict(vocab), merges=list(merges), end_of_word_suffix="</w>", fuse_unk=False, byte_fallback=False)
    backend = Tokenizer(model)
    backend.normalizer = None  # cleaning is done in Python by the app (TextSettings.clean)
    backend.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(clip_split_pattern(tuple(special_tokens))), behavior="removed", invert=True),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ]
    )
    backend.add_special_tokens([AddedToken(t, special=True, normalized=False) for t in special_tokens])
    sot, eot = vocab[START_OF_TEXT], vocab[END_OF_TEXT]
    backend.post_processor = processors.TemplateProcessing(
        single=f"{START_OF_TEXT} $A {END_OF_TEXT}",
        pair=f"{START_OF_TEXT} $A {END_OF_TEXT} $B:1 {END_OF_TEXT}:1",
        special_tokens=[(START_OF_TEXT, sot), (END_OF_TEXT, eot)],
    )
    backend.decoder = decoders.Sequence([decoders.ByteLevel(), decoders.Replace("</w>", " "), decoders.Strip(" ", 0, 1)])
    backend.enable_truncation(max_length=context_length, stride=0, strategy="longest_first", direction="right")
    backend.enable_padding(direction="right", pad_id=0, pad_type_id=0, pad_token=id_of[0], length=context_length)
    return backend


def from_vocabulary_file(path: Path, context_length: int):
    """The tokenizer of open_clip's ``SimpleTokenizer(bpe_path=path, context_length=...)``."""
    merges = read_merges(path)
    return build(vocabulary(merges, where=str(path)), merges, SPECIAL_TOKENS, context_length)
