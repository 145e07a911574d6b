"""The typed answers of the library service: what both front ends render."""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from ..library.search import Filters


@dataclass
class PhotoItem:
    """One photo in a result list: what the grid, the detail view, the filters and the CLI need."""

    id: int
    path: str
    thumbnail: str | None  # file name in the library's thumbnail cache
    date: float | None  # wall-clock seconds: EXIF time, else the file's time
    score: float  # similarity to the query; 0.0 when browsing
    width: int | None = None
    height: int | None = None
    size: int | None = None
    camera: str | None = None
    gps: tuple[float, float] | None = None

    @property
    def name(self) -> str:
        return os.path.basename(self.path)


@dataclass
class SearchRequest:
    text: str = ""  # the query language of desktop_app.library.query
    images: list[str] = field(default_factory=list)  # example image files (or photos of the library)
    balance: float = 0.5  # 0: only the words count, 1: only the images; 0.5 leaves the weights as given
    filters: Filters = field(default_factory=Filters)
    min_score: float | None = None
    sort: str = "relevance"  # or "date"
    limit: int = 10000
    add: list[str] = field(default_factory=list)  # more terms (text or image path) to add
    subtract: list[str] = field(default_factory=list)  # terms to subtract

    @property
    def empty(self) -> bool:
        return not self.text.strip() and not self.images and not self.add


@dataclass
class SearchResult:
    request: SearchRequest
    items: list[PhotoItem]  # best first (or newest first with sort="date" or when browsing)
    complete: bool  # False: the first page only, the rest follows
    seconds: float
    browse: bool = False  # no query: the library by date


@dataclass
class FolderInfo:
    id: int
    path: str
    photos: int
    present: bool  # False: not found on disk (an unplugged drive?); its photos are kept


@dataclass
class SkippedInfo:
    path: str
    reason: str


@dataclass
class LibraryOverview:
    """Folders, totals, cameras and skipped files: the window's side panel and filters."""

    folders: list[FolderInfo]
    photos: int
    embedded: int  # photos with a vector of the loaded model
    cameras: list[str]
    skipped: list[SkippedInfo]
    first_date: float | None
    last_date: float | None


@dataclass
class ActiveModelStatus:
    name: str
    key: str  # the model's key in the catalogue
    embedded: int
    index: str  # the vector index's health, one line


@dataclass
class LibraryStatus:
    """What `pixfind status` shows."""

    library: str
    folders: list[FolderInfo]
    photos: int
    models: dict[str, int]  # photos encoded per model key
    active: ActiveModelStatus | None
    problem: str | None  # why there is no active model
    skipped: list[SkippedInfo]


@dataclass
class DuplicateMember:
    item: PhotoItem
    similarity: float  # to the group's first member


@dataclass
class DuplicateGroup:
    members: list[DuplicateMember]  # the largest photo first


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def describe_report(report) -> str:
    """One line that sums up an indexing run (an indexer IndexReport)."""
    parts = [f"{_count(report.encoded, 'photo')} encoded"]
    for label, n in (("unchanged", report.unchanged), ("moved", report.moved), ("copied", report.copied), ("removed", report.removed)):
        if n:
            parts.append(f"{n} {label}")
    line = ", ".join(parts) + f" in {report.seconds:.1f} s"
    if report.skipped:
        line += f"; {_count(len(report.skipped), 'file')} skipped, see `pixfind status --errors`"
    return line
