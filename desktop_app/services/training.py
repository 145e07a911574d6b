"""The training module, imported only when a service needs it: the app itself has no torch."""

from __future__ import annotations

import importlib

from ..errors import PixfindError

_HEAVY = {"torch", "torchvision", "open_clip", "onnx", "safetensors", "transformers"}


def import_training(module: str, extra: str = "export"):
    """Import a model_training module, or explain which extra to install."""
    try:
        return importlib.import_module(f"model_training.{module}")
    except ModuleNotFoundError as e:
        if e.name and e.name.split(".")[0] in _HEAVY:
            raise PixfindError(
                f"this command needs the '{extra}' extra ({e.name} is not installed): pip install 'pixfind[{extra}]'"
            ) from None
        raise
