"""Loading model checkpoints safely: a checkpoint is untrusted input."""

from __future__ import annotations

import re
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
    except Exception as e:  # noqa: BLE001 - unpickling and safetensors raise many types for bad files
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
    problem = state_mismatch(model.state_dict(), state)
    if problem:
        raise PixfindError(f"{path}: does not fit architecture {arch}: {problem}")
    model.load_state_dict(state, strict=True)


def state_mismatch(own: dict[str, torch.Tensor], state: dict[str, torch.Tensor]) -> str | None:
    """How ``state`` does not fit a model whose state dict is ``own`` (missing, unexpected or
    other-shaped tensors), in a few words; None when it fits."""
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    if missing or unexpected:
        parts = []
        if missing:
            parts.append(f"{len(missing)} missing keys ({_preview(missing)})")
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected keys ({_preview(unexpected)})")
        return "; ".join(parts)
    wrong = [k for k in own if tuple(own[k].shape) != tuple(state[k].shape)]
    if wrong:
        k = wrong[0]
        return (f"{len(wrong)} tensors have other shapes "
                f"(e.g. {k}: checkpoint {tuple(state[k].shape)} vs model {tuple(own[k].shape)})")
    return None


def _preview(keys: list[str], n: int = 4) -> str:
    shown = ", ".join(keys[:n])
    return shown + (", …" if len(keys) > n else "")


# --------------------------------------------------------------------------- a run's resume state

#: What a training run's last.pt holds (model_training.trainer.loop.Trainer.state_dict).
RESUME_KEYS = ("module", "optimizer", "schedule", "rng", "data", "step", "best", "evals_since_best")


def resume_error(path: Path, problem: str) -> PixfindError:
    """The one line for a run's checkpoint that training cannot resume from, with the way out."""
    return PixfindError(
        f"{path}: cannot resume training from it: {problem}; delete it, or run the command again with --fresh "
        "to set it aside and start the run over"
    )


def load_resume_state(path: Path) -> dict:
    """A run's resume checkpoint (weights_only unpickling: no code in the file runs), checked for the
    layout :data:`RESUME_KEYS` describes; whatever is wrong with it is one :func:`resume_error`."""
    path = Path(path)
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - unpickling raises many types for damaged or hostile files
        raise resume_error(path, f"cannot read it, it is damaged or not a training checkpoint ({_load_failure(e)})") from None
    if not isinstance(state, dict):
        raise resume_error(path, f"not a training checkpoint (it holds a {type(state).__name__}, not a dict)")
    missing = [k for k in RESUME_KEYS if k not in state]
    if missing:
        raise resume_error(path, f"not a complete training checkpoint (no {', '.join(missing)})")
    problem = _resume_layout_problem(state)
    if problem:
        raise resume_error(path, f"damaged training checkpoint ({problem})")
    return state


def _resume_layout_problem(state: dict) -> str | None:
    module = state["module"]
    if not isinstance(module, dict) or not all(isinstance(k, str) and isinstance(v, torch.Tensor)
                                               for k, v in module.items()):
        return "module is not a state dict of tensors"
    optimizer = state["optimizer"]
    if not isinstance(optimizer, dict) or not isinstance(optimizer.get("state"), dict) \
            or not isinstance(optimizer.get("param_groups"), list):
        return "optimizer is not an optimizer state"
    schedule = state["schedule"]
    if not isinstance(schedule, dict) or not _is_count(schedule.get("step_count")):
        return "schedule is not a schedule state"
    if not isinstance(state["rng"], dict):
        return "rng is not a random generator state"
    data = state["data"]
    if not isinstance(data, dict) or not _is_count(data.get("epoch")) or not _is_count(data.get("position")):
        return "data is not a position in the data (epoch, position)"
    for key in ("step", "evals_since_best"):
        if not _is_count(state[key]):
            return f"{key} is {_short(state[key])}, not a count"
    best = state["best"]
    if best is not None and (isinstance(best, bool) or not isinstance(best, (int, float))):
        return f"best is {_short(best)}, not a number"
    return None


def _is_count(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _short(value: object) -> str:
    return one_line(repr(value), 40)


def _load_failure(e: Exception) -> str:
    """torch.load's error in a few words: its first sentence, and for a weights_only refusal the
    reason alone (without torch's advice to load the file unsafely)."""
    text = re.sub(r"\x1b\[[0-9;]*m", "", str(e)).strip()
    refused = "WeightsUnpickler error:" in text
    if refused:
        text = text.split("WeightsUnpickler error:", 1)[1].strip()
    first = re.split(r"\.\s|\n\s*\n", text, maxsplit=1)[0].strip()
    if refused:
        return f"refused by the safe loader: {one_line(first, 120)}"
    return f"{type(e).__name__}: {one_line(first, 120)}" if first else type(e).__name__
