"""Linear warm-up then cosine decay to a floor, applied to every group in proportion to its base lr."""

from __future__ import annotations

import math


class CosineSchedule:
    def __init__(self, optimizer, total_steps: int, warmup_steps: int = 0, min_lr_ratio: float = 0.0):
        self.optimizer, self.total_steps = optimizer, max(1, total_steps)
        self.warmup_steps, self.min_lr_ratio = warmup_steps, min_lr_ratio
        self.step_count = 0
        self._apply()

    def factor(self, step: int) -> float:
        if step < self.warmup_steps:
            return (step + 1) / self.warmup_steps
        progress = min(1.0, (step - self.warmup_steps) / max(1, self.total_steps - self.warmup_steps))
        return self.min_lr_ratio + (1 - self.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * progress))

    def _apply(self) -> None:
        f = self.factor(self.step_count)
        for group in self.optimizer.param_groups:
            group["lr"] = group["base_lr"] * f

    def step(self) -> None:
        self.step_count += 1
        self._apply()

    def state_dict(self) -> dict:
        return {"step_count": self.step_count}

    def load_state_dict(self, state: dict) -> None:
        self.step_count = int(state["step_count"])
        self._apply()
