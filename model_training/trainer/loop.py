"""The training loop: steps, periodic evaluation with best-model selection and patience, exact resume."""

from __future__ import annotations

import contextlib
import math
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from torch.nn.parallel import DistributedDataParallel

from desktop_app.errors import PixfindError, one_line
from desktop_app.progress import progress_bar

from ..checkpoint import load_resume_state, resume_error, state_mismatch
from ..distributed import DistInfo, all_reduce_mean, barrier
from .logs import RunLog
from .rng import rng_state, set_rng_state
from .schedule import CosineSchedule

RESUME_FILE = "last.pt"
BEST_FILE = "best.pth"


def set_aside_resume(out_dir: Path) -> Path | None:
    """Move a run folder's last.pt aside (to last.pt.old, last.pt.old-2, ...) so that the run starts over;
    return where it went, or None when there was none. The rest of the folder is left as it is."""
    path = Path(out_dir) / RESUME_FILE
    if not path.is_file():
        return None
    n = 1
    while True:
        target = path.with_name(RESUME_FILE + (".old" if n == 1 else f".old-{n}"))
        if not target.exists():
            break
        n += 1
    try:
        os.replace(path, target)
    except OSError as e:
        raise PixfindError(f"{path}: cannot move it aside to start the run over ({e.strerror or one_line(e)})") from None
    return target


@dataclass
class LoopConfig:
    epochs: int = 1
    max_steps: int | None = None
    grad_clip: float | None = 1.0
    precision: str = "fp32"  # or "bf16": autocast on GPU only; CPU runs stay fp32
    log_every: int = 10
    eval_every: int = 0  # steps; 0 = at the end of each epoch
    patience: int = 0  # evaluations without gain before stopping; 0 = never stop early
    checkpoint_every: int = 0  # steps; 0 = only at evaluations and at the end
    num_workers: int = 0
    progress: bool = True
    stop_after_steps: int | None = None  # ends this process early (simulates a crash in tests)


@dataclass
class FitResult:
    steps: int
    best_metric: float | None
    best_path: Path
    stopped_early: bool


