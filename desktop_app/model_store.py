"""Installed model packs: one directory per pack under the per-user models directory."""

from __future__ import annotations

import json
import re
import shutil
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

from . import paths
from .errors import PackError, PixfindError
from .pack import MANIFEST_NAME, PackManifest, load_pack, read_manifest

_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
MAX_ZIP_BYTES = 16 << 30
STARTER_NOTICE = "starter model: good for everyday objects; pull an MCIP model for best results (pixfind models pull mcip-vit-l-14-336)"


@dataclass
class InstalledPack:
    name: str
    path: Path
    manifest: PackManifest | None
    size_bytes: int
    problem: str | None = None


def check_name(name: str) -> str:
    if not _NAME_RE.match(name):
        raise PixfindError(
            f"{name!r} is not a valid model name (letters, digits, '.', '_' and '-', starting with a letter or digit)"
        )
    return name


def _dir_size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def list_installed() -> list[InstalledPack]:
    root = paths.models_dir()
    if not root.is_dir():
        return []
    packs = []
    for path in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
        try:
            manifest, problem = read_manifest(path), None
        except PackError as e:
            manifest, problem = None, str(e)
        packs.append(InstalledPack(path.name, path, manifest, _dir_size(path), problem))
    return packs


def pack_path(name: str) -> Path:
    return paths.models_dir() / check_name(name)


def get(name: str) -> InstalledPack:
    path = pack_path(name)
    if not (path / MANIFEST_NAME).is_file():
        known = ", ".join(p.name for p in list_installed()) or "none"
        raise PixfindError(f"model {name!r} is not installed (installed: {known})")
    return InstalledPack(name, path, read_manifest(path), _dir_size(path))


def _extract_zip(archive: Path, dest: Path) -> Path:
    """Extract a pack archive safely and return the directory that holds pack.json."""
    try:
        with zipfile.ZipFile(archive) as zf:
            total = 0
            for info in zf.infolist():
                target = (dest / info.filename).resolve()
                if not target.is_relative_to(dest.resolve()):
                    raise PackError(f"{archive}: entry {info.filename!r} points outside the archive")
                total += info.file_size
            if total > MAX_ZIP_BYTES:
                raise PackError(f"{archive}: unpacks to {total / 2**30:.1f} GiB, more than a model pack can be")
            zf.extractall(dest)
    except zipfile.BadZipFile as e:
        raise PackError(f"{archive}: not a valid zip archive ({e})") from None
    manifests = sorted(dest.rglob(MANIFEST_NAME), key=lambda p: len(p.parts))
    if not manifests:
        raise PackError(f"{archive}: contains no {MANIFEST_NAME}; it is not a model pack")
    return manifests[0].parent


def install(source: Path, name: str | None = None, *, replace: bool = False, move: bool = False) -> InstalledPack:
    """Install a pack from a directory or a .zip, verifying every file first.

    The pack is copied into a temporary directory beside its final place and renamed,
    so an interrupted install never leaves a half-written pack under the final name.
    """
    source = Path(source)
    if name is not None:
        check_name(name)
    if not source.exists():
        raise PixfindError(f"{source}: not found")
    root = paths.models_dir()
    root.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=root, prefix=".install-") as tmp:
        tmp = Path(tmp)
        if source.is_dir():
            src_dir = source
        elif zipfile.is_zipfile(source):
            src_dir = _extract_zip(source, tmp / "unzipped")
        else:
            raise PackError(f"{source}: neither a model pack directory nor a .zip of one")
        manifest = load_pack(src_dir, verify=True)
        _check_loads(src_dir)
        name = check_name(name or manifest.name)
        staged = tmp / "pack"
        if move and source.is_dir():
            shutil.move(str(src_dir), staged)
        else:
            shutil.copytree(src_dir, staged)
        final = root / name
        if final.exists():
            if not replace:
                raise PixfindError(f"model {name!r} is already installed at {final} (use --replace to overwrite it)")
            old = tmp / "old"
            final.rename(old)
        staged.rename(final)
    return InstalledPack(name, final, manifest, _dir_size(final))


def _check_loads(pack_dir: Path) -> None:
    """Open the pack as the app will, so a pack ONNX Runtime cannot run is refused at install."""
    from .encoder import Encoder

    Encoder(pack_dir, providers=["CPUExecutionProvider"], verify=False)


def remove(name: str) -> Path:
    path = get(name).path
    shutil.rmtree(path)
    settings = _read_settings()
    if settings.get("default_model") == name:
        settings.pop("default_model")
        _write_settings(settings)
    return path


def _read_settings() -> dict:
    path = paths.settings_file()
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as e:
        raise PixfindError(f"{path}: unreadable settings file ({e}); fix or delete it") from None


def _write_settings(settings: dict) -> None:
    path = paths.settings_file()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(settings, indent=2) + "\n", encoding="utf-8")
    tmp.replace(path)


def set_default(name: str) -> None:
    get(name)
    settings = _read_settings()
    settings["default_model"] = name
    _write_settings(settings)


def default_name() -> str | None:
    """The model chosen with `pixfind models use`, else the only one installed, else an MCIP or starter pack."""
    chosen = _read_settings().get("default_model")
    if chosen and (pack_path(chosen) / MANIFEST_NAME).is_file():
        return chosen
    usable = [p for p in list_installed() if p.manifest is not None]
    if len(usable) == 1:
        return usable[0].name
    for preferred in ("mcip-siglip-so400m-384", "mcip-vit-l-14-336", "starter"):
        if any(p.name == preferred for p in usable):
            return preferred
    return usable[0].name if usable else None


def resolve(name: str | None = None) -> InstalledPack:
    """The pack to use: the one named, else the default; a clear error when none is installed."""
    name = name or default_name()
    if name is None:
        raise PixfindError(
            "no model is installed: run `pixfind models install starter` (offline) "
            "or `pixfind models pull mcip-vit-l-14-336`"
        )
    return get(name)


def starter_notice_once(manifest: PackManifest) -> str | None:
    """The starter model's caveat, the first time a starter pack is used; None afterwards."""
    if not manifest.starter:
        return None
    settings = _read_settings()
    if settings.get("starter_notice_shown"):
        return None
    settings["starter_notice_shown"] = True
    _write_settings(settings)
    return STARTER_NOTICE
