"""`pixfind train ...` and `pixfind eval` end to end on a tiny ViT and a tiny drawn data set."""

from __future__ import annotations

import json

import pytest

pytest.importorskip("open_clip")

from desktop_app.cli import main
from model_training import synthetic
from tests.conftest import TINY_CONFIG

FAST = ["data.workers=0", "train.precision=fp32", "train.progress=false", "train.log_every=1", "data.batch_size=8"]


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    classes = synthetic.all_classes()[::37][:4]
    data = synthetic.make_set(classes, per_class=6, seed=0)
    return synthetic.write_image_folder(data, tmp_path_factory.mktemp("drawn") / "train")


def common(tiny_checkpoint, out):
    return [f"model.arch={TINY_CONFIG}", f"model.checkpoint={tiny_checkpoint}", f"train.output_dir={out}", *FAST]


def test_gpr_ft_trains_selects_the_best_model_and_exports_a_pack(tmp_path, folder, tiny_checkpoint, capsys):
    out, pack = tmp_path / "run", tmp_path / "pack"
    rc = main(["train", "gpr-ft", *common(tiny_checkpoint, out), f"data.train=[{{imagefolder: {folder}}}]",
               "train.epochs=2", "train.eval_every=1", f"eval.folder={folder}", "optim.lr=1e-4", "--export-output", str(pack)])
    assert rc == 0, capsys.readouterr().err
    rows = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    evals = [r for r in rows if r["kind"] == "eval"]
    assert len(evals) == 6 and all(0 < r["i2i_map"] <= 1 for r in evals)  # 24 images / 8 = 3 steps x 2 epochs
    assert evals[-1]["best"] == max(r["i2i_map"] for r in evals)
    assert [r["step"] for r in rows if r["kind"] == "train"] == [1, 2, 3, 4, 5, 6]
    assert (pack / "pack.json").is_file() and (out / "last.pt").is_file()

    import torch

    from model_training.open_clip_models import build_model

    build_model(str(TINY_CONFIG), checkpoint=out / "best.pth")  # strict load: a full open_clip state dict
    state = torch.load(out / "best.pth", weights_only=True)
    assert not any(k.startswith("loss.") for k in state)

    # the exported pack and the torch checkpoint score the same through `pixfind eval`
    rc = main(["eval", "--pack", str(pack), "--folder", str(folder), "--captions", str(folder / "captions.jsonl"),
               "--json", str(tmp_path / "pack.json")])
    assert rc == 0, capsys.readouterr().err
    rc = main(["eval", "--arch", str(TINY_CONFIG), "--checkpoint", str(out / "best.pth"), "--folder", str(folder),
               "--captions", str(folder / "captions.jsonl"), "--json", str(tmp_path / "torch.json")])
    assert rc == 0
    on_pack, on_torch = (json.loads((tmp_path / f"{n}.json").read_text()) for n in ("pack", "torch"))
    assert set(on_pack) == {"i2i_map", "t2i_r1", "t2i_r5", "t2i_r10"}
    for k in on_pack:
        assert on_pack[k] == pytest.approx(on_torch[k], abs=0.02)
    assert on_torch["i2i_map"] == pytest.approx(evals[-1]["best"], abs=1e-6) or on_torch["i2i_map"] <= evals[-1]["best"] + 1e-6


