"""Which layout a folder, a zip or a Hub repository holds, and a pack folder made from it.

Three layouts are known: a pixfind pack (``pack.json`` at its root), Immich's CLIP layout
(``config.json``, ``visual/model.onnx``, ``textual/model.onnx`` and their configs) and rclip's
data dir (``ViT-B-32-256-datacomp_s34b_b86k/{visual,textual}.onnx`` and
``tokenizer/bpe_simple_vocab_16e6.txt.gz``; its model subfolder is accepted for the data dir).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from pathlib import Path

from ..errors import PackError
from ..pack import MANIFEST_NAME, read_manifest
from . import immich, rclip

PIXFIND = "pixfind"
IMMICH = "immich"
RCLIP = "rclip"
Log = Callable[[str], None]


def layout_of_files(files: set[str], where: str) -> str:
    """The layout a set of relative paths describes; a one-line PackError naming what is missing."""
    if MANIFEST_NAME in files:
        return PIXFIND
    if immich.looks_like(files):
        missing = immich.missing_files(files)
        if missing:
            raise PackError(f"{where}: an Immich CLIP model without {missing[0]}; refusing it")
        return IMMICH
    if rclip.looks_like(files):
        missing = rclip.missing_files(files)
        if missing:
            raise PackError(f"{where}: an rclip model folder without {missing[0]}; refusing it")
        return RCLIP
    graphs = sorted(f for f in files if f.endswith(".onnx"))[:3]
    seen = f" (it holds {', '.join(graphs)})" if graphs else ""
    raise PackError(
        f"{where}: not a model pixfind can use; it is not a model pack (no pack.json), an Immich CLIP model "
        f"(config.json, visual/model.onnx, textual/model.onnx) nor rclip's model folder ({rclip.VISUAL_GRAPH}){seen}"
    )


def manifest_names(folder: Path) -> list[str]:
    """The files the pack.json in ``folder`` lists (read from a copy, as its neighbours may be cache links)."""
    import tempfile

    with tempfile.TemporaryDirectory(prefix="pixfind-manifest-") as tmp:
        link_or_copy(Path(folder) / MANIFEST_NAME, Path(tmp) / MANIFEST_NAME)
        return list(read_manifest(Path(tmp)).files)


def files_of(folder: Path) -> set[str]:
    folder = Path(folder)
    return {p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()}


def find_root(folder: Path) -> Path:
    """The shallowest folder under ``folder`` holding pack.json or an Immich config.json (for zips
    that wrap the model in a folder)."""
    folder = Path(folder)
    for depth in range(3):
        for candidate in sorted(p for p in ([folder] if depth == 0 else folder.glob("/".join(["*"] * depth))) if p.is_dir()):
            shallow = files_of_shallow(candidate)
            if (candidate / MANIFEST_NAME).is_file() or immich.looks_like(shallow) or rclip.looks_like(shallow):
                return candidate
    return folder


def files_of_shallow(folder: Path) -> set[str]:
    names = set()
    for name in (immich.CONFIG, immich.VISUAL_GRAPH, immich.TEXTUAL_GRAPH, *rclip.REQUIRED):
        if (folder / name).is_file():
            names.add(name)
    return names


def model_folder(folder: Path) -> Path:
    """The folder to read a model from: ``folder``, or rclip's data dir when ``folder`` is its model subfolder."""
    return rclip.data_dir(folder) or Path(folder)


def link_or_copy(src: Path, dst: Path) -> None:
    """Hard-link ``src`` (its target, for a link into a download cache) to ``dst``, or copy it."""
    src = Path(src).resolve()
    dst.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(src, dst)
    except OSError:
        shutil.copyfile(src, dst)


def prepare(folder: Path, out: Path, *, name: str | None, source: dict, log: Log) -> tuple[Path, str]:
    """A pack folder at the new path ``out`` made from ``folder`` (any known layout); (out, layout).

    A pixfind pack is linked file by file (only the files pack.json lists, each confined to the
    pack); an Immich or rclip model is converted. The result is checked and installed by model_store.
    """
    folder = Path(folder)
    if not (folder / MANIFEST_NAME).is_file():
        folder = model_folder(folder)
    shallow = files_of_shallow(folder)
    layout = PIXFIND if (folder / MANIFEST_NAME).is_file() else layout_of_files(shallow, str(folder)) if not immich.looks_like(shallow) else IMMICH
    if layout == PIXFIND:
        out.mkdir(parents=True)
        link_or_copy(folder / MANIFEST_NAME, out / MANIFEST_NAME)
        manifest = read_manifest(out)  # read from the copy: the files beside it may be links into a cache
        for member in manifest.files:
            src = folder / member
            if not src.is_file():
                raise PackError(f"{src}: missing from the model pack")
            link_or_copy(src, out / member)
        return out, layout
    if layout == RCLIP:
        rclip.convert(folder, out, name=name or rclip.DEFAULT_NAME, source=source, log=log)
        return out, layout
    default = source.get("repo", "").rsplit("/", 1)[-1] or folder.name
    immich.convert(folder, out, name=name or default, source=source, log=log)
    return out, layout
