"""Configs: defaults <- YAML <- dotted overrides; shipped configs carry the paper's settings."""

from __future__ import annotations

from pathlib import Path

import pytest

from desktop_app.errors import PixfindError
from model_training.config import find_shipped_config, load_config, parse_override

SHIPPED = sorted(p for p in (Path(__file__).parents[1] / "model_training" / "configs").glob("*.yaml")
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
    cfg = load_config("gpr-ft", f, ["train.epochs=1", "loss.margin=0.2"])
    assert cfg["optim"]["lr"] == 2e-6 and cfg["train"]["epochs"] == 1 and cfg["loss"] == {"scale": 30.0, "margin": 0.2}
    assert cfg["optim"]["proxy_lr_mult"] == 100.0  # untouched defaults stay


def test_unknown_keys_and_missing_model_are_clear_errors(tmp_path):
    with pytest.raises(PixfindError, match="unknown setting train.epoch .*known here: .*epochs"):
        load_config("gpr-ft", None, ["model.arch=ViT-B-32", "train.epoch=1"])
    with pytest.raises(PixfindError, match="no model"):
        load_config("realign", None, [])
    (tmp_path / "bad.yaml").write_text("model: [unclosed\n")
    with pytest.raises(PixfindError, match="bad.yaml: invalid YAML"):
        load_config("gpr-ft", tmp_path / "bad.yaml")


@pytest.mark.parametrize("path", SHIPPED, ids=[p.stem for p in SHIPPED])
def test_every_shipped_config_loads(path):
    import yaml

    task = yaml.safe_load(path.read_text())["task"]
    cfg = load_config(task, find_shipped_config(path.stem))
    assert cfg["model"]["arch"]


def test_paper_settings():
    gpr = load_config("gpr-ft", find_shipped_config("vit-l-14-336-openai-gpr-ft"))
    assert (gpr["model"]["arch"], gpr["model"]["pretrained"]) == ("ViT-L-14-336", "openai")
    assert gpr["optim"] == {"lr": 1e-6, "proxy_lr_mult": 100.0, "min_lr": 1e-7, "weight_decay": 0.01,
                            "betas": [0.9, 0.999], "eps": 1e-8, "warmup_steps": 0}
    assert gpr["loss"] == {"scale": 30.0, "margin": 0.1}
    assert (gpr["data"]["batch_size"], gpr["train"]["epochs"], gpr["train"]["grad_clip"], gpr["train"]["patience"]) == (128, 3, 1.0, 50)
    assert len(gpr["data"]["train"]) == 5
    mcip = load_config("mcip", find_shipped_config("siglip-so400m-384-webli-mcip"))
    assert mcip["model"]["patch_dropout"] == 0.33 and mcip["model"]["pretrained"] == "webli"
    assert (mcip["loss"]["class_weight"], mcip["loss"]["caption_weight"], mcip["loss"]["hard_weight"]) == (0.75, 0.25, 0.1)
    realign = load_config("realign", find_shipped_config("vit-l-14-336-openai-realign"))
    assert realign["realign"]["unlocked_text_tensors"] == 16 and realign["optim"]["lr"] == 1e-5
    assert (realign["optim"]["betas"], realign["optim"]["eps"], realign["optim"]["weight_decay"]) == ([0.9, 0.98], 1e-6, 0.2)
    assert realign["data"]["batch_size"] == 32768
    pc = load_config("pseudo-captions", find_shipped_config("vit-l-14-336-openai-pseudo-captions"))
    assert pc["retrieval"] == {"top_k": 20, "threshold": 0.27}
