"""OCR quality and speed: words rendered onto real photos, read by the OCR pass, found by text search.

Photos: the bundled sample photos and scikit-image's (camera, brick, grass, gravel,
immunohistochemistry), enlarged to --side px, each given --per-photo words in varied fonts
(the DejaVu families, a CJK font for Chinese words), sizes, angles and colours, drawn
straight onto the picture; plus scikit-image's real text photos: page() (a photographed book
page, its words transcribed below) and text() (handwritten formulas: a photo with no words).
The photos go into a real library (rows inserted directly: the image model plays no part),
the real OCR pass reads them, and every rendered word is searched:

- recall: words whose photo is found, by the exact word with its diacritics folded, and by
  its first five letters (partial word); per condition;
- precision: of all photos the searches returned, those that carry the word;
- the same recall reading the photos at the size the embedding's decode has (--embed-side),
  which is why the OCR pass decodes again;
- OCR photos/s on this machine, lines per photo;
- catalogue growth per photo and query latency with --synthetic photos' worth of text
  (synthetic lines inserted in bulk), for the unicode61 index pixfind uses and, for
  comparison, a trigram index over the same lines.

    python benchmarks/ocr_quality.py [--side 1600] [--per-photo 2] [--variants 3] [--synthetic 100000]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.machine import cpu_model, loadavg
from desktop_app.library import text_search
from desktop_app.library.catalogue import Folder, Photo
from desktop_app.library.library_dir import Library
from desktop_app.library.ocr import OcrEngine, ocr_image
from desktop_app.library.ocr_pass import OcrPass

REPO = Path(__file__).resolve().parent.parent
LATIN = [
    "hornbach", "budget", "receipt", "invoice", "whiteboard", "meeting", "quarterly", "warranty", "ticket",
    "parking", "pharmacy", "boarding", "passport", "delivery", "schedule", "festival", "harbour", "bakery",
    "library", "station", "platform", "exhibit", "museum", "concert", "payment", "deadline", "agenda",
    "roadmap", "kitchen", "garage", "plumber", "voucher", "coupon", "airport", "terminal", "luggage",
    "café", "müller", "zürich", "crème", "résumé", "jalapeño", "köln", "señor", "château", "naïve",
]  # fmt: skip
CHINESE = ["预算", "北京", "发票", "会议", "咖啡", "火箭", "寺庙", "花园", "机场", "车票", "菜单", "药店"]
# The content words of skimage.data.page() (a photographed page about region-based segmentation).
PAGE_WORDS = [
    "region", "segmentation", "determine", "markers", "coins", "background", "pixels", "label",
    "unambiguously", "object", "extreme", "histogram", "values",
]  # fmt: skip
COLOURS = {"white": (250, 250, 250), "black": (10, 10, 10), "yellow": (255, 220, 0), "red": (220, 30, 30)}
SIZES = {"small": 0.02, "medium": 0.035, "large": 0.06}  # text height as a fraction of the long side
ANGLES = [0, 8, -20]


def fonts() -> tuple[list[Path], Path | None]:
    import matplotlib

    ttf = Path(matplotlib.get_data_path()) / "fonts" / "ttf"
    latin = [ttf / n for n in ("DejaVuSans.ttf", "DejaVuSans-Bold.ttf", "DejaVuSerif.ttf", "DejaVuSansMono.ttf")]
    found = subprocess.run(["fc-list", ":lang=zh", "file"], capture_output=True, text=True).stdout.split()
    cjk = sorted(f.rstrip(":") for f in found if f.rstrip(":").endswith((".ttf", ".ttc", ".otf")))
    return [f for f in latin if f.is_file()], Path(cjk[0]) if cjk else None


def backgrounds() -> list[tuple[str, Image.Image]]:
    from skimage import data

    out = [(p.stem, Image.open(p).convert("RGB")) for p in sorted((REPO / "desktop_app" / "resources" / "sample-photos").glob("*.jpg"))]
    for name in ("camera", "brick", "grass", "gravel", "immunohistochemistry"):
        out.append((name, Image.fromarray(getattr(data, name)()).convert("RGB")))
    return out


def draw_word(image: Image.Image, word: str, font: Path, height: int, angle: int, colour, where, rng) -> None:
    face = ImageFont.truetype(str(font), height)
    box = face.getbbox(word)
    layer = Image.new("RGBA", (box[2] + 8, box[3] + 8), (0, 0, 0, 0))
    ImageDraw.Draw(layer).text((4, 4), word, font=face, fill=(*colour, 255))
    layer = layer.rotate(angle, expand=True, resample=Image.Resampling.BICUBIC)
    x = int(where[0] * max(1, image.width - layer.width))
    y = int(where[1] * max(1, image.height - layer.height))
    image.paste(layer, (x, y), layer)


def make_photos(folder: Path, side: int, per_photo: int, variants: int, seed: int = 0) -> list[dict]:
    """The rendered photos and, for each, what was drawn where; photo records in file order."""
    rng = random.Random(seed)
    latin_fonts, cjk_font = fonts()
    words = LATIN + (CHINESE if cjk_font else [])
    rng.shuffle(words)
    records, n = [], 0
    for name, base in backgrounds():
        scale = side / max(base.size)
        base = base.resize((round(base.width * scale), round(base.height * scale)), Image.Resampling.BICUBIC)
        for v in range(variants):
            image = base.copy()
            drawn = []
            for k in range(per_photo):
                word = words[n % len(words)]
                n += 1
                cjk = word in CHINESE
                cond = {
                    "font": cjk_font.stem if cjk else latin_fonts[rng.randrange(len(latin_fonts))].stem,
                    "size": rng.choice(list(SIZES)),
                    "angle": rng.choice(ANGLES),
                    "colour": rng.choice(list(COLOURS)),
                }
                font = cjk_font if cjk else next(f for f in latin_fonts if f.stem == cond["font"])
                height = max(8, round(SIZES[cond["size"]] * side))
                where = (rng.uniform(0.05, 0.95), (k + rng.uniform(0.1, 0.9)) / per_photo)
                draw_word(image, word, font, height, cond["angle"], COLOURS[cond["colour"]], where, rng)
                drawn.append({"word": word, **cond})
            path = folder / f"{name}-{v}.jpg"
            image.save(path, quality=90)
            records.append({"path": str(path), "words": drawn})
    from skimage import data

    for name in ("page", "text"):
        path = folder / f"skimage-{name}.png"
        Image.fromarray(getattr(data, name)()).save(path)
        words = [{"word": w, "font": "photo", "size": "photo", "angle": 0, "colour": "photo"} for w in PAGE_WORDS]
        records.append({"path": str(path), "words": words if name == "page" else []})
    return records


def catalogue_photos(library: Library, records: list[dict]) -> dict[int, dict]:
    """Photo rows for the files (the OCR pass needs nothing else); id -> record."""
    with library.catalogue.session() as s, s.begin():
        folder = Folder(path=str(Path(records[0]["path"]).parent), added_at=time.time())
        s.add(folder)
        s.flush()
        by_id = {}
        for i, r in enumerate(records):
            photo = Photo(folder_id=folder.id, path=r["path"], size=os.path.getsize(r["path"]), mtime_ns=0,
                          fingerprint=f"f{i}", file_time=0.0, indexed_at=0.0)  # fmt: skip
            s.add(photo)
            s.flush()
            by_id[photo.id] = r
    return by_id


def fold(word: str) -> str:
    import unicodedata

    return "".join(c for c in unicodedata.normalize("NFKD", word) if not unicodedata.combining(c))


def search_quality(library: Library, by_id: dict[int, dict]) -> dict:
    truth = {}  # word -> photo ids carrying it
    for pid, r in by_id.items():
        for w in r["words"]:
            truth.setdefault(w["word"], set()).add(pid)
    per_condition: dict[str, list[int]] = {}
    found_exact = found_prefix = returned = correct = total = 0
    for pid, r in by_id.items():
        for w in r["words"]:
            total += 1
            word = w["word"]
            hit = pid in text_search.photo_ids_matching(library.catalogue, [fold(word)])
            found_exact += hit
            partial = word[:5] if word not in CHINESE else word[:1]
            found_prefix += pid in text_search.photo_ids_matching(library.catalogue, [fold(partial)])
            for key in ("font", "size", "angle", "colour"):
                per_condition.setdefault(f"{key}={w[key]}", []).append(int(hit))
            per_condition.setdefault("script=" + ("chinese" if word in CHINESE else "latin"), []).append(int(hit))
    for word, ids in truth.items():
        got = text_search.photo_ids_matching(library.catalogue, [fold(word)])
        returned += len(got)
        correct += len(got & ids)
    return {
        "words": total,
        "recall_exact": found_exact / total,
        "recall_prefix5": found_prefix / total,
        "precision": correct / returned if returned else 1.0,
        "per_condition": {k: (sum(v) / len(v), len(v)) for k, v in sorted(per_condition.items())},
    }


def recall_at_side(engine: OcrEngine, records: list[dict], side: int) -> float:
    """Recall of the rendered words read at a long side of ``side`` px (string match in the lines)."""
    hits = total = 0
    for r in records:
        if not r["words"]:
            continue
        image = ocr_image(r["path"])
        image.thumbnail((side, side), Image.Resampling.BILINEAR)
        text = " ".join(fold(line.text).casefold() for line in engine.read(image))
        for w in r["words"]:
            total += 1
            hits += fold(w["word"]).casefold() in text
    return hits / max(1, total)


def synthetic(library: Library, photos: int, lines_per_photo: float, seed: int = 1) -> dict:
    """Catalogue growth and query latency with ``photos`` photos' worth of synthetic text."""
    rng = np.random.default_rng(seed)
    letters = np.array(list("abcdefghijklmnopqrstuvwxyz"))
    vocab = ["".join(rng.choice(letters, rng.integers(3, 11))) for _ in range(30000)]
    vocab[:4] = ["hornbach", "receipt", "budget", "meeting"]
    cjk = [chr(c) for c in range(0x4E00, 0x4E00 + 3000)]
    zipf = np.minimum(rng.zipf(1.2, 10_000_000), len(vocab)) - 1
    path = library.catalogue.path
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA journal_mode = WAL")

    def size() -> int:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        return path.stat().st_size

    folder = conn.execute("SELECT id FROM folders LIMIT 1").fetchone()[0]
    first = conn.execute("SELECT coalesce(max(id), 0) + 1 FROM photos").fetchone()[0]
    with conn:
        conn.executemany(
            "INSERT INTO photos (id, folder_id, path, size, mtime_ns, fingerprint, file_time, indexed_at) VALUES (?, ?, ?, 1, 0, 's', 0, 0)",
            ((first + i, folder, f"/synthetic/{i}.jpg".encode()) for i in range(photos)),
        )
    before = size()
    counts = rng.poisson(lines_per_photo, photos)
    z = iter(zipf)
    rows = []
    for i, n in enumerate(counts):
        for _ in range(n):
            if rng.random() < 0.1:
                text = "".join(cjk[int(rng.integers(0, len(cjk)))] for _ in range(int(rng.integers(2, 9))))
            else:
                text = " ".join(vocab[next(z)] for _ in range(int(rng.integers(1, 7))))
            rows.append((first + i, text, text_search.terms_column(text), "[[0,0],[1,0],[1,1],[0,1]]", 0.9))
    t = time.perf_counter()
    with conn:
        conn.executemany("INSERT INTO ocr_lines (photo_id, text, terms, box, confidence) VALUES (?, ?, ?, ?, ?)", rows)
    insert_s = time.perf_counter() - t
    after = size()
    queries = {
        "common word": ["hornbach"],
        "rare word": [vocab[2000]],
        "prefix (3 letters)": ["rec"],
        "phrase": [f"{vocab[1]} {vocab[2]}"],
        "two terms": ["budget", "meeting"],
        "CJK 2 chars": [next(r[1][2:4] for r in rows if r[2] is not None)],  # from the middle of a line
        "no match": ["zzzzqqq"],
    }
    latency = {}
    for label, terms in queries.items():
        ids_ms, find_ms = [], []
        for _ in range(5):
            t = time.perf_counter()
            ids = text_search.photo_ids_matching(library.catalogue, terms)
            ids_ms.append((time.perf_counter() - t) * 1000)
            t = time.perf_counter()
            text_search.find(library.catalogue, terms, limit=50)
            find_ms.append((time.perf_counter() - t) * 1000)
        latency[label] = (len(ids), statistics.median(ids_ms), statistics.median(find_ms))
    # The alternative: a trigram index over the same lines (substrings anywhere, 3 characters at least).
    t = time.perf_counter()
    with conn:
        conn.execute("CREATE VIRTUAL TABLE tri USING fts5(terms, content='ocr_terms', content_rowid='id', tokenize='trigram')")
        conn.execute("INSERT INTO tri (tri) VALUES ('rebuild')")
    tri_build = time.perf_counter() - t
    tri_size = size() - after
    tri_ms = {}
    for label, q in {"common word": "hornbach", "prefix (3 letters)": "rec", "infix": "nbac"}.items():
        ms = []
        for _ in range(5):
            t = time.perf_counter()
            n = len(conn.execute("SELECT DISTINCT l.photo_id FROM tri JOIN ocr_lines l ON l.id = tri.rowid WHERE tri MATCH ?", (f'"{q}"',)).fetchall())
            ms.append((time.perf_counter() - t) * 1000)
        tri_ms[label] = (n, statistics.median(ms))
    fts_only = conn.execute("SELECT sum(length(block)) FROM ocr_fts_data").fetchone()[0]
    conn.close()
    return {
        "photos": photos,
        "lines": len(rows),
        "insert_s": insert_s,
        "bytes_per_photo": (after - before) / photos,
        "fts_bytes_per_photo": fts_only / photos,
        "latency": latency,
        "trigram_bytes_per_photo": tri_size / photos,
        "trigram_build_s": tri_build,
        "trigram_ms": tri_ms,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--side", type=int, default=2000, help="long side of the rendered photos (px)")
    ap.add_argument("--per-photo", type=int, default=2)
    ap.add_argument("--variants", type=int, default=3, help="rendered photos per background")
    ap.add_argument("--embed-side", type=int, default=448, help="long side the embedding's decode gives (px)")
    ap.add_argument("--synthetic", type=int, default=100000, help="photos' worth of synthetic text")
    ap.add_argument("--json", type=Path, help="also write the figures here")
    args = ap.parse_args()

    print(f"# OCR quality on {cpu_model()}, {os.cpu_count()} cores, load {loadavg()}")
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "photos"
        folder.mkdir()
        records = make_photos(folder, args.side, args.per_photo, args.variants)
        with Library(Path(tmp) / "library") as library:
            by_id = catalogue_photos(library, records)
            size_before = library.catalogue.path.stat().st_size
            engine = OcrEngine()
            t = time.perf_counter()
            engine.read(Image.new("RGB", (64, 64)))  # loads the models
            load_s = time.perf_counter() - t
            report = OcrPass(library, engine).run()
            quality = search_quality(library, by_id)
            small = recall_at_side(engine, records, args.embed_side)
            with library.catalogue.session() as s:
                from sqlalchemy import text as sql

                line_bytes = s.scalar(sql("SELECT sum(length(text) + coalesce(length(terms), 0) + length(box) + 24) FROM ocr_lines"))
            result = {
                "photos": report.read,
                "lines": report.lines,
                "ocr_photos_per_s": report.read / report.seconds,
                "model_load_s": load_s,
                "quality": quality,
                "recall_at_embed_side": small,
                "real_line_bytes_per_photo": line_bytes / report.read,
                "catalogue_bytes_before": size_before,
            }
            result["synthetic"] = synthetic(library, args.synthetic, max(1.0, report.lines / report.read))

    q, syn = result["quality"], result["synthetic"]
    print(f"\n{result['photos']} photos ({args.side}-px long side, read at {args.embed_side} px for comparison), "
          f"{q['words']} words, {result['lines']} lines read")  # fmt: skip
    print(f"{'measure':<44} {'value':>12}")
    for label, value in [
        ("word recall, exact word (diacritics folded)", f"{q['recall_exact']:.1%}"),
        ("word recall, first 5 letters", f"{q['recall_prefix5']:.1%}"),
        ("precision of the searches", f"{q['precision']:.1%}"),
        (f"recall reading at {args.embed_side} px (embedding decode)", f"{result['recall_at_embed_side']:.1%}"),
        ("OCR photos/s (decode + detect + recognise)", f"{result['ocr_photos_per_s']:.2f}"),
        ("OCR model load (s)", f"{result['model_load_s']:.2f}"),
        ("lines per photo", f"{result['lines'] / result['photos']:.2f}"),
    ]:
        print(f"{label:<44} {value:>12}")
    print(f"\n{'recall by condition':<28} {'recall':>8} {'words':>6}")
    for key, (recall, n) in q["per_condition"].items():
        print(f"{key:<28} {recall:>8.1%} {n:>6}")
    print(f"\nsynthetic: {syn['photos']:,} photos, {syn['lines']:,} lines, inserted in {syn['insert_s']:.1f} s")
    print(f"catalogue growth per photo: {syn['bytes_per_photo']:.0f} bytes ({syn['fts_bytes_per_photo']:.0f} of them the FTS index); "
          f"trigram index instead: +{syn['trigram_bytes_per_photo']:.0f} bytes/photo, built in {syn['trigram_build_s']:.1f} s")  # fmt: skip
    print(f"{'query at ' + format(syn['photos'], ',') + ' photos':<30} {'photos':>8} {'ids ms':>8} {'find(50) ms':>12}")
    for label, (n, ids_ms, find_ms) in syn["latency"].items():
        print(f"{label:<30} {n:>8} {ids_ms:>8.1f} {find_ms:>12.1f}")
    print(f"{'trigram query':<30} {'photos':>8} {'ms':>8}")
    for label, (n, ms) in syn["trigram_ms"].items():
        print(f"{label:<30} {n:>8} {ms:>8.1f}")
    if args.json:
        args.json.write_text(json.dumps(result, indent=1, default=str))


if __name__ == "__main__":
    main()
