"""The model service: installed packs, the models that can be pulled, and what a user does with them.

One implementation for `pixfind models ...` and the window's models dialog. Building a
pack from a checkpoint needs the training module (torch, open_clip), imported lazily.
"""

from __future__ import annotations

import importlib.util
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from .. import download as downloads
from .. import model_store, paths
from ..download import DownloadCancelled, download
from ..errors import Cancelled, PixfindError
from ..known_models import KNOWN_MODELS, KnownModel
from ..pack import PackManifest, load_pack
from ..text import human_size
from .training import import_training

STARTER = "starter"
Log = Callable[[str], None]
PullProgress = Callable[[str, int, "int | None"], None]  # (stage: "download" or "export", done, total)


@dataclass
class InstalledModel:
    name: str
    path: Path
    size_bytes: int
    dim: int | None  # None: the pack is broken, see problem
    precision: str | None
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
        pack.name, pack.path, pack.size_bytes, m.embedding_dim, m.precision, _source_text(m), pack.name == default, bool(m.starter)
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


def import_pack(source: str | os.PathLike, name: str | None = None, *, replace: bool = False) -> InstalledModel:
    """Install a model pack from a folder or a .zip of one."""
    pack = model_store.install(Path(source), name, replace=replace)
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
) -> InstalledModel:
    """Download a checkpoint (resumable), export it as a verified pack and install it.

    ``name`` is a known model (see :func:`known`), or the pack's name for a checkpoint at ``url``
    (which needs ``arch``). Setting ``cancel`` stops with :class:`Cancelled`; the partial download
    is kept and the next pull resumes it.
    """
    log = log or (lambda _msg: None)
    url, arch, filename, expected, extra = _checkpoint_source(name, url, arch, sha256, tokenizer)
    model_store.check_name(name)
    missing = export_extra_missing()
    if missing:
        raise PixfindError(
            f"turning a checkpoint into a model pack needs the 'export' extra ({missing} is not installed): "
            "pip install 'pixfind[export]', or import a ready-made pack instead"
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
