"""Loading model checkpoints safely: a checkpoint is untrusted input."""

from __future__ import annotations

from pathlib import Path

import torch

from desktop_app.errors import PixfindError, one_line

CHECKPOINT_SUFFIXES = (".pth", ".pt", ".bin", ".safetensors")
_WRAPPER_KEYS = ("state_dict", "model", "model_state_dict", "module")


def load_state_dict(path: Path) -> dict[str, torch.Tensor]:
    """Read a full state dict from .pth/.pt (weights_only unpickling) or .safetensors."""
    path = Path(path)
    if not path.is_file():
        raise PixfindError(f"{path}: checkpoint not found")
    if path.suffix not in CHECKPOINT_SUFFIXES:
        raise PixfindError(f"{path}: unknown checkpoint type {path.suffix!r} (expected {', '.join(CHECKPOINT_SUFFIXES)})")
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            state = load_file(str(path), device="cpu")
        else:
            state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # unpickling and safetensors raise many types for bad files
        raise PixfindError(f"{path}: cannot read checkpoint ({one_line(e)})") from None
    return unwrap_state_dict(state, path)


def unwrap_state_dict(state: object, path: Path) -> dict[str, torch.Tensor]:
    """Accept a bare state dict, or one nested under a training wrapper key; drop DDP's 'module.' prefix."""
    for _ in range(3):
        if isinstance(state, dict) and not _looks_like_state_dict(state):
            inner = next((state[k] for k in _WRAPPER_KEYS if isinstance(state.get(k), dict)), None)
            if inner is None:
                break
            state = inner
    if not isinstance(state, dict) or not _looks_like_state_dict(state):
        raise PixfindError(f"{path}: does not contain a model state dict")
    if all(k.startswith("module.") for k in state):
        state = {k[len("module.") :]: v for k, v in state.items()}
    return state


def _looks_like_state_dict(d: dict) -> bool:
    return bool(d) and all(isinstance(k, str) for k in d) and any(isinstance(v, torch.Tensor) for v in d.values())


def load_into(model: torch.nn.Module, state: dict[str, torch.Tensor], path: Path, arch: str) -> None:
    """Strict load; a mismatch names the missing and unexpected keys in one line."""
    own = model.state_dict()
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    if missing or unexpected:
        parts = []
        if missing:
            parts.append(f"{len(missing)} missing keys ({_preview(missing)})")
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected keys ({_preview(unexpected)})")
        raise PixfindError(f"{path}: does not fit architecture {arch}: " + "; ".join(parts))
    wrong = [k for k in own if tuple(own[k].shape) != tuple(state[k].shape)]
    if wrong:
        k = wrong[0]
        raise PixfindError(
            f"{path}: does not fit architecture {arch}: {len(wrong)} tensors have other shapes "
            f"(e.g. {k}: checkpoint {tuple(state[k].shape)} vs model {tuple(own[k].shape)})"
        )
    model.load_state_dict(state, strict=True)


def _preview(keys: list[str], n: int = 4) -> str:
    shown = ", ".join(keys[:n])
    return shown + (", …" if len(keys) > n else "")
