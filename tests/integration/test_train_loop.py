"""The loop's promises: exact resume, best-model selection with patience, schedule, optimiser groups, batch order."""

from __future__ import annotations

import json

import pytest

torch = pytest.importorskip("torch")
open_clip = pytest.importorskip("open_clip")

from model_training import synthetic
from model_training.data.datasets import ImageDataset, collate
from model_training.data.sampler import ResumableBatchSampler
from model_training.data.transforms import train_transform
from model_training.distributed import DistInfo
from model_training.open_clip_models import resolve_arch
from model_training.runs import fit, save_clip
from model_training.tasks import GPRFineTune
from model_training.trainer.loop import LoopConfig
from model_training.trainer.optim import param_groups
from model_training.trainer.schedule import CosineSchedule
from tests.conftest import TINY_CONFIG

OPTIM = {"lr": 1e-3, "min_lr": 1e-4, "lr_multipliers": {"loss.": 100.0}}


def tiny_run(out, *, epochs=2, stop_after=None, evaluate=None, patience=0, seed_model=0):
    name, _ = resolve_arch(str(TINY_CONFIG))
    torch.manual_seed(seed_model)
    clip = open_clip.create_model(name)
    data = synthetic.make_set(synthetic.all_classes()[:3], per_class=4, seed=0)
    dataset = ImageDataset(data.images, train_transform(clip), labels=data.labels)
    module = GPRFineTune(clip, 3, 64)
    loop = LoopConfig(epochs=epochs, progress=False, log_every=1, stop_after_steps=stop_after, patience=patience,
                      eval_every=1 if evaluate else 0)
    result = fit(module, dataset, collate, out_dir=out, batch_size=4, optim=OPTIM, loop=loop, dist=DistInfo(),
                 save_model=save_clip(clip), seed=7, evaluate=evaluate, select="score" if evaluate else None)
    return result, clip


def test_a_crashed_run_resumes_to_exactly_the_uninterrupted_result(tmp_path):
    straight, clip_a = tiny_run(tmp_path / "a")
    assert straight.steps == 6  # 12 images / batch 4 = 3 steps x 2 epochs
    partial, _ = tiny_run(tmp_path / "b", stop_after=4)  # dies mid-way through epoch 2
    assert partial.steps == 4
    resumed, clip_b = tiny_run(tmp_path / "b", seed_model=123)  # fresh process, other init: all state comes from disk
    assert resumed.steps == 6
    for (k, a), b in zip(clip_a.state_dict().items(), clip_b.state_dict().values()):
        assert torch.equal(a, b), k
    def losses(d):
        return [r["loss"] for r in map(json.loads, (d / "log.jsonl").read_text().splitlines()) if r["kind"] == "train"]
    assert losses(tmp_path / "a") == losses(tmp_path / "b")


def test_best_model_is_kept_and_patience_stops_the_run(tmp_path):
    scores = iter([0.5, 0.7, 0.6, 0.65, 0.9])

    def evaluate():
        return {"score": next(scores)}

    result, _ = tiny_run(tmp_path / "p", epochs=2, evaluate=evaluate, patience=2)
    assert result.stopped_early and result.steps == 4 and result.best_metric == 0.7
    rows = [r for r in map(json.loads, (tmp_path / "p" / "log.jsonl").read_text().splitlines()) if r["kind"] == "eval"]
    assert [r["improved"] for r in rows] == [True, True, False, False]


def test_cosine_schedule_with_warmup_by_hand():
    p = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([{"params": [p], "lr": 1.0, "base_lr": 2.0}])
    sched = CosineSchedule(opt, total_steps=12, warmup_steps=2, min_lr_ratio=0.1)
    lrs = []
    for _ in range(13):
        lrs.append(opt.param_groups[0]["lr"])
        sched.step()
    assert lrs[0] == pytest.approx(1.0) and lrs[1] == pytest.approx(2.0)  # (step+1)/warmup x base
    # half-way through the decay (step 2 + 5): 0.1 + 0.9 * 0.5 * (1 + cos(pi/2)) = 0.55
    assert lrs[7] == pytest.approx(2.0 * 0.55)
    assert lrs[12] == pytest.approx(0.2)  # the floor, min_lr_ratio x base


def test_param_groups_give_proxies_their_multiplier_and_spare_gains_from_decay():
    module = GPRFineTune(open_clip.create_model(resolve_arch(str(TINY_CONFIG))[0]), 5, 64)
    groups = param_groups(module, 1e-6, 0.01, {"loss.": 100.0})
    proxies = next(g for g in groups if any(p is module.loss.proxies for p in g["params"]))
    assert proxies["lr"] == pytest.approx(1e-4) and proxies["weight_decay"] == 0.01
    names = {id(p): n for n, p in module.named_parameters()}
    for g in groups:
        for p in g["params"]:
            if names[id(p)].endswith(".bias") or "ln_" in names[id(p)]:
                assert g["weight_decay"] == 0.0
    trained = {names[id(p)] for g in groups for p in g["params"]}
    assert not any(n.startswith(("clip.transformer.", "clip.token_embedding")) for n in trained)


def test_sampler_slices_one_global_batch_across_processes_and_resumes_mid_epoch():
    single = list(ResumableBatchSampler(10, 4, seed=3))
    ranks = [list(ResumableBatchSampler(10, 4, seed=3, rank=r, world_size=2)) for r in range(2)]
    assert len(single) == 2  # the incomplete last batch is dropped
    for b in range(2):
        assert single[b] == ranks[0][b] + ranks[1][b]
    s = ResumableBatchSampler(10, 4, seed=3)
    s.load_state_dict({"epoch": 0, "position": 1})
    assert list(s) == single[1:]
    assert s.state_dict() == {"epoch": 1, "position": 0}
    assert list(s) != single  # a new epoch is a new permutation
    assert len({i for b in single for i, _ in b}) == 8


def test_augmentation_depends_only_on_the_sample_seed():
    data = synthetic.make_set(synthetic.all_classes()[:1], per_class=2, seed=0)
    clip = open_clip.create_model(resolve_arch(str(TINY_CONFIG))[0])
    ds = ImageDataset(data.images, train_transform(clip), labels=data.labels)
    a = ds[(1, 99)]["image"]
    torch.rand(5)
    assert torch.equal(a, ds[(1, 99)]["image"]) and not torch.equal(a, ds[(1, 100)]["image"])
    state = torch.get_rng_state()
    ds[(0, 5)]
    assert torch.equal(state, torch.get_rng_state())  # the global generator is left as it was
