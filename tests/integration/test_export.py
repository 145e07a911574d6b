"""`pixfind export`: checkpoints in, verified packs out; bad checkpoints give one clear line."""

from __future__ import annotations

import json
import pickle
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from desktop_app.errors import PixfindError
from desktop_app.pack import load_pack, sha256_file
from model_training.export import export_pack
from model_training.verify import MIN_COSINE
from tests.conftest import TINY_CONFIG


def test_tiny_pack_is_complete_and_verified(tiny_pack, tiny_checkpoint):
    manifest = load_pack(tiny_pack, verify=True)
    assert {p.name for p in tiny_pack.iterdir()} == {"visual.onnx", "textual.onnx", "tokenizer.json", "pack.json"}
    assert manifest.embedding_dim == 64 and manifest.precision == "fp32"
    assert manifest.image.size == (32, 32) and manifest.image.resize_mode == "shortest"
    assert manifest.text.context_length == 77 and manifest.text.clean == "lower"
    assert manifest.source["architecture"] == "tiny-vit"
    assert manifest.source["checkpoint_sha256"] == sha256_file(tiny_checkpoint)
    assert manifest.source["model_config"]["embed_dim"] == 64
    for key in ("open_clip", "onnx", "torch", "onnxruntime", "pixfind"):
        assert manifest.versions[key]
    assert manifest.verification["visual_min_cosine"] >= MIN_COSINE["fp32"]
    assert manifest.verification["textual_min_cosine"] >= MIN_COSINE["fp32"]

@pytest.mark.parametrize("precision", ["fp16", "int8"])
def test_reduced_precision_packs_pass_their_bound(tmp_path, tiny_checkpoint, precision):
    manifest, result = export_pack(str(TINY_CONFIG), tmp_path / precision, checkpoint=tiny_checkpoint, precision=precision)
    assert manifest.precision == precision
    assert result.passed, result.as_dict()
    assert result.visual_min_cosine < 1.0 or result.textual_min_cosine < 1.0  # really converted

def test_safetensors_checkpoint(tmp_path, tiny_checkpoint):
    from safetensors.torch import save_file

    state = torch.load(tiny_checkpoint, weights_only=True)
    path = tmp_path / "tiny.safetensors"
    save_file({k: v.contiguous() for k, v in state.items()}, str(path))
    manifest, result = export_pack(str(TINY_CONFIG), tmp_path / "pack", checkpoint=path)
    assert result.passed and manifest.source["checkpoint"] == "tiny.safetensors"

def test_wrapped_ddp_checkpoint_is_unwrapped(tmp_path, tiny_checkpoint):
    state = torch.load(tiny_checkpoint, weights_only=True)
    path = tmp_path / "wrapped.pt"
    torch.save({"epoch": 3, "state_dict": {f"module.{k}": v for k, v in state.items()}}, path)
    _, result = export_pack(str(TINY_CONFIG), tmp_path / "pack", checkpoint=path)
    assert result.passed

def test_mismatched_checkpoint_names_missing_and_unexpected_keys(tmp_path, tiny_checkpoint):
    state = torch.load(tiny_checkpoint, weights_only=True)
    state.pop("text_projection")
    state["visual.extra_head.weight"] = torch.zeros(3)
    path = tmp_path / "bad.pth"
    torch.save(state, path)
    with pytest.raises(PixfindError) as info:
        export_pack(str(TINY_CONFIG), tmp_path / "pack", checkpoint=path)
    message = str(info.value)
    assert "bad.pth" in message and "text_projection" in message and "visual.extra_head.weight" in message
    assert "\n" not in message
    assert not (tmp_path / "pack").exists()

def test_checkpoint_of_another_architecture(tmp_path):
    import open_clip

    other = open_clip.create_model("RN50", pretrained=None)  # a different architecture entirely
    path = tmp_path / "rn50.pth"
    torch.save({k: v for k, v in list(other.state_dict().items())[:5]}, path)
    with pytest.raises(PixfindError, match=r"rn50\.pth: does not fit architecture tiny-vit: \d+ missing keys"):
        export_pack(str(TINY_CONFIG), tmp_path / "pack", checkpoint=path)

