"""Text for people: names from the disk made safe to print on a terminal or in a label."""

from __future__ import annotations

import os
import re

# C0 controls, DEL and C1 controls: a newline would forge a line of output, an ESC or a
# C1 CSI/OSC sequence would drive the terminal (its title, colours, the clipboard).
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _escape(match: re.Match) -> str:
    ch = match.group()
    return _NAMED.get(ch) or f"\\x{ord(ch):02x}"


def printable(text: str | bytes | os.PathLike) -> str:
    """``text`` with control characters and bytes that are not UTF-8 shown as ``\\x`` escapes.

    Surrogate-escaped bytes of a file name (how Python carries non-UTF-8 names) become ``\\xNN``;
    everything printable, any script, stays as it is.
    """
    if isinstance(text, os.PathLike):
        text = os.fspath(text)
    if isinstance(text, bytes):
        text = text.decode("utf-8", "backslashreplace")
    elif any("\ud800" <= ch <= "\udfff" for ch in text):
        try:
            text = text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
        except UnicodeEncodeError:  # a lone surrogate that stands for no byte
            text = text.encode("utf-8", "backslashreplace").decode("utf-8")
    return _CONTROL.sub(_escape, text)


def human_size(n: int) -> str:
    size = float(n)
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} GB"
