"""Installed model packs: one directory per pack under the per-user models directory."""

from __future__ import annotations

import json
import os
import re
import shutil
import stat
import sys
import tempfile
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path

from . import paths
from .errors import PackError, PixfindError, one_line
from .pack import MANIFEST_NAME, PackManifest, load_pack, read_manifest, record_files

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
        packs.append(InstalledPack(path.name, path, manifest, paths.dir_size(path), problem))
    return packs


def pack_path(name: str) -> Path:
    return paths.models_dir() / check_name(name)


def get(name: str) -> InstalledPack:
    path = pack_path(name)
    if not (path / MANIFEST_NAME).is_file():
        known = ", ".join(p.name for p in list_installed()) or "none"
        raise PixfindError(f"model {name!r} is not installed (installed: {known})")
    return InstalledPack(name, path, read_manifest(path), paths.dir_size(path))


def _extract_zip(archive: Path, dest: Path) -> Path:
    """Extract a pack archive safely and return the directory that holds pack.json."""
    extract_zip(archive, dest)
    manifests = sorted(dest.rglob(MANIFEST_NAME), key=lambda p: len(p.parts))
    if not manifests:
        raise PackError(f"{archive}: contains no {MANIFEST_NAME}; it is not a model pack")
    return manifests[0].parent


def extract_zip(archive: Path, dest: Path) -> None:
    """Extract a model archive (a pack, or another tool's layout) into ``dest``, safely.

    Only regular files and folders are extracted: a symbolic link (or any other kind of entry)
    in a pack archive is refused, as is any entry that would land outside ``dest``.
    """
    try:
        with zipfile.ZipFile(archive) as zf:
            total = 0
            for info in zf.infolist():
                target = (dest / info.filename).resolve()
                if not target.is_relative_to(dest.resolve()):
                    raise PackError(f"{archive}: entry {info.filename!r} points outside the archive")
                kind = stat.S_IFMT(info.external_attr >> 16) if info.create_system == 3 else 0
                if kind == stat.S_IFLNK:
                    raise PackError(f"{archive}: entry {info.filename!r} is a symbolic link; a model pack holds only files")
                if kind not in (0, stat.S_IFREG, stat.S_IFDIR):
                    raise PackError(f"{archive}: entry {info.filename!r} is not a regular file; a model pack holds only files")
                total += info.file_size
            if total > MAX_ZIP_BYTES:
                raise PackError(f"{archive}: unpacks to {total / 2**30:.1f} GiB, more than a model pack can be")
            for info in zf.infolist():
                try:
                    zf.extract(info, dest)
                except (OSError, ValueError) as e:  # e.g. a file and a folder of the same name
                    raise PackError(f"{archive}: cannot extract entry {info.filename!r} ({one_line(e)})") from None
    except (zipfile.BadZipFile, zipfile.LargeZipFile, NotImplementedError, EOFError) as e:
        raise PackError(f"{archive}: not a valid zip archive ({one_line(e)})") from None


def _copy_pack(src: Path, dst: Path) -> None:
    """Copy a pack folder, refusing anything that is not a plain file or folder inside it.

    A symbolic link is followed only when it resolves inside the pack (its target is copied);
    links that lead out of the pack, FIFOs, sockets and devices are refused by name.
    """
    root = src.resolve()
    dst.mkdir()
    for entry in sorted(src.iterdir()):
        target = dst / entry.name
        if entry.is_symlink():
            try:
                resolved = entry.resolve(strict=True)
            except (OSError, RuntimeError):
                raise PackError(f"{entry}: a broken symbolic link in the model pack") from None
            if not resolved.is_relative_to(root):
                raise PackError(f"{entry}: a symbolic link to {resolved}, outside the model pack; refusing it")
            if resolved.is_dir():
                raise PackError(f"{entry}: a symbolic link to a folder; a model pack holds only files and folders")
        mode = entry.stat().st_mode
        if stat.S_ISDIR(mode):
            _copy_pack(entry, target)
        elif stat.S_ISREG(mode):
            shutil.copy2(entry, target, follow_symlinks=True)
        else:
            raise PackError(f"{entry}: not a regular file (a FIFO, socket or device); a model pack holds only files")


def _source_kind(source: Path) -> str:
    """'dir' or 'file' for a pack source; a one-line error for anything else (a FIFO would hang)."""
    try:
        mode = source.stat().st_mode
    except FileNotFoundError:
        raise PixfindError(f"{source}: not found") from None
    except OSError as e:
        raise PixfindError(f"{source}: cannot read it ({e.strerror or one_line(e)})") from None
    if stat.S_ISDIR(mode):
        return "dir"
    if stat.S_ISREG(mode):
        return "file"
    raise PackError(f"{source}: not a regular file or folder (a FIFO, socket or device); cannot import it")


def _pid_alive(pid: int) -> bool:
    if os.name == "nt":  # os.kill would terminate the process there; never guess
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):
        return True
    return True


