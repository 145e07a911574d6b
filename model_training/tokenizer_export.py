"""open_clip tokenizers, built offline, and their export to a pack's ``tokenizer.json``.

The app tokenises with the Hugging Face ``tokenizers`` library (no torch), so the exported
``tokenizer.json`` must reproduce open_clip's tokenizer token for token:

* OpenAI CLIP BPE (open_clip ``SimpleTokenizer``): built by ``desktop_app.clip_bpe`` (also used,
  without torch, to import rclip's models) from the tokenizer's vocabulary and merges: the same
  BPE, the CLIP split regex written out as explicit code-point classes, the specials added by a
  template post-processor, truncation (last id stays ``<end_of_text>``) and padding with 0.
* Hugging Face tokenizers (open_clip ``HFTokenizer``, SigLIP's sentencepiece vocabularies):
  the fast tokenizer's own backend, with the truncation and padding that
  ``tokenizer(texts, max_length=L, padding='max_length', truncation=True)`` applies.

Text cleaning (ftfy, HTML unescaping, whitespace, lower case / canonicalisation) is not in
``tokenizer.json``: the app does it in Python (``desktop_app.text_tokenizer``), as
``TextSettings.clean`` says.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path

from desktop_app import clip_bpe
from desktop_app.errors import PixfindError, one_line
from desktop_app.pack import TOKENIZER_FILE, TextSettings

DEFAULT_CONTEXT_LENGTH = 77

# Models that open_clip tokenises with SigLipTokenizer by name (no hf_tokenizer_name in the
# config): the Hugging Face repo holding the same vocabulary as a tokenizer.json.
_SIGLIP_TOKENIZER_REPOS = {
    "c4-en": "timm/ViT-B-16-SigLIP",
    "mc4": "timm/ViT-B-16-SigLIP-i18n-256",
    "gemma": "timm/ViT-B-16-SigLIP2",
}
_HF_FILES = "tokenizer.json, tokenizer_config.json and special_tokens_map.json"

# Texts the exported tokenizer.json is checked against open_clip with, before it is accepted.
_SELF_CHECK_TEXTS = [
    "",
    "   ",
    "a photo of a dog",
    "A PHOTO of Two Cats, sleeping on the sofa!",
    "it's what they're doing, we've got 'em; I'LL see, he'd said",
    "Café crème brûlée — naïve façade, “quotes” and ‘single’",
    "ＦＵＬＬ－ＷＩＤＴＨ １２３ ﬁne ﬂow",
    "Tom &amp; Jerry &lt;3 &#39;cartoon&#39; &quot;x&quot;",
    "👍🏽 👨‍👩‍👧‍👦 🏳️‍🌈 😀 emoji",
    "東京タワーの夜景 北京 서울의 밤",
    "قطة على النافذة",
    "एक बिल्ली खिड़की पर",
    "кошка на окне",
    "แมวบนหน้าต่าง",
    "tab\there\nnew line\r\nand\x00control\x07chars",
    "<start_of_text> literal <end_of_text> and '<end_of_text>x",
    "</s> <pad> <unk> [CLS] [SEP]",
    "year 2024, 3.14159, 1,000,000 and 42nd",
    "snake_case and kebab-case and CamelCase",
    " ".join(f"word{i}" for i in range(200)),
]


# --------------------------------------------------------------------------------------
# building open_clip's tokenizer without network


def _is_siglip_name(model_name: str) -> bool:
    return "siglip" in model_name.lower()


def _siglip_variant(model_name: str) -> str:
    name = model_name.lower()
    return "gemma" if "siglip2" in name else "mc4" if "i18n" in name else "c4-en"


def _split_schema(model_name: str) -> tuple[str | None, str]:
    for schema in ("hf-hub", "local-dir"):
        if model_name.startswith(schema + ":"):
            return schema, model_name[len(schema) + 1 :]
    return None, model_name


def open_clip_tokenizer(model_cfg: dict, model_name: str, tokenizer_path: Path | None = None):
    """open_clip's tokenizer for a model config, as ``open_clip.get_tokenizer`` picks it, offline.

    Models with an ``hf_tokenizer_name`` (and SigLIP models named as such) need the Hugging Face
    tokenizer files, given as ``tokenizer_path``: a directory holding ``tokenizer.json`` (with
    ``tokenizer_config.json`` and ``special_tokens_map.json``), or a ``tokenizer.json`` file.
    """
    schema, identifier = _split_schema(model_name)
    text_cfg = dict((model_cfg or {}).get("text_cfg", {}) or {})
    context_length = int(text_cfg.get("context_length", DEFAULT_CONTEXT_LENGTH) or DEFAULT_CONTEXT_LENGTH)
    tokenizer_kwargs = dict(text_cfg.get("tokenizer_kwargs", {}) or {})
    hf_name = text_cfg.get("hf_tokenizer_name", "") or ""
    tokenizer_mode = text_cfg.get("tokenizer_mode", None) or None
    _reject_unsupported(model_name, tokenizer_kwargs, tokenizer_mode)

    if hf_name or (schema is None and _is_siglip_name(identifier)):
        if hf_name:
            repo = hf_name
            kwargs = tokenizer_kwargs
        else:  # open_clip would download a sentencepiece model for SigLipTokenizer
            repo = _SIGLIP_TOKENIZER_REPOS[_siglip_variant(identifier)]
            kwargs = {"clean": "canonicalize"}  # what SigLipTokenizer does
        if tokenizer_path is None and schema == "local-dir" and hf_name:
            tokenizer_path = Path(identifier)  # open_clip reads local-dir models' tokenizer from the dir
        return _hf_tokenizer(model_name, repo, tokenizer_path, context_length, kwargs)

    from open_clip.tokenizer import SimpleTokenizer

    if tokenizer_path is not None:
        raise PixfindError(
            f"{model_name} uses open_clip's built-in OpenAI BPE tokenizer; --tokenizer is only for models "
            "with a Hugging Face tokenizer (SigLIP), leave it out"
        )
    try:
        return SimpleTokenizer(context_length=context_length, **tokenizer_kwargs)
    except (TypeError, AssertionError) as e:
        raise PixfindError(f"{model_name}: unsupported tokenizer_kwargs {tokenizer_kwargs} ({e})") from None


def _reject_unsupported(model_name: str, tokenizer_kwargs: dict, tokenizer_mode: str | None) -> None:
    if tokenizer_kwargs.get("reduction_mask"):
        raise PixfindError(
            f"{model_name}: tokenizer reduction_mask {tokenizer_kwargs['reduction_mask']!r} (random/syntax token "
            "dropping) is a training-time mode pixfind cannot reproduce; remove it from text_cfg.tokenizer_kwargs"
        )
    if tokenizer_kwargs.get("strip_sep_token"):
        raise PixfindError(
            f"{model_name}: tokenizer strip_sep_token (CLIPA's BERT tokenizer) is not supported by pixfind packs"
        )
    if tokenizer_mode:
        what = " (CLIPS: padding with a class token at the end)" if tokenizer_mode == "clips" else ""
        raise PixfindError(f"{model_name}: tokenizer_mode {tokenizer_mode!r}{what} is not supported by pixfind packs")
    clean = tokenizer_kwargs.get("clean", None)
    if clean is not None and clean not in ("lower", "whitespace", "canonicalize"):
        raise PixfindError(f"{model_name}: unknown tokenizer clean mode {clean!r}")


def _hf_tokenizer(model_name: str, repo: str, tokenizer_path: Path | None, context_length: int, kwargs: dict):
    where = (
        f"download {_HF_FILES} from https://huggingface.co/{repo} and pass their folder "
        f"(or the tokenizer.json) with --tokenizer PATH"
    )
    if tokenizer_path is None:
        raise PixfindError(
            f"{model_name} needs the Hugging Face tokenizer '{repo}', which pixfind does not download; {where}"
        )
    path = Path(tokenizer_path)
    if path.is_dir():
        if not (path / TOKENIZER_FILE).is_file():
            raise PixfindError(f"{path}: no tokenizer.json in this folder ({model_name} needs '{repo}'); {where}")
        return _load_hf(model_name, repo, path, context_length, kwargs)
    if not path.is_file():
        raise PixfindError(f"{path}: tokenizer not found ({model_name} needs '{repo}'); {where}")
    if path.name == TOKENIZER_FILE:  # its folder may also hold tokenizer_config.json etc.
        return _load_hf(model_name, repo, path.parent, context_length, kwargs)
    with tempfile.TemporaryDirectory(prefix="pixfind-tokenizer-") as tmp:
        shutil.copyfile(path, Path(tmp) / TOKENIZER_FILE)
        for extra in ("tokenizer_config.json", "special_tokens_map.json"):
            if (path.parent / extra).is_file():
                shutil.copyfile(path.parent / extra, Path(tmp) / extra)
        return _load_hf(model_name, repo, Path(tmp), context_length, kwargs, shown=path)


def _load_hf(model_name, repo, folder: Path, context_length: int, kwargs: dict, shown: Path | None = None):
    from open_clip.tokenizer import HFTokenizer

    shown = shown or folder
    try:
        json.loads((folder / TOKENIZER_FILE).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as e:
        raise PixfindError(f"{shown}: tokenizer.json is unreadable or not JSON ({one_line(e)})") from None
    try:
        tokenizer = HFTokenizer(str(folder), context_length=context_length, **kwargs)
    except Exception as e:  # noqa: BLE001 - transformers raises OSError, ValueError, KeyError... for bad files
        raise PixfindError(
            f"{shown}: cannot load it as the Hugging Face tokenizer '{repo}' for {model_name} ({one_line(e)})"
        ) from None
    hf = tokenizer.tokenizer
    if not getattr(hf, "is_fast", False):
        raise PixfindError(
            f"{shown}: transformers loaded a slow (Python) tokenizer for {model_name}; pixfind needs a fast one "
            "built from tokenizer.json"
        )
    if hf.pad_token_id is None:
        raise PixfindError(
            f"{shown}: the tokenizer has no padding token; pass the folder with {_HF_FILES} from "
            f"https://huggingface.co/{repo}, not tokenizer.json alone"
        )
    return tokenizer


# --------------------------------------------------------------------------------------
# writing tokenizer.json


def write_tokenizer(tokenizer, out_dir: Path) -> TextSettings:
    """Write ``out_dir/tokenizer.json`` for an open_clip tokenizer and return the pack's text settings.

    The written file is checked against ``tokenizer`` on a set of awkward texts before returning.
    """
    from open_clip.tokenizer import HFTokenizer, SigLipTokenizer, SimpleTokenizer

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / TOKENIZER_FILE
    if isinstance(tokenizer, SimpleTokenizer):
        backend, settings = _clip_bpe_backend(tokenizer)
    elif isinstance(tokenizer, (HFTokenizer, SigLipTokenizer)):
        backend, settings = _hf_backend(tokenizer)
    else:
        raise PixfindError(f"cannot export a tokenizer of type {type(tokenizer).__name__} (not an open_clip tokenizer)")
    backend.save(str(path), pretty=False)
    _self_check(tokenizer, path, settings)
    return settings


def _clean_mode(clean_fn) -> str:
    from open_clip import tokenizer as oc_tok

    modes = {"lower": oc_tok._clean_lower, "whitespace": oc_tok._clean_whitespace, "canonicalize": oc_tok._clean_canonicalize}
    for name, fn in modes.items():
        if clean_fn is fn:
            return name
    raise PixfindError(f"unsupported tokenizer clean function {getattr(clean_fn, '__name__', clean_fn)!r}")


# --- OpenAI CLIP BPE -------------------------------------------------------------------


def _clip_bpe_backend(tok):
    """The tokenizers backend of an open_clip SimpleTokenizer (built by ``desktop_app.clip_bpe``)."""
    if getattr(tok, "reduction_fn", None) is not None:
        raise PixfindError(
            "open_clip tokenizer uses a reduction_mask (token dropping); pixfind packs cannot reproduce it"
        )
    context_length = int(tok.context_length or DEFAULT_CONTEXT_LENGTH)
    clean = _clean_mode(tok.clean_fn)
    special_tokens = [tok.decoder[i] for i in tok.all_special_ids]  # <start_of_text>, <end_of_text>, extras
    merges = [pair for pair, _ in sorted(tok.bpe_ranks.items(), key=lambda kv: kv[1])]
    backend = clip_bpe.build(dict(tok.encoder), merges, special_tokens, context_length)
    return backend, TextSettings(context_length=context_length, clean=clean, pad_id=0, tokenizer_file=TOKENIZER_FILE)


# --- Hugging Face fast tokenizers ----------------------------------------------------------


def _hf_backend(tok):
    from open_clip.tokenizer import SigLipTokenizer
    from tokenizers import Tokenizer

    hf = tok.tokenizer
    if not getattr(hf, "is_fast", False):
        raise PixfindError(f"the Hugging Face tokenizer {type(hf).__name__} is not a fast (tokenizer.json) one")
    if isinstance(tok, SigLipTokenizer):
        clean = "canonicalize"
    else:
        if getattr(tok, "tokenizer_mode", "") == "clips":
            raise PixfindError("open_clip tokenizer_mode 'clips' is not supported by pixfind packs")
        if getattr(tok, "strip_sep_token", False):
            raise PixfindError("open_clip strip_sep_token (CLIPA) is not supported by pixfind packs")
        clean = _clean_mode(tok.clean_fn)
    if getattr(hf, "split_special_tokens", False):
        raise PixfindError("Hugging Face tokenizers with split_special_tokens=True cannot be stored in tokenizer.json")
    if hf.pad_token_id is None:
        raise PixfindError("the Hugging Face tokenizer has no padding token; open_clip cannot pad with it either")
    context_length = int(tok.context_length or DEFAULT_CONTEXT_LENGTH)
    switch = getattr(hf, "_switch_to_input_mode", None)
    if callable(switch):  # open_clip's call is in input mode (language-specific post-processors)
        switch()
    backend = Tokenizer.from_str(hf.backend_tokenizer.to_str())
    # exactly what transformers sets for padding='max_length', truncation=True, max_length=L
    backend.enable_truncation(
        max_length=context_length, stride=0, strategy="longest_first", direction=getattr(hf, "truncation_side", "right")
    )
    backend.enable_padding(
        length=context_length,
        direction=getattr(hf, "padding_side", "right"),
        pad_id=int(hf.pad_token_id),
        pad_token=str(hf.pad_token),
        pad_type_id=int(getattr(hf, "pad_token_type_id", 0) or 0),
        pad_to_multiple_of=None,
    )
    return backend, TextSettings(
        context_length=context_length, clean=clean, pad_id=int(hf.pad_token_id), tokenizer_file=TOKENIZER_FILE
    )


def _self_check(tokenizer, path: Path, settings: TextSettings) -> None:
    import numpy as np

    from desktop_app.text_tokenizer import TextTokenizer

    ours = TextTokenizer(path, settings).encode(_SELF_CHECK_TEXTS)
    theirs = np.asarray(tokenizer(_SELF_CHECK_TEXTS).numpy(), dtype=np.int64)
    if ours.shape != theirs.shape:
        raise PixfindError(f"{path}: exported tokenizer gives shape {ours.shape}, open_clip {theirs.shape}")
    bad = np.flatnonzero((ours != theirs).any(axis=1))
    if bad.size:
        i = int(bad[0])
        raise PixfindError(
            f"{path}: exported tokenizer disagrees with open_clip on {bad.size} of {len(_SELF_CHECK_TEXTS)} "
            f"check texts, first {_SELF_CHECK_TEXTS[i][:60]!r}"
        )

