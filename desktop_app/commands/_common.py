"""Helpers shared by the subcommands."""

from __future__ import annotations

import importlib

from rich.console import Console

from ..errors import PixfindError

console = Console(highlight=False)
err_console = Console(stderr=True, highlight=False)


def import_training(module: str, extra: str = "export"):
    """Import a model_training module, or explain which extra to install: the app itself has no torch."""
    try:
        return importlib.import_module(f"model_training.{module}")
    except ModuleNotFoundError as e:
        if e.name and e.name.split(".")[0] in {"torch", "torchvision", "open_clip", "onnx", "safetensors", "transformers"}:
            raise PixfindError(
                f"this command needs the '{extra}' extra ({e.name} is not installed): pip install 'pixfind[{extra}]'"
            ) from None
        raise


def human_size(n: int) -> str:
    size = float(n)
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} GB"
