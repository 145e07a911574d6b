"""`pixfind export`: an open_clip model or checkpoint becomes a verified model pack."""

from __future__ import annotations

import platform
from collections.abc import Callable
from pathlib import Path

import onnx
import open_clip
import torch

import desktop_app
from desktop_app import model_store
from desktop_app.encoder import IMAGE, TEXT
from desktop_app.errors import PixfindError
from desktop_app.pack import PRECISIONS, PackManifest, sha256_file

from .onnx_export import convert_precision, export_towers
from .open_clip_models import build_model, eval_transform, resolve_arch
from .pack_builder import PackBuilder, build_and_install
from .preprocess_settings import image_settings_from_model
from .tokenizer_export import open_clip_tokenizer, write_tokenizer
from .verify import Verification, verify_pack


def default_pack_name(
    arch: str, pretrained: str | None, checkpoint: Path | None, precision: str, text_precision: str | None = None
) -> str:
    origin = pretrained or (Path(checkpoint).stem if checkpoint else "random")
    name = f"{Path(arch).stem}-{origin}".lower().replace("_", "-")
    if precision != "fp32":
        name += f"-{precision}"
    if text_precision not in (None, precision):
        name += f"-text-{text_precision}"
    return name


def _check_precision(precision: str, option: str) -> None:
    if precision not in PRECISIONS:
        raise PixfindError(f"unknown {option} {precision!r} (choose {', '.join(PRECISIONS)})")


def export_pack(
    arch: str,
    out_dir: Path,
    *,
    pretrained: str | None = None,
    checkpoint: Path | None = None,
    tokenizer_path: Path | None = None,
    precision: str = "fp32",
    text_precision: str | None = None,
    name: str | None = None,
    source_extra: dict | None = None,
    log: Callable[[str], None] = lambda _msg: None,
    calibrate: bool = True,
) -> tuple[PackManifest, Verification]:
    """Export, write and verify a pack (see :class:`~model_training.pack_builder.PackBuilder`).

    ``precision``: the pack's, and the image tower's; ``text_precision``: the text tower's when it
    differs (pack format 3), None for the same.
    ``calibrate``: measure the pack's score thresholds on the sample photos (False leaves that to
    install time, as for a pack made before calibration).

    ``out_dir`` must not exist yet: a failed export, or one that fails verification, leaves nothing behind.
    """
    _check_precision(precision, "precision")
    if text_precision is not None:
        _check_precision(text_precision, "text precision")
    own_text_precision = text_precision if text_precision != precision else None
    text_precision = own_text_precision or precision
    pack = PackBuilder(out_dir)  # refuses an existing out_dir before a large model is built
    # The tokenizer first: a missing tokenizer file should fail before a large model is built.
    arch_name, model_cfg = resolve_arch(arch)
    tokenizer = open_clip_tokenizer(model_cfg, arch_name, tokenizer_path)
    log(f"building {arch_name} ({pretrained or checkpoint})")
    loaded = build_model(arch, pretrained=pretrained, checkpoint=checkpoint)
    model = loaded.model
    image = image_settings_from_model(model)
    preprocess = eval_transform(model)

    with pack:
        log("exporting the image and text towers to ONNX")
        visual, textual, sequence = export_towers(model, image.size, tokenizer.context_length, pack.dir)
        for path, tower, tower_precision in ((visual, IMAGE, precision), (textual, TEXT, text_precision)):
            if tower_precision != "fp32":
                log(f"converting the {tower} tower to {tower_precision}")
                convert_precision(path, tower_precision, tower)
        text = write_tokenizer(tokenizer, pack.dir)
        text.sequence = sequence
        text.precision = own_text_precision
        source = {
            "architecture": loaded.arch,
            "pretrained": pretrained,
            "checkpoint": Path(checkpoint).name if checkpoint else None,
            "checkpoint_sha256": sha256_file(Path(checkpoint)) if checkpoint else None,
            "model_config": loaded.model_cfg,
        }
        source.update(source_extra or {})
        manifest = PackManifest(
            name=name or default_pack_name(arch, pretrained, checkpoint, precision, own_text_precision),
            embedding_dim=int(loaded.model_cfg["embed_dim"]),
            precision=precision,
            image=image,
            text=text,
            source=source,
            versions={
                "pixfind": desktop_app.__version__,
                "open_clip": open_clip.__version__,
                "torch": torch.__version__,
                "onnx": onnx.__version__,
                "onnxruntime": _onnxruntime_version(),
                "python": platform.python_version(),
            },
            description=f"{loaded.arch} exported from {pretrained or (Path(checkpoint).name if checkpoint else 'random weights')}",
        )
        log("verifying the pack against open_clip")
        result = verify_pack(pack.open(manifest), model, preprocess, tokenizer, precision, text_precision)
        if not result.passed and text.sequence == "trim":
            # "trim" is written only when verified: the same graph padded to the context is the fixed form.
            log(f"texts cut to their length differ from open_clip (worst cosine {result.textual_min_cosine:.6f}); "
                "padding them to the context length instead")
            text.sequence = "fixed"
            result = verify_pack(pack.open(manifest), model, preprocess, tokenizer, precision, text_precision)
        if not result.passed:
            raise PixfindError(
                f"pack verification failed: worst cosine to open_clip is {result.visual_min_cosine:.6f} (image) / "
                f"{result.textual_min_cosine:.6f} (text), below {result.bounds_text()}"
            )
        manifest.verification = result.as_dict()
        pack.finish(manifest, calibrate=calibrate)
    return manifest, result


def export_and_install(
    arch: str,
    *,
    pretrained: str | None,
    checkpoint: Path | None,
    tokenizer: Path | None,
    precision: str,
    name: str | None,
    output: Path | None,
    replace: bool,
    text_precision: str | None = None,
    source_extra: dict | None = None,
    log: Callable[[str], None] | None = None,
) -> Path:
    """Export a pack to ``output``, or install it in the model store when no output is given.

    Returns the pack's folder. ``log`` receives each step and the outcome as one line of text.
    """
    log = log or (lambda _msg: None)
    if name:
        model_store.check_name(name)

    def build(target: Path) -> tuple[PackManifest, Verification]:
        manifest, result = export_pack(arch, target, pretrained=pretrained, checkpoint=checkpoint, tokenizer_path=tokenizer,
                                       precision=precision, text_precision=text_precision, name=name,
                                       source_extra=source_extra, log=log)
        log(f"verified against open_clip on {result.images} images and {result.captions} captions: worst cosine "
            f"image {result.visual_min_cosine:.6f}, text {result.textual_min_cosine:.6f} ({result.bounds_text()})")
        return manifest, result

    if output is not None:
        manifest, _ = build(Path(output))
        log(f"wrote model pack {manifest.name} to {output}")
        return Path(output)
    installed, (manifest, _) = build_and_install(build, replace=replace)
    log(f"installed model {installed.name} ({manifest.embedding_dim}-d, {manifest.precision_label}) at {installed.path}")
    return installed.path


def _onnxruntime_version() -> str:
    import onnxruntime

    return onnxruntime.__version__
