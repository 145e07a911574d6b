"""`pixfind export`: an open_clip model or checkpoint becomes a verified model pack."""

from __future__ import annotations

import platform
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

import onnx
import open_clip
import torch

import desktop_app
from desktop_app.errors import PixfindError
from desktop_app.pack import PRECISIONS, PackManifest, sha256_file, write_manifest

from .onnx_export import convert_precision, export_towers
from .open_clip_models import build_model, eval_transform, resolve_arch
from .preprocess_settings import image_settings_from_model
from .tokenizer_export import open_clip_tokenizer, write_tokenizer
from .verify import Verification, verify_pack


def default_pack_name(arch: str, pretrained: str | None, checkpoint: Path | None, precision: str) -> str:
    origin = pretrained or (Path(checkpoint).stem if checkpoint else "random")
    name = f"{Path(arch).stem}-{origin}".lower().replace("_", "-")
    return name if precision == "fp32" else f"{name}-{precision}"


def export_pack(
    arch: str,
    out_dir: Path,
    *,
    pretrained: str | None = None,
    checkpoint: Path | None = None,
    tokenizer_path: Path | None = None,
    precision: str = "fp32",
    name: str | None = None,
    source_extra: dict | None = None,
    log: Callable[[str], None] = lambda _msg: None,
) -> tuple[PackManifest, Verification]:
    """Export, write and verify a pack in a scratch directory, then move it to ``out_dir``.

    ``out_dir`` must not exist yet: a failed export leaves nothing behind.
    """
    if precision not in PRECISIONS:
        raise PixfindError(f"unknown precision {precision!r} (choose {', '.join(PRECISIONS)})")
    out_dir = Path(out_dir)
    if out_dir.exists():
        raise PixfindError(f"{out_dir}: already exists; choose another output directory or remove it")
    # The tokenizer first: a missing tokenizer file should fail before a large model is built.
    arch_name, model_cfg = resolve_arch(arch)
    tokenizer = open_clip_tokenizer(model_cfg, arch_name, tokenizer_path)
    log(f"building {arch_name} ({pretrained or checkpoint})")
    loaded = build_model(arch, pretrained=pretrained, checkpoint=checkpoint)
    model = loaded.model
    image = image_settings_from_model(model)
    preprocess = eval_transform(model)

    out_dir.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out_dir.parent, prefix=f".{out_dir.name}-") as tmp:
        work = Path(tmp) / "pack"
        work.mkdir()
        log("exporting the image and text towers to ONNX")
        visual, textual = export_towers(model, image.size, tokenizer.context_length, work)
        if precision != "fp32":
            log(f"converting to {precision}")
            convert_precision(visual, precision)
            convert_precision(textual, precision)
        text = write_tokenizer(tokenizer, work)
        source = {
            "architecture": loaded.arch,
            "pretrained": pretrained,
            "checkpoint": Path(checkpoint).name if checkpoint else None,
            "checkpoint_sha256": sha256_file(Path(checkpoint)) if checkpoint else None,
            "model_config": loaded.model_cfg,
        }
        source.update(source_extra or {})
        manifest = PackManifest(
            name=name or default_pack_name(arch, pretrained, checkpoint, precision),
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
        write_manifest(work, manifest)
        log("verifying the pack against open_clip")
        result = verify_pack(work, model, preprocess, tokenizer, precision)
        manifest.verification = result.as_dict()
        write_manifest(work, manifest)
        if not result.passed:
            raise PixfindError(
                f"pack verification failed: worst cosine to open_clip is {result.visual_min_cosine:.6f} (image) / "
                f"{result.textual_min_cosine:.6f} (text), below {result.bound} for {precision}"
            )
        shutil.move(str(work), str(out_dir))
    return manifest, result


def _onnxruntime_version() -> str:
    import onnxruntime

    return onnxruntime.__version__
