"""Issue 12, F5: a corrupt or hostile ``last.pt`` in a training run folder ends in one line that
names the file and the problem and says how to start fresh (``--fresh``), never in a traceback,
and never runs code from the file. Each case runs the real ``python -m desktop_app train ...`` in
its own process on a tiny ViT and a tiny drawn data set, with PIXFIND_HOME in a temp folder."""

from __future__ import annotations

import io
import json
import os
import pickle
import random
import zipfile
from pathlib import Path

import pytest

pytest.importorskip("open_clip")

from model_training import synthetic
from tests.conftest import TINY_CONFIG
from tests.integration.test_hardening_packs import assert_one_line_error
from tests.integration.test_hardening_packs import pixfind as _pixfind

FAST = ["data.workers=0", "train.precision=fp32", "train.progress=false", "train.log_every=1",
        "data.batch_size=8", "train.epochs=1", "train.device=cpu"]


#: open_clip's notice when a model is built to load a checkpoint into (not about last.pt): not counted.
_BUILD_NOTICE = "WARNING:root:No pretrained weights loaded for model"


def pixfind(home: Path, *args: str, timeout: float = 600):
    code, out, err = _pixfind(home, *args, timeout=timeout)
    return code, out, "".join(line for line in err.splitlines(keepends=True) if not line.startswith(_BUILD_NOTICE))


def _folder(root: Path, n_classes: int) -> Path:
    classes = synthetic.all_classes()[::37][:n_classes]
    return synthetic.write_image_folder(synthetic.make_set(classes, per_class=6, seed=0), root)


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    return _folder(tmp_path_factory.mktemp("drawn") / "train", 4)


def train_args(run: Path, folder: Path, tiny_checkpoint: Path) -> list[str]:
    return ["train", "gpr-ft", f"model.arch={TINY_CONFIG}", f"model.checkpoint={tiny_checkpoint}",
            f"train.output_dir={run}", f"data.train=[{{imagefolder: {folder}}}]", *FAST]


@pytest.fixture(scope="module")
def good_state(tmp_path_factory, folder, tiny_checkpoint) -> bytes:
    """The bytes of a real, complete last.pt of a 4-class run."""
    from desktop_app.cli import main

    run = tmp_path_factory.mktemp("good") / "run"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("PIXFIND_HOME", str(tmp_path_factory.mktemp("home")))
        assert main(train_args(run, folder, tiny_checkpoint)) == 0
    return (run / "last.pt").read_bytes()


class _Hostile:
    """Unpickling this runs ``open(marker, "w")``: a stand-in for any code in a hostile pickle."""

    def __init__(self, marker: Path):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def _torch_bytes(obj) -> bytes:
    import torch

    buffer = io.BytesIO()
    torch.save(obj, buffer)
    return buffer.getvalue()


def _state(good: bytes) -> dict:
    import torch

    return torch.load(io.BytesIO(good), map_location="cpu", weights_only=True)


def _zip_not_torch() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as z:
        z.writestr("notes/readme.txt", "hello")
        z.writestr("data.pkl", "not a pickle")
    return buffer.getvalue()


def _without(good: bytes, *keys: str) -> bytes:
    state = _state(good)
    for k in keys:
        del state[k]
    return _torch_bytes(state)


def _with(good: bytes, **values) -> bytes:
    return _torch_bytes({**_state(good), **values})


