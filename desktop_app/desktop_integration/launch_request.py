"""What a launch of `pixfind app` asks the window for: one JSON line on the single-instance socket.

Checked field by field on both ends: the socket is the user's own, but anything the user runs can write to it.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import asdict, dataclass

from ..library.scanner import is_photo_name
from ..text import printable

MAX_LINE = 16 * 1024  # a request is a few hundred bytes; anything longer is not one
MAX_QUERY = 2000
MAX_PATH = 4096
_TOKEN = re.compile(r"[\x21-\x7e]{1,512}")  # XDG activation tokens are printable ASCII


@dataclass(frozen=True)
class LaunchRequest:
    """What a launch asks the window to do; empty fields ask for nothing but the window in front."""

    query: str = ""  # words to search for
    similar: str = ""  # an image file: find photos like it
    folder: str = ""  # a folder of photos to add to the library
    pick_image: bool = False  # open the "Search by image" file picker
    activation_token: str = ""  # Wayland: the launcher's XDG_ACTIVATION_TOKEN, so the window may take the focus

    def to_line(self) -> bytes:
        return json.dumps(asdict(self)).encode("utf-8", "surrogateescape") + b"\n"

    @classmethod
    def from_line(cls, line: bytes) -> LaunchRequest:
        """The request in ``line``, checked field by field; ValueError (one line) for anything else."""
        if len(line) > MAX_LINE:
            raise ValueError(f"longer than {MAX_LINE} bytes")
        try:
            data = json.loads(line.decode("utf-8", "surrogateescape"))
        except (UnicodeDecodeError, ValueError):
            raise ValueError("not a JSON line") from None
        if not isinstance(data, dict):
            raise ValueError("not a JSON object")
        unknown = set(data) - set(cls.__dataclass_fields__)
        if unknown:
            raise ValueError(f"unknown field {printable(sorted(unknown)[0])!r}")
        for key, value in data.items():
            wanted = bool if key == "pick_image" else str
            if type(value) is not wanted:
                raise ValueError(f"{key}: not a {wanted.__name__}")
        return cls(**data).validated()

    def validated(self) -> LaunchRequest:
        if len(self.query) > MAX_QUERY or any(ord(c) < 0x20 or c == "\x7f" for c in self.query):
            raise ValueError(f"query: longer than {MAX_QUERY} characters or with control characters")
        for key in ("similar", "folder"):
            value = getattr(self, key)
            if value and (len(value) > MAX_PATH or "\x00" in value or not os.path.isabs(value)):
                raise ValueError(f"{key}: not an absolute path")
        if self.similar and not (is_photo_name(self.similar) and os.path.isfile(self.similar)):
            raise ValueError(f"{printable(self.similar)}: not an image file pixfind reads")
        if self.folder and not os.path.isdir(self.folder):
            raise ValueError(f"{printable(self.folder)}: not a folder")
        if self.activation_token and not _TOKEN.fullmatch(self.activation_token):
            raise ValueError("activation_token: not a token")
        return self