def _clean_stale_scratch(root: Path) -> None:
    """Remove ``.install-PID-*`` folders whose process is gone (killed mid-install)."""
    try:
        entries = list(root.iterdir())
    except OSError:
        return
    for entry in entries:
        if not entry.name.startswith(".install-"):
            continue
        m = re.match(r"^\.install-(\d+)-", entry.name)
        if m:
            stale = int(m.group(1)) != os.getpid() and not _pid_alive(int(m.group(1)))
        else:  # left by an older pixfind, which did not name its process: stale after a day
            try:
                stale = time.time() - entry.stat().st_mtime > 86400
            except OSError:
                stale = False
        if stale:
            shutil.rmtree(entry, ignore_errors=True)


def install(source: Path, name: str | None = None, *, replace: bool = False, move: bool = False) -> InstalledPack:
    """Install a pack from a directory or a .zip, verifying every file first.

    The pack is copied into a temporary directory beside its final place and renamed,
    so an interrupted install never leaves a half-written pack under the final name.
    """
    source = Path(source)
    if name is not None:
        check_name(name)
    kind = _source_kind(source)
    if kind == "file" and not zipfile.is_zipfile(source):
        raise PackError(f"{source}: neither a model pack directory nor a .zip of one")
    root = paths.models_dir()
    root.mkdir(parents=True, exist_ok=True)
    _clean_stale_scratch(root)
    with tempfile.TemporaryDirectory(dir=root, prefix=f".install-{os.getpid()}-") as tmp:
        tmp = Path(tmp)
        src_dir = source if kind == "dir" else _extract_zip(source, tmp / "unzipped")
        manifest = read_manifest(src_dir)  # schema, graph-independent checks, files confined to the pack
        name = check_name(name or manifest.name)
        staged = tmp / "pack"
        if move and kind == "dir" and not any(p.is_symlink() for p in src_dir.rglob("*")):
            shutil.move(str(src_dir), staged)
        else:
            _copy_pack(src_dir, staged)
        # Check the copy, not the source: it is what will be used, and the source may change meanwhile.
        manifest = load_pack(staged, verify=True)
        encoder = _check_loads(staged)
        speed = _run_once(staged, encoder)
        record_files(staged, manifest)
        _calibrate(staged, manifest, encoder)
        final = root / name
        if final.exists():
            if not replace:
                raise PixfindError(f"model {name!r} is already installed at {final} (use --replace to overwrite it)")
            old = tmp / "old"
            final.rename(old)
        staged.rename(final)
    if speed is not None:
        record_speed(name, manifest, *speed)
    return InstalledPack(name, final, manifest, paths.dir_size(final))


def _check_loads(pack_dir: Path):
    """Open the pack as the app will, so a pack ONNX Runtime cannot run is refused at install."""
    from .encoder import Encoder

    return Encoder(pack_dir, providers=["CPUExecutionProvider"], verify=None, lazy=False)


#: Photos timed at install for the images-per-second figure (a batch, as indexing feeds them).
SPEED_SAMPLE = 4


def _run_once(pack_dir: Path, encoder) -> tuple[float, str] | None:
    """Encode one text and a few sample photos, so a pack that loads but cannot run is refused at
    install; returns (images per second, provider) measured on those photos, when they exist."""
    import numpy as np
    from PIL import Image

    from .calibration import SAMPLE_DIR

    photos = sorted(SAMPLE_DIR.glob("*.jpg"))[:SPEED_SAMPLE] if SAMPLE_DIR.is_dir() else []
    try:
        text = encoder.encode_texts(["a photo"])
        images = [Image.new("RGB", (64, 48), (120, 90, 60))] if not photos else photos
        started = time.perf_counter()
        pixels = encoder.encode_images(images)
        elapsed = time.perf_counter() - started
    except PixfindError:
        raise
    except Exception as e:  # noqa: BLE001 - ONNX Runtime raises its own types for graphs that cannot run
        raise PackError(f"{pack_dir}: the model loads but cannot encode ({one_line(e)})") from None
    for what, out in (("text", text), ("image", pixels)):
        if not np.all(np.isfinite(out)) or out.shape[-1] != encoder.dim:
            raise PackError(f"{pack_dir}: the {what} encoder gives {list(out.shape)} values that are not finite {encoder.dim}-d embeddings")
    if not photos or elapsed <= 0:
        return None
    return len(photos) / elapsed, encoder.active_provider


def _speeds_file() -> Path:
    return paths.data_dir() / "model-speeds.json"


def read_speeds() -> dict[str, dict]:
    """{pack name: {"images_per_s", "provider", "visual_sha256", "measured"}} measured on this machine."""
    try:
        with open(_speeds_file(), "rb") as f:
            raw = f.read(1 << 20)
        data = json.loads(raw.decode("utf-8"))
    except (OSError, ValueError, RecursionError):
        return {}
    if not isinstance(data, dict):
        return {}
    return {k: v for k, v in data.items() if isinstance(k, str) and isinstance(v, dict) and isinstance(v.get("images_per_s"), (int, float))}


