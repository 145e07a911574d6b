"""Configs: typed defaults <- YAML <- dotted overrides; shipped configs carry the paper's settings."""

from __future__ import annotations

import dataclasses
import importlib.util
from dataclasses import asdict
from pathlib import Path

import pytest

from desktop_app.errors import PixfindError
from model_training.config import MCIPConfig, RealignConfig, find_shipped_config, load_config, parse_override, to_dict

ROOT = Path(__file__).parents[2]

SHIPPED = sorted(p for p in (Path(__file__).parents[2] / "model_training" / "configs").glob("*.yaml")
                 if "task: benchmark" not in p.read_text())


def test_overrides_are_dotted_paths_with_yaml_values():
    assert parse_override("optim.lr=1e-5") == {"optim": {"lr": 1e-5}}
    assert parse_override("data.train=[{imagefolder: /x}]") == {"data": {"train": [{"imagefolder": "/x"}]}}
    assert parse_override("model.checkpoint=") == {"model": {"checkpoint": None}}
    with pytest.raises(PixfindError, match="section.key=value"):
        parse_override("optim.lr")


def test_yaml_then_overrides_win(tmp_path):
    f = tmp_path / "c.yaml"
    f.write_text("task: gpr-ft\nmodel: {arch: ViT-B-32, pretrained: openai}\noptim: {lr: 2e-6}\ntrain: {epochs: 5}\n")
    cfg = load_config("gpr-ft", f, ["train.epochs=1", "loss.margin=0.2", "optim.lr=1e-5"])
    assert cfg.optim.lr == 1e-5 and cfg.train.epochs == 1 and asdict(cfg.loss) == {"scale": 30.0, "margin": 0.2}
    assert cfg.optim.proxy_lr_mult == 100.0  # untouched defaults stay
    assert load_config("gpr-ft", f).optim.lr == 2e-6


def test_unknown_keys_and_missing_model_are_clear_errors(tmp_path):
    with pytest.raises(PixfindError, match="unknown setting train.epoch .*known here: .*epochs"):
        load_config("gpr-ft", None, ["model.arch=ViT-B-32", "train.epoch=1"])
    # a typo in a file, however deep, is refused naming the file and the dotted path
    (tmp_path / "typo.yaml").write_text("model: {arch: ViT-B-32}\ndata:\n  train:\n    - {imagefolder: /a}\n    - {imagefoldr: /b}\n")
    with pytest.raises(PixfindError, match=r"typo.yaml: unknown setting data.train\[1\].imagefoldr \(known here: .*imagefolder"):
        load_config("gpr-ft", tmp_path / "typo.yaml")
    (tmp_path / "section.yaml").write_text("model: {arch: ViT-B-32}\noptimizer: {lr: 1}\n")
    with pytest.raises(PixfindError, match="section.yaml: unknown setting optimizer "):
        load_config("gpr-ft", tmp_path / "section.yaml")
    with pytest.raises(PixfindError, match="unknown setting realign"):  # a section of another task
        load_config("mcip", None, ["model.arch=ViT-B-32", "realign.unlocked_text_tensors=2"])
    with pytest.raises(PixfindError, match="no model"):
        load_config("realign", None, [])
    (tmp_path / "bad.yaml").write_text("model: [unclosed\n")
    with pytest.raises(PixfindError, match="bad.yaml: invalid YAML"):
        load_config("gpr-ft", tmp_path / "bad.yaml")


@pytest.mark.parametrize(
    "text, problem",
    [
        ("train: {epochs: three}", "train.epochs: Value 'three' of type 'str' could not be converted to Integer"),
        ("train: {epochs: 0}", "train.epochs is 0; it must be at least 1"),
        ("train: {precision: fp16}", "train.precision is 'fp16'; choose bf16, fp32"),
        ("optim: {betas: [0.9, x]}", r"optim.betas\[1\]: Value 'x'"),
        ("optim: 0.1", "optim must be a mapping of settings"),
        ("data: {train: {imagefolder: /x}}", "data.train must be a list"),
        ("model: {arch: [ViT-B-32]}", "model.arch must be a single value"),
        ("train: {output_dir: '${oc.env:HOME}'}", r"train.output_dir: \$\{...\} interpolations are not allowed"),
        ("- just\n- a list", "a config must be a mapping of sections"),
        ("model: !!python/object/apply:os.system [echo pwned]", "invalid YAML"),
    ],
)
def test_bad_values_are_one_line_naming_file_and_key(tmp_path, text, problem):
    f = tmp_path / "bad.yaml"
    f.write_text(text if "model:" in text or text.startswith("-") else "model: {arch: ViT-B-32}\n" + text)
    with pytest.raises(PixfindError, match=problem) as info:
        load_config("gpr-ft", f)
    assert str(info.value).startswith(f"{f}: ") and "\n" not in str(info.value)


