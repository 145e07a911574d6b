"""Run configuration: task defaults <- a YAML file <- dotted command-line overrides (``optim.lr=1e-5``)."""

from __future__ import annotations

import copy
import re
from pathlib import Path

import yaml

from desktop_app.errors import PixfindError


class _Loader(yaml.SafeLoader):
    """YAML 1.1 reads ``1e-6`` as a string; learning rates are written that way, so read it as a float."""


_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:\d+\.\d*|\.\d+|\d+)(?:[eE][-+]?\d+)?$|^[-+]?\d+[eE][-+]?\d+$|^[-+]?\.(?:inf|Inf|INF)$|^\.(?:nan|NaN|NAN)$"),
    list("-+0123456789."),
)


def _yaml(text: str):
    return yaml.load(text, Loader=_Loader)

_MODEL = {"arch": None, "pretrained": None, "checkpoint": None, "grad_checkpointing": False, "patch_dropout": 0.0}
_TRAIN = {"epochs": 3, "max_steps": None, "grad_clip": 1.0, "precision": "bf16", "log_every": 50, "eval_every": 0,
          "patience": 50, "checkpoint_every": 1000, "seed": 0, "output_dir": "runs/run", "device": "auto", "progress": True}
_OPTIM = {"lr": 1e-6, "weight_decay": 0.01, "betas": [0.9, 0.999], "eps": 1e-8, "warmup_steps": 0, "min_lr": 1e-7,
          "proxy_lr_mult": 100.0}
_EVAL = {"folder": None, "gpr1200": None, "instre": None, "cub": None, "revisited": [], "knn_train": None, "knn_val": None,
         "zero_shot": None, "captions": None, "captions_root": None, "metric": "i2i_map", "batch_size": 128}
_AUG = {"resize_ratio": 1.125, "hflip": True, "color_jitter": 0.4}

DEFAULTS: dict[str, dict] = {
    "gpr-ft": {
        "model": _MODEL, "train": _TRAIN, "optim": _OPTIM, "eval": _EVAL,
        "data": {"train": [], "batch_size": 128, "workers": 4, "augment": _AUG},
        "loss": {"scale": 30.0, "margin": 0.1},
    },
    "mcip": {
        "model": _MODEL, "train": _TRAIN, "optim": _OPTIM, "eval": _EVAL,
        "data": {"train": [], "pseudo_captions": [], "batch_size": 128, "workers": 4, "augment": _AUG},
        "loss": {"scale": 30.0, "margin": 0.1, "class_weight": 0.75, "caption_weight": 0.25, "hard_weight": 0.1},
    },
    "realign": {
        "model": _MODEL, "optim": {**_OPTIM, "lr": 1e-5, "weight_decay": 0.2, "betas": [0.9, 0.98], "eps": 1e-6, "min_lr": 0.0},
        "train": {**_TRAIN, "epochs": 1, "eval_every": 0, "patience": 0},
        "eval": {**_EVAL, "metric": "t2i_r5"},
        "data": {"captions": [], "batch_size": 16384, "workers": 4, "feature_cache": None, "feature_batch_size": 256},
        "loss": {"type": "auto"},
        "realign": {"unlocked_text_tensors": 16},
    },
    "pseudo-captions": {
        "model": _MODEL,
        "data": {"images": [], "corpus": None, "output": None, "corpus_cache": None, "batch_size": 256, "workers": 4},
        "retrieval": {"top_k": 20, "threshold": 0.27},
        "train": {"device": "auto", "progress": True},
    },
}


def _merge(base: dict, update: dict, where: str) -> dict:
    out = copy.deepcopy(base)
    for key, value in update.items():
        if key not in base:
            known = ", ".join(sorted(base))
            raise PixfindError(f"unknown setting {where}{key} (known here: {known})")
        if isinstance(base[key], dict) and base[key] and isinstance(value, dict):
            out[key] = _merge(base[key], value, f"{where}{key}.")
        else:
            out[key] = value
    return out


def parse_override(text: str) -> dict:
    """``a.b.c=value`` -> {"a": {"b": {"c": value}}}; the value is read as YAML (numbers, lists, null)."""
    if "=" not in text:
        raise PixfindError(f"override {text!r} must look like section.key=value")
    path, raw = text.split("=", 1)
    try:
        value = _yaml(raw) if raw.strip() else None
    except yaml.YAMLError:
        value = raw
    out: dict = {}
    node = out
    keys = path.strip().split(".")
    for k in keys[:-1]:
        node = node.setdefault(k, {})
    node[keys[-1]] = value
    return out


def load_config(task: str, path: Path | None = None, overrides: list[str] | tuple[str, ...] = ()) -> dict:
    if task not in DEFAULTS:
        raise PixfindError(f"unknown task {task!r} (choose {', '.join(DEFAULTS)})")
    cfg = copy.deepcopy(DEFAULTS[task])
    if path is not None:
        path = Path(path)
        if not path.is_file():
            raise PixfindError(f"{path}: config file not found")
        try:
            loaded = _yaml(path.read_text(encoding="utf-8")) or {}
        except yaml.YAMLError as e:
            raise PixfindError(f"{path}: invalid YAML ({str(e).splitlines()[0]})") from None
        if not isinstance(loaded, dict):
            raise PixfindError(f"{path}: a config must be a mapping of sections")
        loaded.pop("task", None)
        cfg = _merge(cfg, loaded, "")
    for text in overrides:
        cfg = _merge(cfg, parse_override(text), "")
    if not cfg["model"]["arch"]:
        raise PixfindError("no model: set model.arch (and model.pretrained or model.checkpoint)")
    return cfg


def find_shipped_config(name: str) -> Path:
    """A config shipped in model_training/configs, by file name with or without .yaml."""
    folder = Path(__file__).parent / "configs"
    candidate = folder / (name if name.endswith(".yaml") else name + ".yaml")
    if not candidate.is_file():
        shipped = ", ".join(sorted(p.stem for p in folder.glob("*.yaml")))
        raise PixfindError(f"{name}: no such config file or shipped config (shipped: {shipped})")
    return candidate