def record_speed(name: str, manifest: PackManifest, images_per_s: float, provider: str) -> None:
    speeds = read_speeds()
    speeds[name] = {
        "images_per_s": round(float(images_per_s), 2),
        "provider": provider,
        "visual_sha256": manifest.files.get("visual.onnx", ""),
        "measured": time.strftime("%Y-%m-%dT%H:%M:%S"),
    }
    path = _speeds_file()
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp.write_text(json.dumps(speeds, indent=1) + "\n", encoding="utf-8")
        tmp.replace(path)
    except OSError:
        tmp.unlink(missing_ok=True)  # a figure for display only: never fail an install for it


def speed_of(name: str) -> float | None:
    """Images per second measured for the installed pack ``name`` (if its image tower is the one measured)."""
    entry = read_speeds().get(name)
    if not entry:
        return None
    try:
        manifest = read_manifest(pack_path(name))
    except (PackError, PixfindError):
        return None
    return float(entry["images_per_s"]) if entry.get("visual_sha256") == manifest.files.get("visual.onnx") else None


def write_zip(name: str, out: Path) -> tuple[Path, str, int]:
    """A distributable zip of the installed pack ``name`` (its verified files under NAME/); (path, sha256, size).

    Only the files pack.json lists go in (plus pack.json): install records and sidecars stay out.
    The zip is written beside ``out`` and renamed into place, so a failed write leaves nothing.
    """
    from .pack import sha256_file

    pack = get(name)
    manifest = load_pack(pack.path, verify=True)
    out = Path(out)
    if out.is_dir():
        out = out / f"{name}.zip"
    tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp")
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        with zipfile.ZipFile(tmp, "w", allowZip64=True) as zf:
            for member in [MANIFEST_NAME, *manifest.files]:
                # ONNX weights barely compress; the JSON and the tokenizer do.
                kind = zipfile.ZIP_STORED if member.endswith((".onnx", ".data")) else zipfile.ZIP_DEFLATED
                zf.write(pack.path / member, f"{name}/{member}", compress_type=kind)
        digest = sha256_file(tmp)
        size = tmp.stat().st_size
        tmp.replace(out)
    except OSError as e:
        tmp.unlink(missing_ok=True)
        raise PixfindError(f"{out}: cannot write the zip ({e.strerror or one_line(e)})") from None
    return out, digest, size


def _calibrate(pack_dir: Path, manifest: PackManifest, encoder) -> None:
    """Calibrate a pack built before calibration existed; kept in a sidecar file, pack.json untouched."""
    if manifest.calibration:
        return
    from . import calibration

    try:
        calibration.ensure(pack_dir, manifest, encoder)
    except Exception as e:  # noqa: BLE001 - optional: measured again on first use
        _warn(f"{pack_dir.name}: could not calibrate the model now ({one_line(e)}); it is done on first use")


def remove(name: str) -> Path:
    path = get(name).path
    shutil.rmtree(path)
    settings = _read_settings()
    if settings.get("default_model") == name:
        settings.pop("default_model")
        _write_settings(settings)
    return path


#: settings.json's keys and the type each value must have.
_SETTINGS_TYPES = {"default_model": str, "starter_notice_shown": bool}
_warned: set[str] = set()


def _warn(message: str) -> None:
    """A one-line warning on stderr, once per process."""
    if message not in _warned:
        _warned.add(message)
        print(f"pixfind: warning: {message}", file=sys.stderr)


def _read_settings() -> dict:
    """settings.json as a dict of valid values; anything unusable is ignored with a warning."""
    path = paths.settings_file()
    try:
        with open(path, "rb") as f:
            raw = f.read((1 << 20) + 1)
    except FileNotFoundError:
        return {}
    except OSError as e:
        _warn(f"{path}: cannot read settings ({e.strerror or one_line(e)}); using the defaults")
        return {}
    try:
        if len(raw) > 1 << 20:
            raise ValueError("larger than 1 MiB")
        data = json.loads(raw.decode("utf-8"))
    except (ValueError, RecursionError) as e:
        _warn(f"{path}: not valid JSON ({one_line(e, 80)}); using the defaults")
        return {}
    if not isinstance(data, dict):
        _warn(f"{path}: expected a JSON object, found {type(data).__name__}; using the defaults")
        return {}
    settings = {}
    for key, value in data.items():
        wanted = _SETTINGS_TYPES.get(key)
        if wanted is None:
            settings[key] = value  # a setting this version does not know: keep it as it is
        elif isinstance(value, wanted) and (wanted is not str or _NAME_RE.match(value)):
            settings[key] = value
        else:
            _warn(f"{path}: ignoring {key!r}: {json.dumps(value)[:40]} is not a valid value")
    return settings


def _write_settings(settings: dict) -> None:
    path = paths.settings_file()
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp.write_text(json.dumps(settings, indent=2) + "\n", encoding="utf-8")
        tmp.replace(path)
    except OSError as e:
        try:
            tmp.unlink(missing_ok=True)
        except OSError:
            pass
        raise PixfindError(f"{path}: cannot save settings ({e.strerror or one_line(e)})") from None


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
    try:
        _write_settings(settings)
    except PixfindError:
        pass  # a read-only data folder: the notice is shown again next time, which is harmless
    return STARTER_NOTICE
