"""AdamW with per-group learning rates: no weight decay on gains/biases, proxies at a multiple of the lr."""

from __future__ import annotations

import torch


def _no_decay(name: str, p: torch.Tensor) -> bool:
    return p.ndim < 2 or "bias" in name or "ln" in name or "norm" in name or "logit_scale" in name or "logit_bias" in name


def param_groups(module: torch.nn.Module, lr: float, weight_decay: float, lr_multipliers: dict[str, float] | None = None) -> list[dict]:
    """Groups keyed by (lr multiplier, decay?). ``lr_multipliers`` maps a name prefix to its multiplier."""
    lr_multipliers = lr_multipliers or {}
    groups: dict[tuple[float, bool], list] = {}
    for name, p in module.named_parameters():
        if not p.requires_grad:
            continue
        mult = next((m for prefix, m in lr_multipliers.items() if name.startswith(prefix)), 1.0)
        groups.setdefault((mult, not _no_decay(name, p)), []).append(p)
    return [
        {"params": ps, "lr": lr * mult, "base_lr": lr * mult, "lr_mult": mult, "weight_decay": weight_decay if decay else 0.0}
        for (mult, decay), ps in sorted(groups.items(), key=lambda kv: kv[0])
    ]


def build_optimizer(module: torch.nn.Module, cfg: dict) -> torch.optim.Optimizer:
    groups = param_groups(module, cfg["lr"], cfg["weight_decay"], cfg.get("lr_multipliers"))
    if not groups:
        raise ValueError("no trainable parameters")
    return torch.optim.AdamW(groups, lr=cfg["lr"], betas=tuple(cfg["betas"]), eps=cfg["eps"])
