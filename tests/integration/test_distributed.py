"""Two CPU processes (gloo) train to the same weights as one process with the same global batch."""

from __future__ import annotations

import os
import socket

import pytest

torch = pytest.importorskip("torch")
open_clip = pytest.importorskip("open_clip")

from model_training import synthetic
from model_training.data.datasets import ImageDataset, collate
from model_training.distributed import cleanup, init_distributed
from model_training.feature_cache import CachedPairs, pair_collate
from model_training.open_clip_models import resolve_arch
from model_training.runs import fit, save_clip
from model_training.tasks import GPRFineTune, Realign
from model_training.trainer.loop import LoopConfig
from tests.conftest import TINY_CONFIG


def _train_both(out_dir: str) -> None:
    """GPR-FT (DDP gradient averaging) then realignment (InfoNCE over all-gathered features).

    Adam's eps is raised: some gradients are exactly zero in theory (attention key biases), and Adam
    would blow their rounding noise, which differs with summation order, up to full-size steps.
    """
    torch.set_num_threads(1)
    dist = init_distributed("cpu")
    name, _ = resolve_arch(str(TINY_CONFIG))
    data = synthetic.make_set(synthetic.all_classes()[:4], per_class=4, seed=0)
    loop = LoopConfig(epochs=1, progress=False, log_every=1)

    torch.manual_seed(0)
    clip = open_clip.create_model(name)
    from model_training.data.transforms import train_transform

    ds = ImageDataset(data.images, train_transform(clip), labels=data.labels)
    fit(GPRFineTune(clip, 4, 64), ds, collate, out_dir=f"{out_dir}/gpr", batch_size=8, dist=dist, loop=loop,
        optim={"lr": 1e-3, "lr_multipliers": {"loss.": 10.0}, "min_lr": 1e-4, "eps": 1e-4}, save_model=save_clip(clip), seed=1)

    torch.manual_seed(0)
    clip = open_clip.create_model(name)
    features = torch.nn.functional.normalize(torch.randn(16, 64, generator=torch.Generator().manual_seed(5)), dim=-1).numpy()
    pairs = CachedPairs(features, [[c] for c in data.captions])
    fit(Realign(clip, 3), pairs, pair_collate(open_clip.get_tokenizer(name)), out_dir=f"{out_dir}/realign", batch_size=8,
        dist=dist, loop=loop, optim={"lr": 1e-2, "min_lr": 1e-3, "eps": 1e-4}, save_model=save_clip(clip), seed=1)
    cleanup()


def _worker(rank: int, world: int, port: int, out_dir: str) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), WORLD_SIZE=str(world),
                      LOCAL_RANK=str(rank))
    _train_both(out_dir)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_processes_equal_one(tmp_path, monkeypatch):
    for var in ("RANK", "WORLD_SIZE", "LOCAL_RANK"):
        monkeypatch.delenv(var, raising=False)
    _train_both(str(tmp_path / "one"))
    torch.multiprocessing.spawn(_worker, args=(2, _free_port(), str(tmp_path / "two")), nprocs=2, join=True)
    for task in ("gpr", "realign"):
        one = torch.load(tmp_path / "one" / task / "best.pth", weights_only=True)
        two = torch.load(tmp_path / "two" / task / "best.pth", weights_only=True)
        start = open_clip.create_model(resolve_arch(str(TINY_CONFIG))[0]).state_dict()
        moved = [k for k in one if not torch.allclose(one[k], start[k])]
        assert moved, task
        for k in one:
            torch.testing.assert_close(two[k], one[k], rtol=1e-4, atol=1e-5, msg=f"{task}: {k}")