class Trainer:
    """Runs ``module(batch) -> {"loss": ..., ...}`` over a resumable batch order.

    ``evaluate()`` returns metrics; ``select`` names the one to maximise. ``save_model(path)`` writes
    what the run delivers (an open_clip state dict) whenever the selected metric improves.
    """

    def __init__(self, module: torch.nn.Module, dataset, sampler, collate: Callable, optimizer, schedule: CosineSchedule,
                 out_dir: Path, cfg: LoopConfig, dist: DistInfo, save_model: Callable[[Path], None],
                 evaluate: Callable[[], dict] | None = None, select: str | None = None, log_extra: dict | None = None):
        self.module, self.dataset, self.sampler, self.collate = module, dataset, sampler, collate
        self.optimizer, self.schedule, self.cfg, self.dist = optimizer, schedule, cfg, dist
        self.out_dir = Path(out_dir)
        self.save_model, self.evaluate, self.select = save_model, evaluate, select
        self.wrapped = (DistributedDataParallel(module, device_ids=[dist.device.index] if dist.device.type == "cuda" else None)
                        if dist.distributed else module)
        self.step, self.best, self.evals_since_best = 0, None, 0
        self.epoch_position = {"epoch": 0, "position": 0}
        self.log = RunLog(self.out_dir, enabled=dist.is_main)
        if dist.is_main and log_extra:
            self.log.write("config", 0, log_extra)

    @property
    def total_steps(self) -> int:
        per_epoch = self.sampler.batches_per_epoch()
        total = per_epoch * self.cfg.epochs
        return min(total, self.cfg.max_steps) if self.cfg.max_steps else total

    # ---------------------------------------------------------------- state
    def state_dict(self) -> dict:
        return {
            "module": self.module.state_dict(), "optimizer": self.optimizer.state_dict(),
            "schedule": self.schedule.state_dict(), "rng": rng_state(), "data": dict(self.epoch_position),
            "step": self.step, "best": self.best, "evals_since_best": self.evals_since_best,
        }

    def save_state(self) -> None:
        if self.dist.is_main:
            tmp = self.out_dir / (RESUME_FILE + ".tmp")
            torch.save(self.state_dict(), tmp)
            os.replace(tmp, self.out_dir / RESUME_FILE)
        barrier()

    def try_resume(self) -> bool:
        """Continue from the run folder's last.pt, if there is one; any fault in it is one PixfindError line."""
        path = self.out_dir / RESUME_FILE
        if not path.is_file():
            return False
        state = load_resume_state(path)
        problem = state_mismatch(self.module.state_dict(), state["module"])
        if problem:
            raise resume_error(path, f"it does not fit this run's model: {problem}")
        for part, restore in (("module", lambda: self.module.load_state_dict(state["module"])),
                              ("optimizer", lambda: self._load_optimizer(state["optimizer"])),
                              ("schedule", lambda: self.schedule.load_state_dict(state["schedule"])),
                              ("rng", lambda: set_rng_state(state["rng"]))):
            try:
                restore()
            except Exception as e:  # noqa: BLE001 - torch and numpy raise many types for states that do not fit
                raise resume_error(path, f"its {part} state does not fit this run ({type(e).__name__}: {one_line(e, 120)})") from None
        self.epoch_position = {"epoch": state["data"]["epoch"], "position": state["data"]["position"]}
        self.step, self.best, self.evals_since_best = state["step"], state["best"], state["evals_since_best"]
        return True

    def _load_optimizer(self, saved: dict) -> None:
        """Load the optimizer state; its moment tensors must have their parameters' shapes."""
        self.optimizer.load_state_dict(saved)
        for group in self.optimizer.param_groups:
            for p in group["params"]:
                for name, value in self.optimizer.state.get(p, {}).items():
                    if torch.is_tensor(value) and value.dim() > 0 and value.shape != p.shape:
                        raise ValueError(f"{name} has shape {tuple(value.shape)} for a parameter of shape {tuple(p.shape)}")

    # ---------------------------------------------------------------- loop
    def _autocast(self):
        if self.cfg.precision == "bf16" and self.dist.device.type == "cuda":
            return torch.autocast("cuda", dtype=torch.bfloat16)
        return contextlib.nullcontext()

    def _to_device(self, batch: dict) -> dict:
        return {k: v.to(self.dist.device, non_blocking=True) if torch.is_tensor(v) else v for k, v in batch.items()}

    def _run_eval(self) -> bool:
        """Evaluate, keep the best model, return True when patience has run out."""
        if self.evaluate is None:
            return False
        self.module.eval()
        with torch.no_grad():
            metrics = self.evaluate() if self.dist.is_main else {}
        self.module.train()
        if self.dist.is_main:
            value = metrics[self.select]
            improved = self.best is None or value > self.best
            if improved:
                self.best, self.evals_since_best = value, 0
                self.save_model(self.out_dir / BEST_FILE)
            else:
                self.evals_since_best += 1
            self.log.write("eval", self.step, {**metrics, "best": self.best, "improved": improved})
        stop = torch.tensor([self.evals_since_best, 0 if self.best is None else 1], dtype=torch.float64)
        if self.dist.distributed:
            torch.distributed.broadcast(stop, 0)
        self.evals_since_best = int(stop[0])
        return bool(self.cfg.patience and self.evals_since_best >= self.cfg.patience)

    def fit(self) -> FitResult:
        self.out_dir.mkdir(parents=True, exist_ok=True)
        self.try_resume()
        total = self.total_steps
        self.module.train()
        show = None if self.cfg.progress and self.dist.is_main else False  # None: when stderr is a terminal
        with progress_bar("train", unit="step", enabled=show) as progress:
            progress(self.step, total)
            stopped_early, steps_this_run = False, 0
            while self.step < total and not stopped_early:
                self.sampler.load_state_dict(self.epoch_position)
                loader = torch.utils.data.DataLoader(self.dataset, batch_sampler=self.sampler, collate_fn=self.collate,
                                                     num_workers=self.cfg.num_workers)
                for batch in loader:
                    values = self._train_step(batch)
                    self.step += 1
                    steps_this_run += 1
                    self.epoch_position["position"] += 1
                    if self.epoch_position["position"] >= self.sampler.batches_per_epoch():
                        self.epoch_position = {"epoch": self.epoch_position["epoch"] + 1, "position": 0}
                    progress(self.step, total)
                    if self.step % self.cfg.log_every == 0 or self.step == total:
                        self.log.write("train", self.step, {**values, "lr": self.optimizer.param_groups[0]["lr"],
                                                            "epoch": self.epoch_position["epoch"]})
                    end_of_epoch = self.epoch_position["position"] == 0
                    due = (self.step % self.cfg.eval_every == 0) if self.cfg.eval_every else end_of_epoch
                    if due or self.step == total:
                        stopped_early = self._run_eval()
                        self.save_state()
                    elif self.cfg.checkpoint_every and self.step % self.cfg.checkpoint_every == 0:
                        self.save_state()
                    if self.cfg.stop_after_steps and steps_this_run >= self.cfg.stop_after_steps:
                        self.save_state()
                        return FitResult(self.step, self.best, self.out_dir / BEST_FILE, False)
                    if stopped_early or self.step >= total or end_of_epoch:
                        break
        if self.evaluate is None and self.dist.is_main:
            self.save_model(self.out_dir / BEST_FILE)
        self.log.close()
        barrier()
        return FitResult(self.step, self.best, self.out_dir / BEST_FILE, stopped_early)

    def _train_step(self, batch: dict) -> dict:
        batch = self._to_device(batch)
        with self._autocast():
            out = self.wrapped(batch)
        loss = out["loss"]
        if not math.isfinite(loss.item()):
            raise FloatingPointError(f"loss became {loss.item()} at step {self.step}")
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        values = {}
        if self.cfg.grad_clip:
            params = [p for g in self.optimizer.param_groups for p in g["params"]]
            values["grad_norm"] = float(torch.nn.utils.clip_grad_norm_(params, self.cfg.grad_clip))
        self.optimizer.step()
        self.schedule.step()
        for k, v in out.items():
            values[k] = all_reduce_mean(float(v.detach()), self.dist.device) if torch.is_tensor(v) and v.numel() == 1 else v
        return values
