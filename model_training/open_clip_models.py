"""Building open_clip models by architecture name, config file or checkpoint, offline."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import open_clip
import torch

from desktop_app.errors import PixfindError, one_line

from .checkpoint import load_into, load_state_dict


@dataclass
class LoadedModel:
    model: torch.nn.Module
    arch: str
    model_cfg: dict
    pretrained: str | None = None
    checkpoint: Path | None = None


def resolve_arch(arch: str) -> tuple[str, dict]:
    """An open_clip architecture name, or a path to a model config .json (registered under its file stem)."""
    path = Path(arch)
    if path.suffix == ".json":
        if not path.is_file():
            raise PixfindError(f"{path}: model config not found")
        try:
            cfg = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as e:
            raise PixfindError(f"{path}: unreadable model config ({e})") from None
        if not isinstance(cfg, dict) or not all(k in cfg for k in ("embed_dim", "vision_cfg", "text_cfg")):
            raise PixfindError(f"{path}: not an open_clip model config (needs embed_dim, vision_cfg, text_cfg)")
        open_clip.add_model_config(path)
        return path.stem, cfg
    cfg = open_clip.get_model_config(arch)
    if cfg is None:
        raise PixfindError(f"unknown open_clip architecture {arch!r} (see `open_clip.list_models()`, or pass a config .json)")
    return arch, cfg


def build_model(arch: str, pretrained: str | None = None, checkpoint: Path | None = None) -> LoadedModel:
    if pretrained and checkpoint:
        raise PixfindError("give either --pretrained or --checkpoint, not both")
    name, cfg = resolve_arch(arch)
    if checkpoint is not None:
        state = load_state_dict(Path(checkpoint))
        model = open_clip.create_model(name, pretrained=None)
        load_into(model, state, Path(checkpoint), name)
    else:
        try:
            model = open_clip.create_model(name, pretrained=pretrained or None)
        except (RuntimeError, OSError, ValueError) as e:  # hub download failures surface as these
            raise PixfindError(
                f"cannot load pretrained weights {pretrained!r} for {name} ({one_line(e)}); "
                "without network, download the checkpoint elsewhere and pass --checkpoint FILE"
            ) from None
    model.eval()
    return LoadedModel(model, name, cfg, pretrained, Path(checkpoint) if checkpoint else None)


def eval_transform(model: torch.nn.Module):
    """open_clip's own inference preprocessing for this model: the reference the app must match."""
    from open_clip.transform import PreprocessCfg, image_transform_v2

    return image_transform_v2(PreprocessCfg(**open_clip.get_model_preprocess_cfg(model)), is_train=False)
