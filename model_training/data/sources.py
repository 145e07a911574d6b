"""Reading data-set listings: ImageFolder trees and CSV/JSONL manifests (path,label / path,caption)."""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass, field
from pathlib import Path

from desktop_app.errors import PixfindError

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp", ".bmp", ".gif", ".tif", ".tiff"}


@dataclass
class LabelledListing:
    paths: list[Path]
    labels: list[int]
    classes: list[str]


@dataclass
class CaptionListing:
    paths: list[Path]
    captions: list[list[str]] = field(default_factory=list)


def image_folder(root: Path) -> LabelledListing:
    """One sub-folder per class, classes in sorted order (torchvision's convention)."""
    root = Path(root)
    if not root.is_dir():
        raise PixfindError(f"{root}: image folder not found")
    classes = sorted(p.name for p in root.iterdir() if p.is_dir())
    paths, labels = [], []
    for label, name in enumerate(classes):
        for path in sorted((root / name).rglob("*")):
            if path.suffix.lower() in IMAGE_SUFFIXES:
                paths.append(path)
                labels.append(label)
    if not paths:
        raise PixfindError(f"{root}: no images in class sub-folders")
    return LabelledListing(paths, labels, classes)


def _rows(path: Path) -> list[dict]:
    path = Path(path)
    if not path.is_file():
        raise PixfindError(f"{path}: manifest not found")
    try:
        if path.suffix == ".jsonl":
            with open(path, encoding="utf-8") as f:
                return [json.loads(line) for line in f if line.strip()]
        if path.suffix in (".csv", ".tsv"):
            with open(path, encoding="utf-8", newline="") as f:
                return list(csv.DictReader(f, delimiter="\t" if path.suffix == ".tsv" else ","))
    except (ValueError, csv.Error) as e:
        raise PixfindError(f"{path}: unreadable manifest ({e})") from None
    raise PixfindError(f"{path}: unknown manifest type {path.suffix!r} (expected .csv, .tsv or .jsonl)")


def _resolve(path_value, manifest: Path, root: Path | None, line: int) -> Path:
    if not path_value:
        raise PixfindError(f"{manifest}: row {line} has no 'path'")
    p = Path(path_value)
    return p if p.is_absolute() else (Path(root) if root else manifest.parent) / p


def labelled_manifest(path: Path, root: Path | None = None) -> LabelledListing:
    """Rows with ``path`` and ``label`` (any string); classes in sorted order."""
    rows = _rows(path)
    if rows and "label" not in rows[0]:
        raise PixfindError(f"{path}: a labelled manifest needs 'path' and 'label' columns")
    classes = sorted({str(r["label"]) for r in rows})
    index = {c: i for i, c in enumerate(classes)}
    paths = [_resolve(r.get("path"), Path(path), root, i + 1) for i, r in enumerate(rows)]
    return LabelledListing(paths, [index[str(r["label"])] for r in rows], classes)


def caption_manifest(path: Path, root: Path | None = None) -> CaptionListing:
    """Rows with ``path`` and ``caption`` (one string) or ``captions`` (a JSON list; may be empty)."""
    rows = _rows(path)
    paths, captions = [], []
    for i, r in enumerate(rows):
        if "captions" in r:
            caps = r["captions"] if isinstance(r["captions"], list) else json.loads(r["captions"])
        elif "caption" in r:
            caps = [r["caption"]]
        else:
            raise PixfindError(f"{path}: row {i + 1} has neither 'caption' nor 'captions'")
        paths.append(_resolve(r.get("path"), Path(path), root, i + 1))
        captions.append([str(c) for c in caps])
    return CaptionListing(paths, captions)


def labelled_source(spec: dict) -> LabelledListing:
    """A labelled set from a config entry: ``{imagefolder: DIR}`` or ``{manifest: FILE, root: DIR}``."""
    if "imagefolder" in spec:
        return image_folder(Path(spec["imagefolder"]))
    if "manifest" in spec:
        return labelled_manifest(Path(spec["manifest"]), spec.get("root"))
    raise PixfindError(f"data set entry {spec!r}: expected 'imagefolder' or 'manifest'")


def mix_labelled(listings: list[LabelledListing], names: list[str] | None = None) -> LabelledListing:
    """Concatenate labelled sets with disjoint label spaces: set k's labels are shifted past set k-1's."""
    paths, labels, classes = [], [], []
    for k, listing in enumerate(listings):
        prefix = f"{names[k]}/" if names else (f"{k}/" if len(listings) > 1 else "")
        offset = len(classes)
        paths += listing.paths
        labels += [offset + label for label in listing.labels]
        classes += [prefix + c for c in listing.classes]
    return LabelledListing(paths, labels, classes)
