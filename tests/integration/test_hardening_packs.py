"""Issue 12, F1-F4, F12 and ONNX Runtime's telemetry: hostile packs, zips and settings end in one
line (``pixfind: error: ...``, exit 1) or a transparent recovery. Each case runs the real
``python -m desktop_app`` in its own process, on real files, with PIXFIND_HOME in a temp folder."""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def pixfind(home: Path, *args: str, timeout: float = 180, env: dict | None = None, prefix: list[str] | None = None):
    """Run ``python -m desktop_app ARGS`` with PIXFIND_HOME=home; return (exit code, stdout, stderr)."""
    environ = {k: v for k, v in os.environ.items() if k not in ("ORT_DISABLE_TELEMETRY", "PIXFIND_HOME")}
    environ.update({"PIXFIND_HOME": str(home), "PIXFIND_PROVIDERS": "CPUExecutionProvider", "COLUMNS": "200"})
    environ.update(env or {})
    proc = subprocess.run(
        [*(prefix or []), sys.executable, "-m", "desktop_app", *args],
        cwd=ROOT,
        env=environ,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    return proc.returncode, proc.stdout, proc.stderr


def assert_one_line_error(code: int, err: str, *needles: str) -> None:
    assert code == 1, err
    assert "Traceback" not in err, err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("pixfind: error: "), err
    for needle in needles:
        assert needle in lines[0], err


@pytest.fixture
def home(tmp_path) -> Path:
    return tmp_path / "home"


@pytest.fixture
def pack(tiny_pack, tmp_path) -> Path:
    """A writable copy of the tiny pack."""
    return Path(shutil.copytree(tiny_pack, tmp_path / "src" / "tiny"))


def edit_manifest(pack_dir: Path, change) -> None:
    path = pack_dir / "pack.json"
    data = json.loads(path.read_text())
    change(data)
    path.write_text(json.dumps(data, indent=2))


def install(home: Path, pack_dir: Path) -> Path:
    code, out, err = pixfind(home, "models", "import", str(pack_dir), "--name", "tiny")
    assert code == 0, err
    return home / "data" / "models" / "tiny"


def not_installed(home: Path) -> bool:
    models = home / "data" / "models"
    return not models.exists() or not [p for p in models.iterdir()]


def photo_folder(tmp_path: Path) -> Path:
    from PIL import Image

    folder = tmp_path / "photos"
    if not folder.exists():
        folder.mkdir()
        Image.new("RGB", (40, 30), (200, 30, 30)).save(folder / "red.jpg")
    return folder


def indexed_library(home: Path, tmp_path: Path, env: dict | None = None) -> Path:
    library = tmp_path / "lib"
    code, _, err = pixfind(home, "index", str(photo_folder(tmp_path)), "--library", str(library), env=env)
    assert code == 0, err
    return library


# --------------------------------------------------------------------------- F1


def test_f1_pack_json_image_size_disagrees_with_graph(pack, home):
    edit_manifest(pack, lambda d: d["image"].update(size=[48, 48]))
    code, _, err = pixfind(home, "models", "import", str(pack))
    assert_one_line_error(code, err, "visual.onnx", "48", "pack.json")
    assert not_installed(home)


def test_f1_image_size_lie_in_installed_pack_is_refused_when_indexing(pack, home, tmp_path):
    installed = install(home, pack)
    edit_manifest(installed, lambda d: d["image"].update(size=[40, 40]))
    code, _, err = pixfind(home, "index", str(photo_folder(tmp_path)), "--library", str(tmp_path / "lib"))
    assert_one_line_error(code, err, "visual.onnx", "40")


def test_f1_pack_json_context_length_disagrees_with_graph(pack, home, tmp_path):
    bad = Path(shutil.copytree(pack, tmp_path / "bad"))
    edit_manifest(bad, lambda d: d["text"].update(context_length=64))
    code, _, err = pixfind(home, "models", "import", str(bad))
    assert_one_line_error(code, err, "textual.onnx", "64")
    assert not_installed(home)
    # ... and in an installed pack whose pack.json was changed afterwards: refused at search, not mid-way
    installed = install(home, pack)
    library = indexed_library(home, tmp_path)
    edit_manifest(installed, lambda d: d["text"].update(context_length=64))
    code, _, err = pixfind(home, "search", "a red square", "--library", str(library))
    assert_one_line_error(code, err, "textual.onnx", "64")


@pytest.mark.parametrize(
    "change, needle",
    [
        (lambda d: d["text"].update(context_length=10**12), "context_length"),
        (lambda d: d["image"].update(std=[0.0, 0.26, 0.27]), "std"),
        (lambda d: d["image"].update(fill_color=999), "fill_color"),
        (lambda d: d["image"].update(size=[10**9, 10**9]), "size"),
        (lambda d: d.update(embedding_dim="64"), "embedding_dim"),
        (lambda d: d["image"].update(mean=[float("nan"), 0.4, 0.4]), "mean"),
    ],
    ids=["absurd-context-length", "std-0", "fill-999", "absurd-image-size", "dim-as-string", "nan-mean"],
)
def test_f1_pack_json_out_of_range_values_refused_at_import(pack, home, change, needle):
    edit_manifest(pack, change)
    code, _, err = pixfind(home, "models", "import", str(pack))
    assert_one_line_error(code, err, "pack.json", needle)
    assert not_installed(home)


def test_f1_deeply_nested_pack_json(pack, home):
    path = pack / "pack.json"
    text = path.read_text()
    path.write_text(text.rstrip().rstrip("}") + ', "junk": ' + "[" * 100_000 + "]" * 100_000 + "}")
    code, _, err = pixfind(home, "models", "import", str(pack))
    assert_one_line_error(code, err, "pack.json", "nested")
    # an installed pack damaged this way is listed with its problem, not a crash
    installed = home / "data" / "models" / "tiny"
    shutil.copytree(pack, installed)
    code, out, err = pixfind(home, "models", "list")
    assert code == 0 and "Traceback" not in err, err
    assert "nested" in out


# --------------------------------------------------------------------------- F2


def test_f2_absolute_tokenizer_file_is_refused(pack, home, tmp_path):
    outside = tmp_path / "elsewhere" / "tokenizer.json"
    outside.parent.mkdir()
    shutil.move(pack / "tokenizer.json", outside)

    def change(d):
        d["text"]["tokenizer_file"] = str(outside)
        d["files"][str(outside)] = d["files"].pop("tokenizer.json")

    edit_manifest(pack, change)
    code, _, err = pixfind(home, "models", "import", str(pack))
    assert_one_line_error(code, err, "absolute path")
    assert not_installed(home)


def test_f2_files_entry_outside_the_pack_is_refused(pack, home, tmp_path):
    import hashlib

    depth = len(pack.resolve().parts)
    entry = "../" * depth + "etc/passwd"
    if not Path("/etc/passwd").is_file():
        pytest.skip("no /etc/passwd")
    digest = hashlib.sha256(Path("/etc/passwd").read_bytes()).hexdigest()
    edit_manifest(pack, lambda d: d["files"].update({entry: digest}))
    code, _, err = pixfind(home, "models", "import", str(pack))
    assert_one_line_error(code, err, "leaves the pack")
    assert not_installed(home)


def test_f2_symlink_to_a_file_outside_the_pack_is_refused(pack, home, tmp_path):
    outside = tmp_path / "outside.onnx"
    shutil.move(pack / "visual.onnx", outside)
    (pack / "visual.onnx").symlink_to(outside)
    code, _, err = pixfind(home, "models", "import", str(pack))
    assert_one_line_error(code, err, "visual.onnx", "outside the model pack")
    assert not_installed(home)


def test_f2_huge_pack_json_is_refused(pack, home):
    edit_manifest(pack, lambda d: d.update(description="x" * (2 << 20)))
    code, _, err = pixfind(home, "models", "import", str(pack))
    assert_one_line_error(code, err, "pack.json", "larger than")
    assert not_installed(home)


def test_f2_pack_named_null_is_refused(pack, home):
    edit_manifest(pack, lambda d: d.update(name=None))
    code, _, err = pixfind(home, "models", "import", str(pack))
    assert_one_line_error(code, err, "pack.json", "name null")
    assert not (home / "data" / "models" / "None").exists()


# --------------------------------------------------------------------------- F3


def test_f3_tampered_visual_onnx_after_install_is_refused_at_load(pack, home, tmp_path):
    installed = install(home, pack)
    library = indexed_library(home, tmp_path)
    visual = installed / "visual.onnx"

    # touched but unchanged (e.g. copied back from a backup): hashed once, trusted, re-recorded
    os.utime(visual, ns=(visual.stat().st_atime_ns, visual.stat().st_mtime_ns + 5_000_000_000))
    code, _, err = pixfind(home, "search", "a red square", "--library", str(library))
    assert code == 0, err
    record = json.loads((installed / ".pixfind-files.json").read_text())
    assert record["files"]["visual.onnx"] == [visual.stat().st_size, visual.stat().st_mtime_ns]

    # bytes flipped in place, same size: index and search refuse the pack in one line
    with open(visual, "r+b") as f:
        f.seek(visual.stat().st_size // 2)
        byte = f.read(1)
        f.seek(-1, os.SEEK_CUR)
        f.write(bytes([byte[0] ^ 0xFF]))
    code, _, err = pixfind(home, "search", "a red square", "--library", str(library))
    assert_one_line_error(code, err, "visual.onnx", "changed since it was installed")
    code, _, err = pixfind(home, "index", str(photo_folder(tmp_path)), "--library", str(library))
    assert_one_line_error(code, err, "visual.onnx", "changed since it was installed")


# --------------------------------------------------------------------------- F4


def test_f4_zip_with_a_symlink_entry_is_refused(pack, home, tmp_path):
    archive = tmp_path / "pack.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        link = zipfile.ZipInfo("tiny-pack")
        link.create_system = 3
        link.external_attr = (stat.S_IFLNK | 0o777) << 16
        zf.writestr(link, str(tmp_path))
        for path in pack.iterdir():
            zf.write(path, f"tiny-pack/{path.name}")
    code, _, err = pixfind(home, "models", "import", str(archive))
    assert_one_line_error(code, err, "pack.zip", "symbolic link")
    assert not_installed(home)


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs here")
def test_f4_fifo_named_zip_is_refused_without_hanging(home, tmp_path):
    fifo = tmp_path / "x.zip"
    os.mkfifo(fifo)
    try:
        code, _, err = pixfind(home, "models", "import", str(fifo), timeout=60)
    except subprocess.TimeoutExpired:
        pytest.fail("pixfind models import hung on a FIFO")
    assert_one_line_error(code, err, "x.zip", "FIFO")
    models = home / "data" / "models"
    assert not models.exists() or not list(models.glob(".install-*"))


# --------------------------------------------------------------------------- F12


@pytest.mark.parametrize("content", ["[1, 2]", '{"default_model": 5}', '{"default_model": "../x"}', "{nope"])
def test_f12_invalid_settings_fall_back_to_defaults_with_a_warning(home, content):
    settings = home / "data" / "settings.json"
    settings.parent.mkdir(parents=True)
    settings.write_text(content)
    code, out, err = pixfind(home, "models", "list")
    assert code == 0, err
    assert "Traceback" not in err
    warnings = [line for line in err.splitlines() if line.strip()]
    assert len(warnings) == 1 and warnings[0].startswith("pixfind: warning: ") and "settings.json" in warnings[0], err


def _read_only(folder: Path) -> list[str] | None:
    """A command prefix that runs pixfind with ``folder`` read-only (root ignores permissions: a
    read-only bind mount in a private mount namespace); None when that is not possible here."""
    if os.geteuid() != 0:
        folder.chmod(0o555)
        return []
    unshare = shutil.which("unshare")
    if unshare is None:
        return None
    probe = subprocess.run(
        [unshare, "--mount", "sh", "-c", f'mount --bind "{folder}" "{folder}" && mount -o remount,ro,bind "{folder}"'],
        capture_output=True,
    )
    if probe.returncode != 0:
        return None
    script = f'mount --bind "{folder}" "{folder}" && mount -o remount,ro,bind "{folder}" && exec "$@"'
    return [unshare, "--mount", "sh", "-c", script, "sh"]


def test_f12_read_only_data_folder_before_the_starter_notice(pack, home, tmp_path):
    edit_manifest(pack, lambda d: d.update(starter=True))
    install(home, pack)
    library = indexed_library(home, tmp_path)
    (home / "data" / "settings.json").unlink()  # as if the notice had never been shown
    prefix = _read_only(home / "data")
    if prefix is None:
        pytest.skip("cannot make a folder read-only here")
    try:
        code, out, err = pixfind(home, "search", "a red square", "--library", str(library), prefix=prefix)
    finally:
        (home / "data").chmod(0o755)
    assert code == 0, err
    assert "Traceback" not in err
    assert "starter model" in err  # the notice is still shown; it just cannot be remembered


# --------------------------------------------------------------------------- telemetry


def test_onnxruntime_telemetry_stays_out_of_the_users_cache(pack, home, tmp_path):
    user_home = tmp_path / "user-home"
    user_home.mkdir()
    env = {"HOME": str(user_home), "XDG_CACHE_HOME": str(user_home / ".cache")}
    code, _, err = pixfind(home, "models", "import", str(pack), env=env)
    assert code == 0, err
    library = indexed_library(home, tmp_path, env=env)
    code, _, err = pixfind(home, "search", "a red square", "--library", str(library), env=env)
    assert code == 0, err
    assert not (user_home / ".cache" / "Microsoft").exists()
    assert list(user_home.rglob("*")) == []
