"""Load only what a command needs: which ONNX sessions exist after each step (never timing)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from desktop_app.encoder import DEBUG_SESSIONS_ENV, Encoder
from desktop_app.errors import PackError
from desktop_app.services.library import LibraryService
from desktop_app.services.records import SearchRequest
from tests.library_helpers import make_photo


@pytest.fixture
def photos(tmp_path) -> Path:
    folder = tmp_path / "photos"
    for i in range(6):
        make_photo(folder / f"p{i}.jpg", seed=i)
    return folder


def test_service_loads_each_tower_only_when_needed(tiny_model, library_dir, photos):
    with LibraryService(library_dir) as service:
        service.load_model()
        assert service.encoder.loaded_sessions() == set()  # opening the model opens no session
        service.set_ocr_enabled(False)  # reading the text in photos has tests of its own (test_ocr*.py)
        report = service.index([str(photos)])
        assert report.encoded == 6
        assert service.encoder.loaded_sessions() == {"image"}  # indexing never loads the text tower

    with LibraryService(library_dir) as service:
        service.load_model()
        report = service.index()  # nothing new: no model at all
        assert report.encoded == 0 and report.unchanged == 6
        assert service.encoder.loaded_sessions() == set()
        service.status()
        assert service.encoder.loaded_sessions() == set()

    with LibraryService(library_dir) as service:
        service.load_model()
        result = service.search(SearchRequest(text="a photo"))
        assert result.items
        assert service.encoder.loaded_sessions() == {"text"}  # a text search: the text tower only


def _cli(args, home: Path) -> subprocess.CompletedProcess:
    env = dict(os.environ, PIXFIND_HOME=str(home), **{DEBUG_SESSIONS_ENV: "1"})
    return subprocess.run(
        [sys.executable, "-m", "desktop_app", *map(str, args)], capture_output=True, text=True, env=env, timeout=120
    )


def _opened(run: subprocess.CompletedProcess) -> list[str]:
    return [line.split("opened the ")[1].split()[0] for line in run.stderr.splitlines() if "pixfind: debug: opened the" in line]


def test_commands_open_only_the_sessions_they_need(tiny_model, pixfind_home, library_dir, photos):
    first = _cli(["index", photos, "--library", library_dir], pixfind_home)
    assert first.returncode == 0, first.stderr
    assert _opened(first) == ["image"]
    again = _cli(["index", "--library", library_dir], pixfind_home)
    assert again.returncode == 0, again.stderr
    assert _opened(again) == []
    status = _cli(["status", "--library", library_dir], pixfind_home)
    assert status.returncode == 0, status.stderr
    assert _opened(status) == []
    search = _cli(["search", "a photo", "--library", library_dir, "--all"], pixfind_home)
    assert search.returncode == 0, search.stderr
    assert _opened(search) == ["text"]


def test_status_imports_no_model_runtime(tiny_model, pixfind_home, library_dir):
    """`pixfind status` imports no model runtime (onnxruntime, tokenizers), no vector index (hnswlib),
    not the downloader (requests) and no other command's module (the trainer, the window)."""
    code = (
        "import sys; from desktop_app.cli import main; rc = main(['status', '--library', sys.argv[1]]); "
        "print('LOADED', *sorted(m for m in ('onnxruntime', 'requests', 'tokenizers', 'hnswlib', 'PySide6', 'desktop_app.commands.models', 'desktop_app.commands.train', 'desktop_app.download') if m in sys.modules))"
    )
    env = dict(os.environ, PIXFIND_HOME=str(pixfind_home))
    run = subprocess.run([sys.executable, "-c", code, str(library_dir)], capture_output=True, text=True, env=env, timeout=120)
    assert run.returncode == 0, run.stderr
    loaded = run.stdout.split("LOADED", 1)[1].split()
    assert loaded == [], loaded


