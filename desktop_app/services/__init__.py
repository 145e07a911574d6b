"""What a user can do, for both front ends: the library service and the model service.

The layers run one way: the engine (library/, encoder, packs, downloads) <- services <-
the command line (commands/) and the window (gui/). A front end parses, calls a service
and renders its typed answer, so the same request gives the same answer in both.

The names below are imported on first use (PEP 562): importing one light submodule
(``services.training``) must not import SQLAlchemy and the catalogue with ``services.library``,
so that a cold `pixfind search` can start opening its text tower before those imports.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

_EXPORTS = {
    "library": ["FIRST_PAGE", "LibraryService", "NothingIndexed", "export_files"],
    "records": [
        "ActiveModelStatus",
        "DuplicateGroup",
        "DuplicateMember",
        "FolderInfo",
        "LibraryOverview",
        "LibraryStatus",
        "PhotoItem",
        "SearchRequest",
        "SearchResult",
        "SkippedInfo",
        "describe_report",
    ],
}
_MODULE_OF = {name: module for module, names in _EXPORTS.items() for name in names}
__all__ = sorted(_MODULE_OF)


def __getattr__(name: str):
    module = _MODULE_OF.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


if TYPE_CHECKING:  # the same names for type checkers; at run time __getattr__ imports them
    from .library import FIRST_PAGE, LibraryService, NothingIndexed, export_files  # noqa: F401
    from .records import (  # noqa: F401
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
