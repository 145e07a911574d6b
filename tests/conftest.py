"""Shared fixtures: an isolated pixfind home per test and tiny real model packs."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

DATA = Path(__file__).parent / "data"
TINY_CONFIG = DATA / "tiny-vit.json"

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

_KINDS = ("unit", "integration", "gui")


def pytest_collection_modifyitems(items) -> None:
    """Mark each test by the folder it lives in: ``pytest -m unit`` runs the fast ones."""
    for item in items:
        kind = Path(str(item.fspath)).parent.name
        if kind in _KINDS:
            item.add_marker(getattr(pytest.mark, kind))


@pytest.fixture(autouse=True)
def pixfind_home(tmp_path, monkeypatch) -> Path:
    """Every test gets its own data and cache directories; nothing touches the real home."""
    home = tmp_path / "pixfind-home"
    monkeypatch.setenv("PIXFIND_HOME", str(home))
    # `pixfind index` reads the text in new libraries' photos unless told --no-ocr, which this sets
    # for every index run (seconds a photo on a small machine); the tests of OCR pass --ocr.
    monkeypatch.setenv("PIXFIND_OCR", "off")
    return home


def save_tiny_checkpoint(path: Path, seed: int = 0) -> Path:
    """A full open_clip state dict of the tiny architecture, with seeded random weights."""
    import open_clip
    import torch

    from model_training.open_clip_models import resolve_arch

    name, _ = resolve_arch(str(TINY_CONFIG))
    torch.manual_seed(seed)
    model = open_clip.create_model(name, pretrained=None)
    torch.save(model.state_dict(), path)
    return path


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory) -> Path:
    return save_tiny_checkpoint(tmp_path_factory.mktemp("ckpt") / "tiny.pth")


@pytest.fixture(scope="session")
def tiny_pack(tmp_path_factory, tiny_checkpoint) -> Path:
    """A real model pack (ONNX towers, tokenizer.json, pack.json) exported from a tiny random ViT.

    64-d embeddings, 32x32 input, the OpenAI BPE tokenizer: small enough to build in seconds.
    """
    from model_training.export import export_pack

    out = tmp_path_factory.mktemp("packs") / "tiny"
    export_pack(str(TINY_CONFIG), out, checkpoint=tiny_checkpoint, name="tiny")
    return out


@pytest.fixture
def tiny_model(tiny_pack) -> str:
    """The tiny pack installed in this test's pixfind home, under the name 'tiny'."""
    from desktop_app import model_store

    model_store.install(tiny_pack, "tiny")
    return "tiny"


@pytest.fixture
def library_dir(tmp_path) -> Path:
    return tmp_path / "library"
