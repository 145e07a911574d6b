"""WebDataset tar shards (what img2dataset writes) as a random-access data set: a member index, no unpacking.

A sample is the group of members sharing a key (``000123.jpg``, ``000123.txt``, ...). Reading by stored
offset makes the feature cache resumable at any sample and lets shards be mixed with manifests.
"""

from __future__ import annotations

import io
import tarfile
from dataclasses import dataclass
from pathlib import Path

from desktop_app.errors import PixfindError

IMAGE_EXTS = ("jpg", "jpeg", "png", "webp")


def expand_urls(pattern: str | list[str]) -> list[Path]:
    """``shards/{00000..00099}.tar`` brace patterns, as img2dataset and webdataset write them."""
    from braceexpand import braceexpand

    patterns = [pattern] if isinstance(pattern, str) else list(pattern)
    paths = [Path(p) for pat in patterns for p in braceexpand(pat)]
    missing = [p for p in paths if not p.is_file()]
    if missing:
        raise PixfindError(f"{missing[0]}: shard not found" + (f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""))
    return paths


@dataclass(frozen=True)
class Member:
    shard: Path
    offset: int
    size: int


@dataclass
class ShardSample:
    key: str
    image: Member
    caption: Member | None


def index_shards(paths: list[Path]) -> list[ShardSample]:
    samples = []
    for shard in paths:
        groups: dict[str, dict[str, Member]] = {}
        try:
            with tarfile.open(shard, "r:") as tar:
                for m in tar:
                    if not m.isfile() or "." not in Path(m.name).name:
                        continue
                    key, ext = m.name.split(".", 1) if "/" not in m.name else (m.name.rsplit(".", 1)[0], m.name.rsplit(".", 1)[1])
                    groups.setdefault(key, {})[ext.lower()] = Member(shard, m.offset_data, m.size)
        except tarfile.TarError as e:
            raise PixfindError(f"{shard}: not a readable tar shard ({e})") from None
        for key, parts in groups.items():
            image = next((parts[e] for e in IMAGE_EXTS if e in parts), None)
            if image is not None:
                samples.append(ShardSample(key, image, parts.get("txt")))
    if not samples:
        raise PixfindError(f"{paths[0] if paths else 'shards'}: no image samples in the shards")
    return samples


def read_member(member: Member) -> bytes:
    with open(member.shard, "rb") as f:
        f.seek(member.offset)
        return f.read(member.size)


class ShardImage:
    """A path-like handle that the data sets open with PIL (``load_rgb`` accepts file objects)."""

    def __init__(self, member: Member, key: str):
        self.member, self.key = member, key

    def open(self) -> io.BytesIO:
        return io.BytesIO(read_member(self.member))

    def __str__(self) -> str:
        return f"{self.member.shard}:{self.key}"


def shard_captions(samples: list[ShardSample]) -> tuple[list[ShardImage], list[list[str]]]:
    images = [ShardImage(s.image, s.key) for s in samples]
    captions = [[read_member(s.caption).decode("utf-8", "replace").strip()] if s.caption else [] for s in samples]
    return images, captions
