"""Helpers for benchmarks/fault_injection.py: running the real `pixfind` console script, generated
photos, a tiny model pack, the invariants a library must keep, and the damage cases of issue 12."""

from __future__ import annotations

import json
import os
import re
import shutil
import sqlite3
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

REPO = Path(__file__).resolve().parent.parent
_SCRIPT = Path(sys.executable).parent / "pixfind"
PIXFIND = [str(_SCRIPT)] if _SCRIPT.exists() else [sys.executable, "-m", "desktop_app"]
# C0 controls but newline and tab, DEL, C1 controls: what a terminal acts on instead of printing.
CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f]")


class Failure(Exception):
    """An invariant did not hold; the message's first line goes into the report."""


def check(condition, message: str) -> None:
    if not condition:
        raise Failure(message)


@dataclass
class Result:
    args: tuple
    code: int | None  # None: timed out
    out: str
    err: str

    def show(self) -> str:
        command = "pixfind " + " ".join(repr(a) if any(c in a for c in " \n\x1b") else a for a in self.args)
        tail = (self.err.strip() or self.out.strip()).splitlines()[-3:]
        return f"`{command}` exit {self.code}: " + " | ".join(tail)


class Pixfind:
    """The console script with PIXFIND_HOME set; every call a fresh process."""

    def __init__(self, home: Path):
        self.env = {**os.environ, "PIXFIND_HOME": str(home), "COLUMNS": "200"}

    def popen(self, *args) -> subprocess.Popen:
        return subprocess.Popen([*PIXFIND, *map(os.fsdecode, args)], cwd=REPO, env=self.env,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)

    def run(self, *args, timeout: float = 300) -> Result:
        args = tuple(os.fsdecode(a) for a in args)
        try:
            p = subprocess.run([*PIXFIND, *args], cwd=REPO, env=self.env, capture_output=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            return Result(args, None, "", f"timed out after {timeout:.0f} s")
        return Result(args, p.returncode, p.stdout.decode(errors="replace"), p.stderr.decode(errors="replace"))

    def ok(self, *args, allow_error: bool = False) -> Result:
        """Run; the output must be clean, the exit 0 (or, with allow_error, a one-line error)."""
        res = self.run(*args)
        problem = output_problem(res)
        check(problem is None, f"{problem}: {res.show()}")
        check(res.code == 0 or allow_error, res.show())
        return res

    def json(self, *args):
        res = self.ok(*args, "--json")
        try:
            return json.loads(res.out)
        except ValueError:
            raise Failure(f"not JSON: {res.show()}") from None


def output_problem(res: Result) -> str | None:
    """Exit 0, or exit 1 with exactly one stderr line `pixfind: error: ...`; never a traceback
    nor a raw control character on any line."""
    if res.code is None:
        return "hung"
    if "Traceback" in res.err or "Traceback" in res.out:
        return "traceback"
    for line in (res.out + "\n" + res.err).splitlines():
        if CONTROL.search(line):
            return f"raw control character {CONTROL.search(line).group()!r} in output"
    if res.code == 0:
        return None
    lines = res.err.strip().splitlines()
    if res.code != 1 or len(lines) != 1 or not lines[0].startswith("pixfind: error: "):
        return f"exit {res.code} with {len(lines)} stderr lines"
    return None


# --------------------------------------------------------------------------- photos and the pack


def make_photo(path: Path, rng: np.random.Generator) -> None:
    """A textured random image of a random size: smooth colour field, shapes, grain."""
    w, h = (int(v) for v in rng.integers(48, 900, 2))
    grid = rng.integers(0, 256, (int(rng.integers(2, 9)), int(rng.integers(2, 9)), 3), dtype=np.uint8)
    image = Image.fromarray(grid).resize((w, h), Image.Resampling.BICUBIC)
    draw = ImageDraw.Draw(image)
    for _ in range(int(rng.integers(0, 6))):
        box = sorted(rng.integers(0, w, 2).tolist()), sorted(rng.integers(0, h, 2).tolist())
        shape = draw.ellipse if rng.random() < 0.5 else draw.rectangle
        shape((box[0][0], box[1][0], box[0][1], box[1][1]), fill=tuple(rng.integers(0, 256, 3).tolist()))
    grain = rng.normal(0, rng.uniform(0, 20), (h, w, 3))
    pixels = np.clip(np.asarray(image, dtype=np.float32) + grain, 0, 255).astype(np.uint8)
    Image.fromarray(pixels).save(path, "PNG" if path.suffix == ".png" else "JPEG", quality=88)


def make_photos(folder: Path, n: int, seed: int) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    real = []
    try:
        import skimage.data as data  # bundled images only (no download)

        real = [getattr(data, name)() for name in ("astronaut", "coffee", "chelsea", "rocket", "camera", "hubble_deep_field")]
    except (ImportError, OSError):
        pass
    real = real[: n // 5]
    for i, pixels in enumerate(real):
        Image.fromarray(pixels).convert("RGB").save(folder / f"real{i}.jpg", quality=90)
    for i in range(n - len(real)):
        make_photo(folder / f"p{i:03d}{'.png' if i % 7 == 3 else '.jpg'}", rng)


def build_pack(dest: Path) -> Path:
    """The tests' tiny random-weight ViT (64-d, 32 px input), exported as a real pack."""
    sys.path.insert(0, str(REPO))
    from model_training.export import export_pack
    from tests.conftest import TINY_CONFIG, save_tiny_checkpoint

    dest.mkdir(parents=True, exist_ok=True)
    checkpoint = save_tiny_checkpoint(dest / "tiny.pth")
    export_pack(str(TINY_CONFIG), dest / "tiny", checkpoint=checkpoint, name="tiny")
    return dest / "tiny"


# --------------------------------------------------------------------------- invariants


def sql(lib: Path, query: str, *params) -> list[tuple]:
    conn = sqlite3.connect(lib / "catalogue.db")
    try:
        return conn.execute(query, params).fetchall()
    finally:
        conn.close()


def files_in(folder: Path) -> set[bytes]:
    base = os.fsencode(folder)
    return {os.path.join(base, name) for name in os.listdir(base)}


def index_count(status: dict) -> int:
    m = re.match(r"ok, (\d+) vectors", status["active_model"].get("index", ""))
    check(m, f"vector index not ok: {status['active_model'].get('index') or status['active_model']}")
    return int(m.group(1))


def check_consistent(px: Pixfind, lib: Path, status: dict | None = None) -> dict:
    """What must hold at any moment, even right after a kill -9."""
    status = status or px.json("status", "--library", lib)
    if not (lib / "catalogue.db").exists():
        return status
    check(sql(lib, "PRAGMA integrity_check") == [("ok",)], "catalogue.db fails PRAGMA integrity_check")
    key = status["active_model"].get("key")
    check(key, f"no active model: {status['active_model']}")
    lost = sql(lib, "SELECT COUNT(*) FROM photos p WHERE NOT EXISTS "
                    "(SELECT 1 FROM embeddings e WHERE e.photo_id = p.id AND e.model = ?)", key)[0][0]
    check(lost == 0, f"{lost} photo rows without a vector")
    check(status["photos"] == status["active_model"]["embedded"],
          f"status: {status['photos']} photos but {status['active_model']['embedded']} embedded")
    return status


def check_complete(px: Pixfind, lib: Path, expected: set[bytes], human: bool = False) -> None:
    """After a complete `pixfind index`: every expected photo indexed exactly once, searchable."""
    results = px.json("search", "x", "--library", lib, "-n", "100000")
    status = check_consistent(px, lib, px.json("status", "--library", lib))
    rows = [p for (p,) in sql(lib, "SELECT path FROM photos")]
    missing, extra = expected - set(rows), set(rows) - expected
    check(not missing, f"{len(missing)} photos not indexed again, e.g. {sorted(missing)[:1]}")
    check(not extra and len(rows) == len(set(rows)), f"photos indexed more than once or unknown: {sorted(extra)[:1]}")
    check(len(results) == len(rows), f"search returned {len(results)} of {len(rows)} photos")
    count = index_count(status)
    check(count == status["active_model"]["embedded"],
          f"vector index holds {count} vectors, catalogue {status['active_model']['embedded']}")
    left = list((lib / "thumbnails").glob("*.tmp")) + list((lib / "thumbnails").glob("*/*.tmp"))
    check(not left, f"{len(left)} thumbnail .tmp files left after a complete run")
    if human:  # file names reach the terminal here
        px.ok("search", "x", "--library", lib, "-n", "100000")
        px.ok("status", "--errors", "--library", lib)


def fingerprint(lib: Path) -> tuple:
    """The library's logical content: catalogue rows, vector files' bytes, thumbnail names."""
    conn = sqlite3.connect(lib / "catalogue.db")
    try:
        dump = tuple(conn.iterdump())
    finally:
        conn.close()
    vectors = tuple(sorted((p.name, p.read_bytes()) for p in (lib / "vectors").iterdir()))
    thumbs = tuple(sorted(str(p.relative_to(lib)) for p in (lib / "thumbnails").rglob("*")))
    return dump, vectors, thumbs


# --------------------------------------------------------------------------- damage cases
# (name, damage, whether the catalogue is lost so the final `pixfind index` must name the folder).
# Library damage: fn(library, rng). Photo damage: fn(photo, rng) -> its new name (bytes) if renamed.


def _db(lib: Path) -> Path:
    """catalogue.db with every committed row in the file itself (the WAL checkpointed)."""
    conn = sqlite3.connect(lib / "catalogue.db")
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    return lib / "catalogue.db"


def garbage_page(lib: Path, rng) -> None:
    db = _db(lib)
    size, count = sql(lib, "PRAGMA page_size")[0][0], sql(lib, "PRAGMA page_count")[0][0]
    with open(db, "r+b") as f:
        f.seek((rng.randint(2, count) - 1) * size)
        f.write(rng.randbytes(size))


def flip_bytes(path: Path, rng) -> None:
    data = bytearray(path.read_bytes())
    for offset in rng.sample(range(len(data)), 16):
        data[offset] ^= 0xFF
    path.write_bytes(bytes(data))


def half(path: Path) -> None:
    os.truncate(path, path.stat().st_size // 2)


def marker(lib: Path) -> Path:
    return next((lib / "vectors").glob("*.json"))


def hnsw(lib: Path) -> Path:
    return lib / "vectors" / json.loads(marker(lib).read_text())["file"]


def edit_marker(lib: Path, change) -> None:
    marker(lib).write_text(json.dumps(change(json.loads(marker(lib).read_text()))))


def run_sql(statement: str):
    def damage(lib: Path, rng) -> None:
        conn = sqlite3.connect(lib / "catalogue.db")
        ids = [i for (i,) in conn.execute("SELECT id FROM photos")]
        with conn:
            conn.execute(statement.replace("{id}", str(rng.choice(ids))))
        conn.close()
    return damage


def lock_folder(lib: Path, rng) -> None:
    (lib / "writer.lock").unlink(missing_ok=True)
    (lib / "writer.lock").mkdir()


def rename(name: bytes):
    def damage(photo: Path, rng) -> bytes:
        new = os.path.join(os.fsencode(photo.parent), name)
        os.rename(os.fsencode(photo), new)
        return new
    return damage


LIBRARY_DAMAGE = [
    ("catalogue: garbage page", garbage_page, False),
    ("catalogue: truncated", lambda lib, rng: half(_db(lib)), True),
    ("catalogue: empty", lambda lib, rng: os.truncate(_db(lib), 0), True),
    ("catalogue: change counter garbage", run_sql("UPDATE meta SET value = 'x7!' WHERE key = 'seq'"), False),
    ("catalogue: dropped table photos", run_sql("DROP TABLE photos"), False),
    ("catalogue: dropped table embeddings", run_sql("DROP TABLE embeddings"), False),
    ("catalogue: dropped table skipped_files", run_sql("DROP TABLE skipped_files"), False),
    ("catalogue: vector blob wrong length",
     run_sql("UPDATE embeddings SET vector = substr(vector, 1, 100) WHERE photo_id = {id}"), False),
    ("vector index: flipped bytes", lambda lib, rng: flip_bytes(hnsw(lib), rng), False),
    ("vector index: truncated", lambda lib, rng: half(hnsw(lib)), False),
    ("marker: missing", lambda lib, rng: marker(lib).unlink(), False),
    ("marker: garbage", lambda lib, rng: marker(lib).write_bytes(rng.randbytes(200)), False),
    ("marker: no change number", lambda lib, rng: edit_marker(lib, lambda m: {k: v for k, v in m.items() if k != "seq"}), False),
    ("marker: change number as a string", lambda lib, rng: edit_marker(lib, lambda m: {**m, "seq": str(m["seq"])}), False),
    ("writer.lock is a folder", lock_folder, False),
    ("thumbnails folder deleted", lambda lib, rng: shutil.rmtree(lib / "thumbnails"), False),
]
PHOTO_DAMAGE = [
    ("photo: garbage", lambda p, rng: p.write_bytes(rng.randbytes(p.stat().st_size)) and None, False),
    ("photo: truncated", lambda p, rng: half(p), False),
    ("photo: empty", lambda p, rng: os.truncate(p, 0), False),
    ("photo: newline in name", rename(b"forged\npixfind: error: fake line.jpg"), False),
    ("photo: escape sequence in name", rename(b"title\x1b]0;pwned\x07\x1b[2J\r.jpg"), False),
    ("photo: invalid UTF-8 in name", rename(b"bytes\xff\xfe.jpg"), False),
]
