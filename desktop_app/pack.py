"""The model pack: the one interface between training and the app.

A pack is a directory holding ``visual.onnx``, ``textual.onnx``, ``tokenizer.json``
and ``pack.json``. ``pack.json`` describes where the encoders came from, how images
are preprocessed and texts tokenised, and the sha256 of every file, so the app can
refuse a pack that was damaged or tampered with.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from .errors import PackError

FORMAT_VERSION = 1
MANIFEST_NAME = "pack.json"
VISUAL_FILE = "visual.onnx"
TEXTUAL_FILE = "textual.onnx"
TOKENIZER_FILE = "tokenizer.json"
PRECISIONS = ("fp32", "fp16", "int8")
RESIZE_MODES = ("shortest", "longest", "squash")
CLEAN_MODES = ("lower", "whitespace", "canonicalize")


def sha256_file(path: Path, chunk_size: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(chunk_size):
            digest.update(chunk)
    return digest.hexdigest()


@dataclass
class ImageSettings:
    """How open_clip's eval transform prepares an image for this model."""

    size: tuple[int, int]  # (height, width)
    resize_mode: str = "shortest"
    interpolation: str = "bicubic"
    mean: tuple[float, float, float] = (0.48145466, 0.4578275, 0.40821073)
    std: tuple[float, float, float] = (0.26862954, 0.26130258, 0.27577711)
    fill_color: int = 0


@dataclass
class TextSettings:
    """How open_clip's tokenizer for this model turns a string into token ids."""

    context_length: int
    clean: str = "lower"
    pad_id: int = 0
    tokenizer_file: str = TOKENIZER_FILE


@dataclass
class PackManifest:
    name: str
    embedding_dim: int
    precision: str
    image: ImageSettings
    text: TextSettings
    source: dict[str, Any] = field(default_factory=dict)
    files: dict[str, str] = field(default_factory=dict)
    versions: dict[str, str] = field(default_factory=dict)
    verification: dict[str, Any] = field(default_factory=dict)
    description: str = ""
    starter: bool = False
    format_version: int = FORMAT_VERSION

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, sort_keys=False) + "\n"

    @classmethod
    def from_dict(cls, data: dict[str, Any], where: str = MANIFEST_NAME) -> PackManifest:
        try:
            version = int(data.get("format_version", 0))
            if version != FORMAT_VERSION:
                raise PackError(
                    f"{where}: pack format {version} is not supported (this pixfind reads format {FORMAT_VERSION})"
                )
            image = dict(data["image"])
            image["size"] = tuple(int(v) for v in image["size"])
            image["mean"] = tuple(float(v) for v in image["mean"])
            image["std"] = tuple(float(v) for v in image["std"])
            manifest = cls(
                name=str(data["name"]),
                embedding_dim=int(data["embedding_dim"]),
                precision=str(data["precision"]),
                image=ImageSettings(**image),
                text=TextSettings(**data["text"]),
                source=dict(data.get("source", {})),
                files=dict(data["files"]),
                versions=dict(data.get("versions", {})),
                verification=dict(data.get("verification", {})),
                description=str(data.get("description", "")),
                starter=bool(data.get("starter", False)),
                format_version=version,
            )
        except PackError:
            raise
        except KeyError as e:
            raise PackError(f"{where}: required field {e.args[0]!r} is missing") from None
        except (TypeError, ValueError) as e:
            raise PackError(f"{where}: malformed field ({e})") from None
        manifest.validate(where)
        return manifest

    def validate(self, where: str = MANIFEST_NAME) -> None:
        problems = []
        if self.precision not in PRECISIONS:
            problems.append(f"precision {self.precision!r} is not one of {', '.join(PRECISIONS)}")
        if self.embedding_dim <= 0:
            problems.append(f"embedding_dim {self.embedding_dim} is not positive")
        if len(self.image.size) != 2 or min(self.image.size) <= 0:
            problems.append(f"image size {self.image.size} is not (height, width)")
        if self.image.resize_mode not in RESIZE_MODES:
            problems.append(f"image resize_mode {self.image.resize_mode!r} is not one of {', '.join(RESIZE_MODES)}")
        if self.image.interpolation not in ("bicubic", "bilinear"):
            problems.append(f"image interpolation {self.image.interpolation!r} is not bicubic or bilinear")
        if len(self.image.mean) != 3 or len(self.image.std) != 3:
            problems.append("image mean and std need three values each")
        if self.text.clean not in CLEAN_MODES:
            problems.append(f"text clean {self.text.clean!r} is not one of {', '.join(CLEAN_MODES)}")
        if self.text.context_length <= 0:
            problems.append(f"text context_length {self.text.context_length} is not positive")
        for required in (VISUAL_FILE, TEXTUAL_FILE, self.text.tokenizer_file):
            if required not in self.files:
                problems.append(f"no sha256 recorded for {required}")
        if problems:
            raise PackError(f"{where}: " + "; ".join(problems))


def read_manifest(pack_dir: Path) -> PackManifest:
    path = Path(pack_dir) / MANIFEST_NAME
    if not Path(pack_dir).is_dir():
        raise PackError(f"{pack_dir}: model pack directory not found")
    if not path.is_file():
        raise PackError(f"{path}: missing; {pack_dir} is not a model pack")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise PackError(f"{path}: unreadable or not valid JSON ({e})") from None
    if not isinstance(data, dict):
        raise PackError(f"{path}: expected a JSON object")
    return PackManifest.from_dict(data, where=str(path))


def verify_files(pack_dir: Path, manifest: PackManifest) -> None:
    """Check that every file the manifest lists is present and has its recorded sha256."""
    for name, expected in manifest.files.items():
        path = Path(pack_dir) / name
        if not path.is_file():
            raise PackError(f"{path}: missing from the model pack")
        actual = sha256_file(path)
        if actual != expected:
            raise PackError(
                f"{path}: sha256 {actual[:12]}… does not match pack.json ({expected[:12]}…); the file is damaged or was replaced"
            )


def load_pack(pack_dir: Path, verify: bool = True) -> PackManifest:
    manifest = read_manifest(Path(pack_dir))
    if verify:
        verify_files(Path(pack_dir), manifest)
    return manifest


def write_manifest(pack_dir: Path, manifest: PackManifest) -> Path:
    """Record the sha256 of every pack file and write pack.json last."""
    pack_dir = Path(pack_dir)
    names = [VISUAL_FILE, TEXTUAL_FILE, manifest.text.tokenizer_file]
    names += [n for n in manifest.files if n not in names]
    manifest.files = {name: sha256_file(pack_dir / name) for name in names}
    manifest.validate()
    path = pack_dir / MANIFEST_NAME
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(manifest.to_json(), encoding="utf-8")
    tmp.replace(path)
    return path
