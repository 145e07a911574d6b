"""User-facing errors: one clear line, shown without a traceback by the CLI and the GUI."""


class PixfindError(Exception):
    """An error caused by the user's input or environment, not by a bug in pixfind."""


class PackError(PixfindError):
    """A model pack is missing, incomplete, corrupt or incompatible."""