def test_lazy_encoder_checks_a_tower_before_its_first_use(pack_copy_lazy):
    """F1/F3 still hold per tower: a tower file changed after the pack was opened is hashed and refused."""
    encoder = Encoder(pack_copy_lazy, lazy=True)
    assert encoder.loaded_sessions() == set()
    encoder.encode_texts(["a dog"])
    assert encoder.loaded_sessions() == {"text"}
    with open(pack_copy_lazy / "visual.onnx", "r+b") as f:
        f.seek(200)
        f.write(b"\x00\x01\x02\x03")
    with pytest.raises(PackError, match=r"visual\.onnx: changed since the pack was opened"):
        encoder.encode_pixels(None)
    assert encoder.loaded_sessions() == {"text"}


def test_lazy_encoder_checks_graph_shapes(pack_copy_lazy):
    from desktop_app.pack import read_manifest, write_manifest

    manifest = read_manifest(pack_copy_lazy)
    manifest.text.context_length = manifest.text.context_length + 3
    write_manifest(pack_copy_lazy, manifest)
    encoder = Encoder(pack_copy_lazy, lazy=True)
    with pytest.raises(PackError, match=r"textual\.onnx: input .* has size"):
        encoder.encode_texts(["a dog"])


@pytest.fixture
def pack_copy_lazy(tiny_pack, tmp_path) -> Path:
    import shutil

    return Path(shutil.copytree(tiny_pack, tmp_path / "pack"))


def test_lazy_command_table_matches_the_modules():
    import importlib

    from desktop_app.commands import COMMAND_MODULES

    found = {}
    for module in set(COMMAND_MODULES.values()):
        for command in importlib.import_module(f"desktop_app.commands.{module}").COMMANDS:
            found[command.name] = module
    assert found == COMMAND_MODULES


def test_texts_embedded_early_are_the_texts_embedded_on_demand(tiny_pack):
    """What `pixfind search` does before its imports: the thread's vectors are the ones a plain call computes,
    a text it was not given is embedded as usual, and a batch mixing both is computed in full."""
    import numpy as np

    plain = Encoder(tiny_pack, lazy=True)
    early = Encoder(tiny_pack, lazy=True).start_loading(text=True, texts=["a dog", "a cat"])
    np.testing.assert_array_equal(early.encode_texts(["a cat", "a dog"]), plain.encode_texts(["a cat", "a dog"]))
    np.testing.assert_array_equal(early.encode_texts(["a bird", "a dog"]), plain.encode_texts(["a bird", "a dog"]))
    assert early.loaded_sessions() == {"text"}  # never the image tower


def test_a_tower_that_fails_to_open_early_fails_where_it_is_used(pack_copy_lazy):
    encoder = Encoder(pack_copy_lazy, lazy=True)
    with open(pack_copy_lazy / "textual.onnx", "r+b") as f:
        f.seek(200)
        f.write(b"\x00\x01\x02\x03")
    encoder.start_loading(text=True, texts=["a dog"])  # the thread meets the damage: nothing raised here
    with pytest.raises(PackError, match=r"textual\.onnx: changed since the pack was opened"):
        encoder.encode_texts(["a dog"])
    assert encoder.loaded_sessions() == set()


def test_cli_search_embeds_its_words_once_while_the_library_opens(tiny_model, pixfind_home, library_dir, photos):
    """`pixfind search` gives the service the encoder it started early: one text session, the same answer."""
    assert _cli(["index", photos, "--library", library_dir], pixfind_home).returncode == 0
    search = _cli(["search", "a photo + 2:a dog", "--library", library_dir, "--all", "--json"], pixfind_home)
    assert search.returncode == 0, search.stderr
    assert _opened(search) == ["text"]
    with LibraryService(library_dir) as service:
        service.load_model()
        expected = service.search(SearchRequest(text="a photo + 2:a dog", limit=20))
    import json

    shown = json.loads(search.stdout)
    assert [row["path"] for row in shown] == [it.path for it in expected.items]
    assert [row["score"] for row in shown] == [round(it.score, 4) for it in expected.items]