def test_pseudo_captions_then_mcip_then_realign(tmp_path, folder, tiny_checkpoint, capsys):
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("\n".join(synthetic.caption_corpus()[:60] + ["a red circle", "a red circle"]))
    pseudo = tmp_path / "pseudo.jsonl"
    rc = main(["train", "pseudo-captions", f"model.arch={TINY_CONFIG}", f"model.checkpoint={tiny_checkpoint}",
               f"data.images=[{{imagefolder: {folder}}}]", f"data.corpus={corpus}", f"data.output={pseudo}",
               "retrieval.top_k=3", "retrieval.threshold=-1", "train.progress=false"])
    assert rc == 0, capsys.readouterr().err
    rows = [json.loads(line) for line in pseudo.read_text().splitlines()]
    assert len(rows) == 24 and all(len(r["captions"]) == 3 and r["scores"] == sorted(r["scores"], reverse=True) for r in rows)
    # the corpus embeddings are cached beside the output: 61 distinct captions in one chunk
    cache = tmp_path / "pseudo.jsonl.corpus-features"
    assert json.loads((cache / "meta.json").read_text())["count"] == 61 and (cache / "features_00000.npy").is_file()

    run = tmp_path / "mcip"
    rc = main(["train", "mcip", *common(tiny_checkpoint, run), f"data.train=[{{imagefolder: {folder}}}]",
               f"data.pseudo_captions=[{pseudo}]", "train.epochs=1"])
    assert rc == 0, capsys.readouterr().err
    train_rows = [r for r in map(json.loads, (run / "log.jsonl").read_text().splitlines()) if r["kind"] == "train"]
    assert len(train_rows) == 3 and all("caption_loss" in r and r["caption_loss"] > 0 for r in train_rows)

    realigned = tmp_path / "realign"
    rc = main(["train", "realign", f"model.arch={TINY_CONFIG}", f"model.checkpoint={run / 'best.pth'}",
               f"train.output_dir={realigned}", *FAST, f"data.captions=[{{manifest: {folder / 'captions.jsonl'}}}]",
               "train.epochs=2", "realign.unlocked_text_tensors=3", f"eval.captions={folder / 'captions.jsonl'}",
               "optim.lr=1e-3", "--export", "--export-name", "tiny-realigned"])
    assert rc == 0, capsys.readouterr().err
    import torch

    before = torch.load(run / "best.pth", weights_only=True)
    after = torch.load(realigned / "best.pth", weights_only=True)
    changed = sorted(k for k in before if not torch.equal(before[k], after[k]))
    # the image tower is locked; only the last 3 text tensors and the temperature train
    assert changed == sorted(["ln_final.bias", "ln_final.weight", "text_projection", "logit_scale"]) or \
        set(changed) <= {"ln_final.bias", "ln_final.weight", "text_projection", "logit_scale"}
    assert "text_projection" in changed and not any(k.startswith("visual.") for k in changed)
    assert (realigned / "features" / "meta.json").is_file()

    # --export put the best model into the app's model store, where search uses it like any pack
    from desktop_app import model_store
    from desktop_app.encoder import Encoder
    from model_training.evaluation.embedders import TorchEmbedder

    assert main(["models", "list"]) == 0 and "tiny-realigned" in capsys.readouterr().out
    installed = model_store.get("tiny-realigned")
    assert installed.manifest.source["training"] == {"method": "realign", "base": "best.pth"}
    texts = ["a red circle on a dark background", "a blue square"]
    import open_clip

    from model_training.open_clip_models import build_model

    loaded = build_model(str(TINY_CONFIG), checkpoint=realigned / "best.pth")
    reference = TorchEmbedder(loaded.model, open_clip.get_tokenizer(loaded.arch)).encode_texts(texts)
    assert (Encoder(installed.path).encode_texts(texts) * reference).sum(axis=1).min() > 0.9999


def test_bad_settings_are_one_line_errors(tmp_path, tiny_checkpoint, capsys):
    assert main(["train", "gpr-ft", f"model.arch={TINY_CONFIG}", "optim.learning_rate=1"]) == 1
    assert "unknown setting optim.learning_rate" in capsys.readouterr().err
    assert main(["train", "gpr-ft", "-c", "no-such-config"]) == 1
    assert "shipped" in capsys.readouterr().err
    assert main(["train", "gpr-ft", *common(tiny_checkpoint, tmp_path / "r")]) == 1
    assert "no training data" in capsys.readouterr().err
    assert main(["train", "gpr-ft", *common(tiny_checkpoint, tmp_path / "r"), f"data.train=[{{imagefolder: {tmp_path}}}]"]) == 1
    assert f"{tmp_path}: no images in class sub-folders" in capsys.readouterr().err
    assert main(["train", "realign", *common(tiny_checkpoint, tmp_path / "r"), f"eval.folder={tmp_path}",
                 f"data.captions=[{{manifest: {tmp_path / 'none.jsonl'}}}]"]) == 1
    assert "none.jsonl: manifest not found" in capsys.readouterr().err


def test_eval_knn_and_zero_shot_agree_between_checkpoint_and_pack(tmp_path, folder, tiny_checkpoint, tiny_pack, capsys):
    common_sets = ["--knn-train", str(folder), "--knn-val", str(folder), "--zero-shot", str(folder)]
    assert main(["eval", "--pack", str(tiny_pack), *common_sets, "--json", str(tmp_path / "p.json")]) == 0, capsys.readouterr().err
    assert main(["eval", "--arch", str(TINY_CONFIG), "--checkpoint", str(tiny_checkpoint), *common_sets,
                 "--json", str(tmp_path / "t.json")]) == 0
    on_pack, on_torch = (json.loads((tmp_path / f"{n}.json").read_text()) for n in ("p", "t"))
    assert set(on_pack) == {"knn_acc", "zero_shot_acc"}
    # the gallery holds each query itself: the k-NN vote of a random model still leans to the right class
    assert on_pack["knn_acc"] > 0.25
    for k in on_pack:
        assert on_pack[k] == pytest.approx(on_torch[k], abs=1 / 24 + 1e-9)
    assert main(["eval", "--pack", str(tiny_pack)]) == 1
    assert "nothing to evaluate" in capsys.readouterr().err


def test_pipelines_read_the_config_and_never_write_it(tmp_path, folder, tiny_checkpoint):
    import copy

    from model_training import pipelines
    from model_training.config import load_config

    out = tmp_path / "run"
    cfg = load_config("gpr-ft", None, [*common(tiny_checkpoint, out), f"data.train=[{{imagefolder: {folder}}}]", "train.epochs=1"])
    before = copy.deepcopy(cfg)
    pipelines.run_gpr_ft(cfg, log=lambda _msg: None)
    assert cfg == before
    # the task is an argument of the run, recorded beside it; the file loads again as the same settings
    written = json.loads((out / "config.json").read_text())
    assert written["task"] == "gpr-ft"
    assert load_config("gpr-ft", out / "config.json") == cfg