@pytest.mark.parametrize(
    "content, reason",
    [(b"", "cannot read checkpoint"), (b"\x80\x04garbage" * 10, "cannot read checkpoint"), (b"PK\x03\x04trunc", "cannot read checkpoint")],
)
def test_corrupt_checkpoint(tmp_path, content, reason):
    path = tmp_path / "broken.pth"
    path.write_bytes(content)
    with pytest.raises(PixfindError, match=reason) as info:
        export_pack(str(TINY_CONFIG), tmp_path / "pack", checkpoint=path)
    assert "broken.pth" in str(info.value)

def test_pickle_with_code_is_refused_without_running_it(tmp_path):
    marker = tmp_path / "pwned"

    class Exploit:
        def __reduce__(self):
            return (Path.touch, (marker,))

    path = tmp_path / "evil.pth"
    with open(path, "wb") as f:
        pickle.dump({"visual.proj": Exploit()}, f)
    with pytest.raises(PixfindError, match="evil.pth: cannot read checkpoint"):
        export_pack(str(TINY_CONFIG), tmp_path / "pack", checkpoint=path)
    assert not marker.exists()

def test_unknown_suffix_and_missing_file(tmp_path):
    with pytest.raises(PixfindError, match="not found"):
        export_pack(str(TINY_CONFIG), tmp_path / "p1", checkpoint=tmp_path / "nope.pth")
    odd = tmp_path / "weights.ckpt.txt"
    odd.write_text("x")
    with pytest.raises(PixfindError, match="unknown checkpoint type"):
        export_pack(str(TINY_CONFIG), tmp_path / "p2", checkpoint=odd)

def test_unknown_architecture(tmp_path, tiny_checkpoint):
    with pytest.raises(PixfindError, match="unknown open_clip architecture 'ViT-Nope'"):
        export_pack("ViT-Nope", tmp_path / "pack", checkpoint=tiny_checkpoint)

def test_siglip_without_tokenizer_fails_fast_and_says_what_is_missing(tmp_path, tiny_checkpoint):
    with pytest.raises(PixfindError, match="--tokenizer") as info:
        export_pack("ViT-SO400M-14-SigLIP-384", tmp_path / "pack", checkpoint=tiny_checkpoint)
    assert "tokenizer.json" in str(info.value)

def test_existing_output_is_not_overwritten(tmp_path, tiny_checkpoint):
    (tmp_path / "pack").mkdir()
    with pytest.raises(PixfindError, match="already exists"):
        export_pack(str(TINY_CONFIG), tmp_path / "pack", checkpoint=tiny_checkpoint)

