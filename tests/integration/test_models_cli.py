"""`pixfind models ...`: import, list, use, verify, remove, pull (from a local HTTP server)."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest

from desktop_app import model_store
from desktop_app.cli import main
from desktop_app.known_models import KNOWN_MODELS


def run_cli(capsys, *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def zip_pack(pack: Path, dest: Path, top: str | None = "tiny-pack") -> Path:
    with zipfile.ZipFile(dest, "w") as zf:
        for path in pack.iterdir():
            zf.write(path, f"{top}/{path.name}" if top else path.name)
    return dest


def test_import_directory_then_list_use_verify_remove(tiny_pack, capsys, pixfind_home):
    code, out, err = run_cli(capsys, "models", "import", str(tiny_pack))
    assert code == 0, err
    assert "installed model tiny (64-d, fp32)" in out
    assert (pixfind_home / "data" / "models" / "tiny" / "pack.json").is_file()

    code, out, _ = run_cli(capsys, "models", "list")
    assert code == 0
    row = next(line for line in out.splitlines() if " tiny " in f" {line} ")
    assert "64" in row and "fp32" in row and "tiny-vit" in row and "MB" in row
    assert "mcip-vit-l-14-336" in out  # the pullable models are listed too

    assert run_cli(capsys, "models", "verify", "tiny")[0] == 0
    assert run_cli(capsys, "models", "use", "tiny")[0] == 0
    assert model_store.default_name() == "tiny"
    code, out, _ = run_cli(capsys, "models", "remove", "tiny")
    assert code == 0 and not (pixfind_home / "data" / "models" / "tiny").exists()
    assert model_store.default_name() is None


@pytest.mark.parametrize("top", ["tiny-pack", None])
def test_import_zip(tiny_pack, tmp_path, capsys, top):
    archive = zip_pack(tiny_pack, tmp_path / "tiny.zip", top)
    code, _, err = run_cli(capsys, "models", "import", str(archive), "--name", "zipped")
    assert code == 0, err
    assert model_store.get("zipped").manifest.embedding_dim == 64


def test_import_twice_needs_replace(tiny_pack, capsys):
    assert run_cli(capsys, "models", "import", str(tiny_pack))[0] == 0
    code, _, err = run_cli(capsys, "models", "import", str(tiny_pack))
    assert code == 1 and "already installed" in err and "--replace" in err
    assert run_cli(capsys, "models", "import", str(tiny_pack), "--replace")[0] == 0


def _write(path: Path, content: bytes) -> Path:
    path.write_bytes(content)
    return path


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda d: (d / "not-a-pack").mkdir() or d / "not-a-pack", "is not a model pack"),
        (lambda d: d / "missing-dir", "not found"),
        (lambda d: _write(d / "junk.zip", b"PK\x03\x04 this is not a zip"), "neither a model pack"),
        (lambda d: _write(d / "notes.txt", b"hello"), "neither a model pack"),
    ],
)
def test_import_bad_sources_one_line(tmp_path, capsys, make, message):
    code, _, err = run_cli(capsys, "models", "import", str(make(tmp_path)))
    assert code == 1 and message in err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_import_zip_with_path_traversal_is_refused(tiny_pack, tmp_path, capsys):
    archive = tmp_path / "evil.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for path in tiny_pack.iterdir():
            zf.write(path, f"pack/{path.name}")
        zf.writestr("../../escaped.txt", "gotcha")
    code, _, err = run_cli(capsys, "models", "import", str(archive))
    assert code == 1 and "points outside the archive" in err
    assert not (tmp_path.parent / "escaped.txt").exists()


def test_damaged_install_is_listed_with_its_problem(tiny_pack, capsys, pixfind_home):
    assert run_cli(capsys, "models", "import", str(tiny_pack))[0] == 0
    (pixfind_home / "data" / "models" / "tiny" / "pack.json").write_text("{")
    code, out, _ = run_cli(capsys, "models", "list")
    assert code == 0 and "not valid JSON" in out
    code, _, err = run_cli(capsys, "models", "verify", "tiny")
    assert code == 1 and "pack.json" in err


def test_unknown_model_names(capsys):
    code, _, err = run_cli(capsys, "models", "pull", "mcip-vit-h-99")
    assert code == 1 and "unknown model 'mcip-vit-h-99'" in err and "mcip-vit-l-14-336" in err
    code, _, err = run_cli(capsys, "models", "use", "nothing")
    assert code == 1 and "not installed" in err
    code, _, err = run_cli(capsys, "models", "import", "/tmp", "--name", "../escape")
    assert code == 1 and "not a valid model name" in err


def test_known_models_point_at_the_published_checkpoints():
    vit = KNOWN_MODELS["mcip-vit-l-14-336"]
    assert vit.url == "https://visual-computing.com/files/MCIP/MCIP-ViT-L-14-336.pth" and vit.arch == "ViT-L-14-336-quickgelu"
    import open_clip

    assert open_clip.get_model_config(vit.arch)["quick_gelu"] is True  # OpenAI's activation, as the checkpoint was trained
    siglip = KNOWN_MODELS["mcip-siglip-so400m-384"]
    assert siglip.url.endswith("/MCIP-ViT-SO400M-14-SigLIP-384.pth") and siglip.arch == "ViT-SO400M-14-SigLIP-384"
    assert siglip.hf_tokenizer


def test_pull_siglip_without_tokenizer_explains_before_downloading(capsys, monkeypatch):
    monkeypatch.setenv("PIXFIND_MODEL_MIRROR", "http://127.0.0.1:9/")  # nothing listens: no download may start
    code, _, err = run_cli(capsys, "models", "pull", "mcip-siglip-so400m-384")
    assert code == 1 and "--tokenizer" in err and "timm/ViT-B-16-SigLIP" in err


def test_pull_interrupted_download_resumes_then_exports(tiny_checkpoint, capsys, pixfind_home):
    """`models pull --url`: a real HTTP transfer cut mid-way resumes with Range, then exports and installs."""
    from tests.conftest import TINY_CONFIG
    from tests.http_server import serving

    data = tiny_checkpoint.read_bytes()
    with serving(data, "/files/tiny-mcip.pth") as server:
        server.cut_after = [len(data) // 3]
        code, _, err = run_cli(capsys, "models", "pull", "tiny-mcip", "--url", server.url, "--arch", str(TINY_CONFIG))
        gets = server.gets()
    assert code == 0, err
    assert gets[0]["range"] is None and gets[1]["range"] == f"bytes={len(data) // 3}-"
    assert server.bytes_served() == len(data)
    pack = model_store.get("tiny-mcip")
    source = pack.manifest.source
    assert source["url"] == server.url and source["download_sha256"] == server.sha256
    assert source["checkpoint_sha256"] == server.sha256
    downloaded = pixfind_home / "cache" / "checkpoints" / "tiny-mcip.pth"
    assert downloaded.read_bytes() == data
    assert downloaded.with_name("tiny-mcip.pth.sha256").read_text().split()[0] == server.sha256


def test_pull_known_model_through_a_mirror_and_a_killed_earlier_run(tiny_checkpoint, capsys, pixfind_home, monkeypatch):
    """A known name resolves to its file; a .part left by a killed run is resumed, not restarted."""
    from desktop_app import known_models
    from tests.conftest import TINY_CONFIG
    from tests.http_server import serving

    data = tiny_checkpoint.read_bytes()
    fake = known_models.KnownModel(name="mcip-tiny", url="https://example.invalid/MCIP/MCIP-tiny.pth", arch=str(TINY_CONFIG), description="test")
    monkeypatch.setitem(known_models.KNOWN_MODELS, "mcip-tiny", fake)
    part = pixfind_home / "cache" / "checkpoints" / "MCIP-tiny.pth.part"
    part.parent.mkdir(parents=True)
    part.write_bytes(data[:1000])
    with serving(data, "/MCIP-tiny.pth") as server:
        monkeypatch.setenv("PIXFIND_MODEL_MIRROR", server.url.rsplit("/", 1)[0])
        code, _, err = run_cli(capsys, "models", "pull", "mcip-tiny")
        gets = server.gets()
    assert code == 0, err
    assert [g["range"] for g in gets] == ["bytes=1000-"]
    assert model_store.get("mcip-tiny").manifest.source["known_model"] == "mcip-tiny"


def test_pull_404_is_one_line(capsys):
    from tests.conftest import TINY_CONFIG
    from tests.http_server import serving

    with serving(b"x", "/there.pth") as server:
        url = server.url.replace("there", "elsewhere")
        code, _, err = run_cli(capsys, "models", "pull", "x", "--url", url, "--arch", str(TINY_CONFIG))
    assert code == 1 and "404" in err and url in err
    assert len(err.strip().splitlines()) == 1
