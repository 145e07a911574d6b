"""A batch order that is a pure function of (seed, epoch, position): exact resume and DDP sharding."""

from __future__ import annotations

import torch


class ResumableBatchSampler(torch.utils.data.Sampler):
    """Yields this process's share (as (index, augmentation seed) pairs) of each global batch of a seeded per-epoch permutation.

    The global batch (``batch_size`` across all processes) is cut into contiguous per-rank slices, so
    1 process with batch B sees exactly the samples that W processes with batch B together see.
    Incomplete last batches are dropped. ``position`` counts global batches done in the current epoch.
    """

    def __init__(self, size: int, batch_size: int, seed: int = 0, shuffle: bool = True, rank: int = 0, world_size: int = 1):
        if batch_size % world_size:
            raise ValueError(f"global batch {batch_size} is not divisible by {world_size} processes")
        if size < batch_size:
            raise ValueError(f"data set of {size} samples is smaller than one batch of {batch_size}")
        self.size, self.batch_size, self.seed, self.shuffle = size, batch_size, seed, shuffle
        self.rank, self.world_size = rank, world_size
        self.epoch, self.position = 0, 0

    def __len__(self) -> int:
        return self.size // self.batch_size - self.position

    def batches_per_epoch(self) -> int:
        return self.size // self.batch_size

    def _order(self) -> torch.Tensor:
        if not self.shuffle:
            return torch.arange(self.size)
        g = torch.Generator().manual_seed(self.seed * 100_003 + self.epoch)
        return torch.randperm(self.size, generator=g)

    def __iter__(self):
        order = self._order()
        local = self.batch_size // self.world_size
        while self.position < self.batches_per_epoch():
            start = self.position * self.batch_size + self.rank * local
            self.position += 1
            # Each sample carries its own augmentation seed: crops and flips do not depend on which
            # process or worker draws them, nor on whether the run was resumed.
            yield [(int(i), self.seed * 1_000_003 + self.epoch * 10_000_019 + int(i)) for i in order[start:start + local]]
        self.epoch += 1
        self.position = 0

    def state_dict(self) -> dict:
        return {"epoch": self.epoch, "position": self.position}

    def load_state_dict(self, state: dict) -> None:
        self.epoch, self.position = int(state["epoch"]), int(state["position"])