def test_pretrained_download_failure_is_one_line(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")  # no network here; offline mode fails at once instead of retrying
    with pytest.raises(PixfindError, match="cannot load pretrained weights 'openai' for ViT-B-32") as info:
        export_pack("ViT-B-32", tmp_path / "pack", pretrained="openai")
    assert "--checkpoint" in str(info.value)

def test_export_command_end_to_end(tmp_path, tiny_checkpoint, pixfind_home):
    """The console script as a user runs it: export into the store, then list it."""
    exe = Path(sys.executable).parent / "pixfind"
    run = subprocess.run(
        [str(exe), "export", "--arch", str(TINY_CONFIG), "--checkpoint", str(tiny_checkpoint), "--name", "tiny-cli", "--precision", "int8"],
        capture_output=True, text=True, timeout=300,
    )
    assert run.returncode == 0, run.stderr
    assert "worst cosine" in run.stdout and "installed model tiny-cli" in run.stdout
    listing = subprocess.run([str(exe), "models", "list"], capture_output=True, text=True, timeout=60)
    assert "tiny-cli" in listing.stdout and "int8" in listing.stdout and "64" in listing.stdout
    pack_json = json.loads((pixfind_home / "data" / "models" / "tiny-cli" / "pack.json").read_text())
    assert pack_json["precision"] == "int8"

def test_export_command_bad_checkpoint_prints_one_line(tmp_path):
    bad = tmp_path / "bad.pth"
    bad.write_bytes(b"not a checkpoint")
    exe = Path(sys.executable).parent / "pixfind"
    run = subprocess.run([str(exe), "export", "--arch", str(TINY_CONFIG), "--checkpoint", str(bad)], capture_output=True, text=True, timeout=120)
    assert run.returncode == 1
    lines = [line for line in run.stderr.splitlines() if line.strip()]
    assert lines[-1].startswith("pixfind: error: ") and "bad.pth" in lines[-1]
    assert "Traceback" not in run.stderr


def test_export_failing_verification_leaves_nothing_behind(tmp_path, tiny_checkpoint, monkeypatch):
    from model_training import verify

    monkeypatch.setitem(verify.MIN_COSINE, "fp32", 1.01)  # no pack can pass this
    with pytest.raises(PixfindError, match="pack verification failed"):
        export_pack(str(TINY_CONFIG), tmp_path / "pack", checkpoint=tiny_checkpoint)
    assert list(tmp_path.iterdir()) == []


def test_export_and_install_reports_through_log_and_cleans_killed_exports(tmp_path, tiny_checkpoint, pixfind_home, monkeypatch):
    from desktop_app import model_store, paths
    from model_training import verify
    from model_training.export import export_and_install

    models = paths.models_dir()
    models.mkdir(parents=True, exist_ok=True)
    killed = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True, check=True)
    stale = models / f".export-{int(killed.stdout)}-abc"  # its process is gone (SIGKILL mid-export)
    (stale / "pack").mkdir(parents=True)
    lines = []
    bound = verify.MIN_COSINE["fp32"]
    monkeypatch.setitem(verify.MIN_COSINE, "fp32", 1.01)
    with pytest.raises(PixfindError, match="pack verification failed"):
        export_and_install(str(TINY_CONFIG), pretrained=None, checkpoint=tiny_checkpoint, tokenizer=None, precision="fp32",
                           name="tiny-x", output=None, replace=False, log=lines.append)
    assert list(models.iterdir()) == []  # neither the failed export nor the killed one's scratch
    monkeypatch.setitem(verify.MIN_COSINE, "fp32", bound)
    path = export_and_install(str(TINY_CONFIG), pretrained=None, checkpoint=tiny_checkpoint, tokenizer=None,
                              precision="fp32", name="tiny-x", output=None, replace=False, log=lines.append)
    assert path == models / "tiny-x" and model_store.get("tiny-x").manifest.precision == "fp32"
    assert [p.name for p in models.iterdir()] == ["tiny-x"]
    assert any("worst cosine" in line for line in lines) and lines[-1].startswith("installed model tiny-x (64-d, fp32)")


def test_stale_scratch_folders_are_told_by_their_process_or_age(tmp_path):
    import os
    import time

    from model_training.pack_builder import clean_stale_scratch

    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True, check=True)
    folders = {name: tmp_path / name for name in (f".export-{int(gone.stdout)}-a", f".export-{os.getpid()}-b",
                                                   ".export-old", ".export-new", "kept-pack")}
    for path in folders.values():
        path.mkdir()
    hours_ago = time.time() - 2 * 3600
    os.utime(folders[".export-old"], (hours_ago, hours_ago))
    os.utime(folders["kept-pack"], (hours_ago, hours_ago))
    removed = clean_stale_scratch(tmp_path)
    expected = {f".export-{int(gone.stdout)}-a", ".export-old"}
    if os.name != "posix":  # the owner cannot be probed there: age alone decides
        expected = {".export-old"}
    assert {p.name for p in removed} == expected
    assert {p.name for p in tmp_path.iterdir()} == set(folders) - expected