CASES = {
    # name: (make the bytes of last.pt from a good one and the marker path, words the error must have)
    "truncated": (lambda good, marker: good[: len(good) // 2], "cannot read it"),
    "random-bytes": (lambda good, marker: random.Random(0).randbytes(50_000), "cannot read it"),
    "hostile-pickle-in-torch-zip": (lambda good, marker: _torch_bytes({"step": _Hostile(marker)}), "cannot read it"),
    "hostile-legacy-pickle": (lambda good, marker: pickle.dumps(_Hostile(marker), protocol=2), "cannot read it"),
    "zip-not-a-torch-file": (lambda good, marker: _zip_not_torch(), "cannot read it"),
    "not-a-dict": (lambda good, marker: _torch_bytes([1, 2, 3]), "not a training checkpoint"),
    "missing-keys": (lambda good, marker: _without(good, "optimizer", "rng"), "optimizer"),
    "wrong-types": (lambda good, marker: _with(good, step="three"), "step"),
    "damaged-rng-state": (lambda good, marker: _with(good, rng={"python": [1, 2]}), "rng"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_f5_bad_last_pt_is_one_line_naming_the_file_and_fresh(case, tmp_path, folder, tiny_checkpoint, good_state):
    make, words = CASES[case]
    run, marker = tmp_path / "run", tmp_path / "pwned"
    run.mkdir()
    last = run / "last.pt"
    data = make(good_state, marker)
    last.write_bytes(data)

    code, _, err = pixfind(tmp_path / "home", *train_args(run, folder, tiny_checkpoint), timeout=600)

    assert_one_line_error(code, err, str(last), words, "--fresh")
    assert not marker.exists(), "code in the checkpoint ran"
    assert last.read_bytes() == data, "the user's file was changed"


def test_f5_run_folder_of_another_data_set_names_the_mismatch(tmp_path, folder, tiny_checkpoint, good_state):
    """Tensors of the wrong shape for the model: the run folder holds a 4-class run, the data now has 3 classes."""
    run = tmp_path / "run"
    run.mkdir()
    (run / "last.pt").write_bytes(good_state)
    three = _folder(tmp_path / "three", 3)

    code, _, err = pixfind(tmp_path / "home", *train_args(run, three, tiny_checkpoint), timeout=600)

    assert_one_line_error(code, err, str(run / "last.pt"), "does not fit this run", "shape", "--fresh")


def test_f5_fresh_sets_the_bad_checkpoint_aside_and_starts_over(tmp_path, folder, tiny_checkpoint):
    run = tmp_path / "run"
    run.mkdir()
    junk = random.Random(1).randbytes(10_000)
    (run / "last.pt").write_bytes(junk)

    code, out, err = pixfind(tmp_path / "home", *train_args(run, folder, tiny_checkpoint), "--fresh", timeout=600)

    assert code == 0, err
    kept = run / "last.pt.old"
    assert kept.read_bytes() == junk, "the old checkpoint was not kept aside"
    assert str(kept) in out + err
    import torch

    state = torch.load(run / "last.pt", map_location="cpu", weights_only=True)
    assert state["step"] == 3  # 24 images / 8: one whole epoch from the start
    steps = [json.loads(line)["step"] for line in (run / "log.jsonl").read_text().splitlines()
             if json.loads(line)["kind"] == "train"]
    assert steps == [1, 2, 3]

    # a second --fresh keeps both earlier checkpoints
    (run / "last.pt").write_bytes(b"also junk")
    code, _, err = pixfind(tmp_path / "home", *train_args(run, folder, tiny_checkpoint), "--fresh", timeout=600)
    assert code == 0, err
    assert kept.read_bytes() == junk and (run / "last.pt.old-2").read_bytes() == b"also junk"
    assert os.path.getsize(run / "last.pt") > 1000


def test_f5_guard_a_good_checkpoint_of_an_interrupted_run_still_resumes(tmp_path, folder, tiny_checkpoint):
    """Not a fault: the checks must let a real last.pt through. A run stopped after 1 of 3 steps continues at step 2."""
    from desktop_app.cli import main

    run = tmp_path / "run"
    assert main([*train_args(run, folder, tiny_checkpoint), "train.max_steps=1"]) == 0
    code, _, err = pixfind(tmp_path / "home", *train_args(run, folder, tiny_checkpoint))
    assert code == 0, err
    steps = [json.loads(line)["step"] for line in (run / "log.jsonl").read_text().splitlines()
             if json.loads(line)["kind"] == "train"]
    assert steps == [1, 2, 3]
