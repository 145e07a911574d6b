"""The training module, imported only when a service needs it: the app itself has no torch."""

from __future__ import annotations

import importlib

from ..errors import PixfindError

# Top-level modules of the optional extras (pyproject.toml): a missing one is explained in one
# line that names the extra to install. The 'train' extra includes the 'export' one.
_EXPORT = {"torch", "torchvision", "open_clip", "onnx", "safetensors", "transformers"}
_TRAIN = {"omegaconf", "yaml", "braceexpand", "tensorboard"}
_HEAVY = _EXPORT | _TRAIN


def import_training(module: str, extra: str = "export"):
    """Import a model_training module, or explain which extra to install.

    ``extra`` is the extra the caller's command needs ('export' or 'train'); a module that only
    the 'train' extra provides is reported as needing 'train' whatever the caller asked.
    """
    try:
        return importlib.import_module(f"model_training.{module}")
    except ModuleNotFoundError as e:
        top = e.name.split(".")[0] if e.name else None
        if top in _HEAVY:
            needed = "train" if top in _TRAIN else extra
            raise PixfindError(
                f"this command needs the '{needed}' extra ({e.name} is not installed): pip install 'pixfind[{needed}]'"
            ) from None
        raise
