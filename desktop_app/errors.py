"""User-facing errors: one clear line, shown without a traceback by the CLI and the GUI."""


class PixfindError(Exception):
    """An error caused by the user's input or environment, not by a bug in pixfind."""


class Cancelled(PixfindError):
    """A long operation (indexing, a download, an export) was stopped at the user's request."""

    def __init__(self, message: str = "cancelled"):
        super().__init__(message)


class PackError(PixfindError):
    """A model pack is missing, incomplete, corrupt or incompatible."""


def one_line(error: object, limit: int = 200) -> str:
    """A library's error message as one short line, for the reason part of a user-facing error."""
    text = " ".join(str(error).split())
    if not text:
        return type(error).__name__
    return text if len(text) <= limit else text[: limit - 1] + "…"
