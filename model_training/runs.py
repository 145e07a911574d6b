"""Assembling a run: sampler, optimiser, schedule and loop around a task module and a data set."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import torch

from .data.sampler import ResumableBatchSampler
from .distributed import DistInfo
from .trainer.loop import FitResult, LoopConfig, Trainer
from .trainer.optim import build_optimizer
from .trainer.rng import seed_everything
from .trainer.schedule import CosineSchedule

OPTIM_DEFAULTS = {"lr": 1e-6, "weight_decay": 0.01, "betas": (0.9, 0.999), "eps": 1e-8, "warmup_steps": 0,
                  "min_lr": 1e-7, "lr_multipliers": {}}


def save_clip(clip: torch.nn.Module) -> Callable[[Path], None]:
    """What a run delivers: the full open_clip state dict (image + text), loadable with strict=True."""
    def save(path: Path) -> None:
        tmp = Path(str(path) + ".tmp")
        torch.save({k: v.detach().cpu() for k, v in clip.state_dict().items()}, tmp)
        tmp.replace(path)
    return save


def fit(module: torch.nn.Module, dataset, collate: Callable, *, out_dir: Path, batch_size: int, optim: dict,
        loop: LoopConfig, dist: DistInfo, save_model: Callable[[Path], None], seed: int = 0,
        evaluate: Callable[[], dict] | None = None, select: str | None = None, log_extra: dict | None = None) -> FitResult:
    seed_everything(seed + dist.rank)
    optim = {**OPTIM_DEFAULTS, **optim}
    module.to(dist.device)
    sampler = ResumableBatchSampler(len(dataset), batch_size, seed=seed, rank=dist.rank, world_size=dist.world_size)
    optimizer = build_optimizer(module, optim)
    per_epoch = sampler.batches_per_epoch()
    total = min(per_epoch * loop.epochs, loop.max_steps) if loop.max_steps else per_epoch * loop.epochs
    schedule = CosineSchedule(optimizer, total, optim["warmup_steps"], optim["min_lr"] / optim["lr"])
    trainer = Trainer(module, dataset, sampler, collate, optimizer, schedule, out_dir, loop, dist, save_model,
                      evaluate, select, log_extra)
    return trainer.fit()