@pytest.mark.parametrize("path", SHIPPED, ids=[p.stem for p in SHIPPED])
def test_every_shipped_config_loads(path):
    import yaml

    task = yaml.safe_load(path.read_text())["task"]
    cfg = load_config(task, find_shipped_config(path.stem))
    assert cfg.model.arch


def test_run_settings_round_trip(tmp_path):
    import json

    cfg = load_config("realign", find_shipped_config("vit-b-16-realign"), ["optim.lr=3e-5"])
    written = tmp_path / "config.yaml"
    written.write_text(json.dumps({"task": "realign", **to_dict(cfg)}))  # JSON is YAML
    assert load_config("realign", written) == cfg


def test_synthetic_benchmark_settings_load():
    """Not a training task's config: the benchmark reads it itself."""
    spec = importlib.util.spec_from_file_location("mcip_synthetic", ROOT / "benchmarks" / "mcip_synthetic.py")
    benchmark = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(benchmark)
    settings = benchmark.settings(0.5)
    assert (settings["pretrain"]["epochs"], settings["finetune"]["epochs"], settings["realign"]["epochs"]) == (40, 5, 20)


def test_configs_are_frozen_and_task_typed():
    cfg = load_config("mcip", find_shipped_config("vit-b-16-mcip"))
    assert isinstance(cfg, MCIPConfig) and cfg.data.pseudo_captions and cfg.loss.class_weight == 0.75
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.train.epochs = 1  # type: ignore[misc]
    realign = load_config("realign", None, ["model.arch=ViT-B-32"])
    assert isinstance(realign, RealignConfig) and realign.optim.lr == 1e-5 and realign.eval.metric == "t2i_r5"


def test_paper_settings():
    gpr = load_config("gpr-ft", find_shipped_config("vit-l-14-336-openai-gpr-ft"))
    assert (gpr.model.arch, gpr.model.pretrained) == ("ViT-L-14-336", "openai")
    assert asdict(gpr.optim) == {"lr": 1e-6, "proxy_lr_mult": 100.0, "min_lr": 1e-7, "weight_decay": 0.01,
                                 "betas": [0.9, 0.999], "eps": 1e-8, "warmup_steps": 0}
    assert asdict(gpr.loss) == {"scale": 30.0, "margin": 0.1}
    assert (gpr.data.batch_size, gpr.train.epochs, gpr.train.grad_clip, gpr.train.patience) == (128, 3, 1.0, 50)
    assert len(gpr.data.train) == 5 and gpr.data.train[1].spec() == {"name": "gldv2", "manifest": "data/gldv2/train_clean.csv",
                                                                     "root": "data/gldv2/train"}
    mcip = load_config("mcip", find_shipped_config("siglip-so400m-384-webli-mcip"))
    assert mcip.model.patch_dropout == 0.33 and mcip.model.pretrained == "webli"
    assert (mcip.loss.class_weight, mcip.loss.caption_weight, mcip.loss.hard_weight) == (0.75, 0.25, 0.1)
    realign = load_config("realign", find_shipped_config("vit-l-14-336-openai-realign"))
    assert realign.realign.unlocked_text_tensors == 16 and realign.optim.lr == 1e-5
    assert (realign.optim.betas, realign.optim.eps, realign.optim.weight_decay) == ([0.9, 0.98], 1e-6, 0.2)
    assert realign.data.batch_size == 32768
    pc = load_config("pseudo-captions", find_shipped_config("vit-l-14-336-openai-pseudo-captions"))
    assert asdict(pc.retrieval) == {"top_k": 20, "threshold": 0.27}
