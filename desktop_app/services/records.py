"""The typed answers of the library service: what both front ends render."""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from ..library.search import Filters

Box = tuple[tuple[float, float], ...]  # four corners clockwise from top left, fractions of the upright photo's size


@dataclass
class TextMatch:
    """A line of text read in a photo that has words of the query's quoted words."""

    text: str
    box: Box  # the line's
    spans: tuple[tuple[int, int], ...]  # [start, end) of the matched words in text
    word_boxes: list[Box] = field(default_factory=list)  # the part of the box under each span


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
    place: str | None = None  # nearest town of the GPS position ("Town, Region, Country")
    text_matches: list[TextMatch] = field(default_factory=list)  # lines matching the query's quoted words

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
    # the words' language for multilingual packs that take one (ISO 639-1 or FLORES-200: "de", "deu_Latn");
    # None: detected from the words, else the system locale
    language: str | None = None

    @property
    def empty(self) -> bool:
        return not self.text.strip() and not self.images and not self.add


@dataclass
class SearchResult:
    request: SearchRequest
    items: list[PhotoItem]  # good matches first, then the weaker ones; each part best first (or newest first with sort="date")
    complete: bool  # False: the first page only, the rest follows
    seconds: float
    browse: bool = False  # no query: the library by date
    # How many leading items are good matches (score >= cutoff); all of them when there is no cut-off
    # (browsing, a query with image or negative terms, or a model whose calibration cannot tell).
    good: int | None = None
    cutoff: float | None = None  # the good-match score for this query; None: no cut-off
    timings: dict[str, float] = field(default_factory=dict)  # seconds per step: "encode", "search", "rows"

    def __post_init__(self) -> None:
        if self.good is None:
            self.good = len(self.items)

    @property
    def weaker(self) -> int:
        """Items after the good matches."""
        return len(self.items) - self.good

    @property
    def no_good_match(self) -> bool:
        """A query with results, none of them a good match."""
        return self.good == 0 and bool(self.items)


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
    places: list[str] = field(default_factory=list)  # place names of the library's photos, sorted
    text_read: tuple[int, int] | None = None  # (photos whose text is read, photos); None: OCR is off


@dataclass
class ActiveModelStatus:
    name: str
    key: str  # the model's key in the catalogue
    embedded: int
    index: str  # the vector index's health, one line
    recall: dict | None = None  # measured recall@10 with its ef and M, from the index marker


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
    text_read: tuple[int, int] | None = None  # (photos whose text is read, photos); None: OCR is off


@dataclass
class DuplicateMember:
    item: PhotoItem
    similarity: float  # to the group's first member
    hash_distance: int = 0  # perceptual-hash bits differing from the first member
    suggest_trash: bool = False  # pre-marked: a copy in a confident group, not its best copy


@dataclass
class DuplicateGroup:
    members: list[DuplicateMember]  # the copy to keep first (resolution, format, file size, age)
    confident: bool = True  # every member a strict perceptual match of the first: its copies are pre-marked


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def describe_report(report, skipped_hint: str = "see `pixfind status --errors`") -> str:
    """One line that sums up an indexing run (an indexer IndexReport); ``skipped_hint`` says where
    the skipped files are listed (the window passes its own words, never a command)."""
    parts = [f"{_count(report.encoded, 'photo')} encoded"]
    for label, n in (("unchanged", report.unchanged), ("moved", report.moved), ("copied", report.copied), ("removed", report.removed)):
        if n:
            parts.append(f"{n} {label}")
    line = ", ".join(parts) + f" in {report.seconds:.1f} s"
    if report.skipped:
        line += f"; {_count(len(report.skipped), 'file')} skipped" + (f", {skipped_hint}" if skipped_hint else "")
    ocr = report.ocr
    if ocr is not None and not ocr.disabled and not ocr.error and ocr.total:
        line += f"; text read in {ocr.read} of {_count(ocr.total, 'photo')} in {ocr.seconds:.1f} s"
    return line


def describe_ocr_progress(read: int, total: int) -> str:
    """`pixfind status`'s line on the text read in photos."""
    return f"text read in {read:,} of {_count(total, 'photo')}" if total else "no photos to read"
