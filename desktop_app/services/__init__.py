"""What a user can do, for both front ends: the library service and the model service.

The layers run one way: the engine (library/, encoder, packs, downloads) <- services <-
the command line (commands/) and the window (gui/). A front end parses, calls a service
and renders its typed answer, so the same request gives the same answer in both.
"""

from .library import FIRST_PAGE, LibraryService, NothingIndexed, export_files
from .records import (
    ActiveModelStatus,
    DuplicateGroup,
    DuplicateMember,
    FolderInfo,
    LibraryOverview,
    LibraryStatus,
    PhotoItem,
    SearchRequest,
    SearchResult,
    SkippedInfo,
    describe_report,
)

__all__ = [
    "FIRST_PAGE",
    "ActiveModelStatus",
    "DuplicateGroup",
    "DuplicateMember",
    "FolderInfo",
    "LibraryOverview",
    "LibraryService",
    "LibraryStatus",
    "NothingIndexed",
    "PhotoItem",
    "SearchRequest",
    "SearchResult",
    "SkippedInfo",
    "describe_report",
    "export_files",
]
