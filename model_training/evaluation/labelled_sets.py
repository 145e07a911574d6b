"""Readers for the paper's labelled retrieval sets whose layout is a folder tree: INSTRE and CUB-200-2011."""

from __future__ import annotations

import re
from pathlib import Path

from desktop_app.errors import PixfindError

from ..data.sources import IMAGE_SUFFIXES, LabelledListing

CUB_TEST_CLASSES = range(101, 201)  # 1-based ids: the second hundred is the test half of the metric-learning split


def _listing(root: Path, files: list[Path], label_of) -> LabelledListing:
    names = [label_of(p) for p in files]
    classes = sorted(set(names))
    index = {c: i for i, c in enumerate(classes)}
    return LabelledListing(files, [index[n] for n in names], classes)


def read_instre(root: Path) -> LabelledListing:
    """Every image below ``root``, labelled by the folder that holds it (INSTRE-S1/01a_canada_book/001.jpg)."""
    root = Path(root)
    files = sorted(p for p in root.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
    files = [p for p in files if p.parent != root]
    if not files:
        raise PixfindError(f"{root}: no images in class folders")
    return _listing(root, files, lambda p: p.parent.relative_to(root).as_posix())


def read_cub_test(root: Path) -> LabelledListing:
    """CUB-200-2011's test classes 101-200, from ``CUB_200_2011`` or its ``images`` folder ("101.Black_Tern/...")."""
    root = Path(root)
    images = root / "images" if (root / "images").is_dir() else root
    numbered = {}
    for folder in images.iterdir() if images.is_dir() else ():
        m = re.match(r"(\d+)\.", folder.name)
        if folder.is_dir() and m:
            numbered[int(m.group(1))] = folder
    if len(numbered) != 200:
        raise PixfindError(f"{images}: expected CUB-200-2011's 200 numbered class folders (001.Black_footed_Albatross ...), "
                           f"found {len(numbered)}")
    files = sorted(p for k in CUB_TEST_CLASSES for p in numbered[k].iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    return _listing(images, files, lambda p: p.parent.name)
