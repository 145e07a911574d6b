"""Reading the text in photos: real rapidocr models on real photos with rendered words.

Words are drawn with real fonts (DejaVu, shipped with matplotlib; a CJK font from the
system: `apt-get install fonts-wqy-microhei`) onto the bundled sample photos, the photos
indexed by `pixfind index` with the tiny model, then read by the OCR pass and searched.
"""

from __future__ import annotations

import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from PIL import Image, ImageDraw, ImageFont

from desktop_app.library import migrations, text_search
from desktop_app.library.catalogue import ocr_enabled, set_ocr_enabled
from desktop_app.library.library_dir import Library
from desktop_app.library.ocr_pass import OcrPass
from tests.library_helpers import REPO, db_rows, index_json

SAMPLES = REPO / "desktop_app" / "resources" / "sample-photos"


def latin_font() -> str:
    import matplotlib

    return str(Path(matplotlib.get_data_path()) / "fonts" / "ttf" / "DejaVuSans-Bold.ttf")


def cjk_font() -> str:
    found = subprocess.run(["fc-list", ":lang=zh", "file"], capture_output=True, text=True).stdout.split()
    files = sorted(f.rstrip(":") for f in found if f.rstrip(":").endswith((".ttf", ".ttc", ".otf")))
    if not files:
        pytest.fail("no font with Chinese characters on this machine: apt-get install fonts-wqy-microhei")
    return files[0]


def render(photo: str, out: Path, words: str, font: str, size: int = 34, side: int = 480) -> tuple[float, ...]:
    """A sample photo shrunk to ``side`` px with ``words`` printed on a light label near its top;
    returns the label's (left, top, right, bottom) as fractions of the photo's width and height."""
    image = Image.open(SAMPLES / photo).convert("RGB")
    image.thumbnail((side, side))
    draw = ImageDraw.Draw(image)
    face = ImageFont.truetype(font, size)
    width = int(draw.textlength(words, font=face))
    label = (16, 16, 16 + width + 24, 16 + int(size * 1.6))
    draw.rectangle(label, fill=(245, 240, 225))
    draw.text((28, 20), words, font=face, fill=(20, 20, 60))
    out.parent.mkdir(parents=True, exist_ok=True)
    image.save(out, quality=92)
    return tuple(v / (image.width if i % 2 == 0 else image.height) for i, v in enumerate(label))


def read_text(library: Path, **kwargs):
    """The OCR pass on its own (the libraries here are indexed with OCR off, see tests/conftest.py)."""
    with Library(library) as lib:
        return OcrPass(lib, **kwargs).run(force=True)


def found(library: Path, *terms: str) -> dict[str, list[str]]:
    """File name -> matched lines, for the photos whose text has every term."""
    with Library(library) as lib:
        hits = text_search.find(lib.catalogue, list(terms))
        names = dict(db_rows(library, "SELECT id, CAST(path AS TEXT) FROM photos"))
    return {os.path.basename(names[pid]): [m.text for m in lines] for pid, lines in hits.items()}


def fts_intact(library: Path) -> None:
    conn = sqlite3.connect(library / "catalogue.db")
    try:
        conn.execute("INSERT INTO ocr_fts (ocr_fts, rank) VALUES ('integrity-check', 1)")
    finally:
        conn.close()


def test_photos_are_found_by_the_words_in_them(tmp_path, capsys, tiny_model, library_dir):
    photos = tmp_path / "photos"
    label = render("coffee.jpg", photos / "receipt.jpg", "HORNBACH Baumarkt", latin_font())
    render("temple.jpg", photos / "sign.jpg", "Café Müller", latin_font())
    render("flower.jpg", photos / "plan.jpg", "本月预算", cjk_font(), size=40)
    render("wall-clock.jpg", photos / "board.jpg", "budget meeting", latin_font())
    shutil.copy(SAMPLES / "cat.jpg", photos / "cat.jpg")  # no text
    assert index_json(capsys, library_dir, photos, extra=["--model", tiny_model])["encoded"] == 5

    report = read_text(library_dir)
    assert (report.total, report.read, report.failed) == (5, 5, [])

    assert set(found(library_dir, "hornbach")) == {"receipt.jpg"}  # case folded
    assert set(found(library_dir, "horn")) == {"receipt.jpg"}  # the start of a word
    assert set(found(library_dir, "hornbach baum")) == {"receipt.jpg"}  # a phrase, its last word partial
    assert set(found(library_dir, "cafe muller")) == {"sign.jpg"}  # diacritics folded
    assert set(found(library_dir, "预算")) == {"plan.jpg"}  # a two-character Chinese word inside a line
    assert set(found(library_dir, "budget", "meeting")) == {"board.jpg"}
    assert found(library_dir, "meeting budget") == {}  # a phrase keeps its order
    assert found(library_dir, "hornbach", "budget") == {}  # every term must be in the photo

    with Library(library_dir) as lib:
        (pid,) = text_search.photo_ids_matching(lib.catalogue, ["baumarkt"])
        (line,) = text_search.matched_lines(lib.catalogue, ["baumarkt"], [pid])[pid]
        assert line.text[slice(*line.spans[0])].lower() == "baumarkt"
        (left, top), (right, _), (_, bottom), _ = line.box
        # on the label: the detector's box grows past the letters by a fraction of their height
        grow = 0.5 * (label[3] - label[1])
        assert label[0] - grow <= left < right <= label[2] + grow and label[1] - grow <= top < bottom <= label[3] + grow
        assert label[0] < (left + right) / 2 < label[2] and label[1] < (top + bottom) / 2 < label[3]
        (word,) = line.word_boxes()
        assert word[0][0] > left + (right - left) / 3  # "Baumarkt" is the second word

    # New content under the same name replaces the photo's text; a deleted photo takes its text along.
    render("coffee.jpg", photos / "receipt.jpg", "OBI Gartencenter", latin_font())
    (photos / "sign.jpg").unlink()
    index_json(capsys, library_dir)
    assert read_text(library_dir).total == 1
    assert found(library_dir, "hornbach") == {} and set(found(library_dir, "gartencenter")) == {"receipt.jpg"}
    assert found(library_dir, "cafe") == {}
    assert db_rows(library_dir, "SELECT count(*) FROM ocr_lines WHERE photo_id NOT IN (SELECT id FROM photos)") == [(0,)]
    fts_intact(library_dir)


PAUSING_PASS = textwrap.dedent(
    """
    import os, sys, time
    from desktop_app.library.library_dir import Library
    from desktop_app.library.ocr_pass import OcrPass

    library, paused, batches = sys.argv[1], sys.argv[2], int(sys.argv[3])
    commit, done = OcrPass._commit, [0]

    def pausing_commit(self, *args):
        commit(self, *args)
        done[0] += 1
        if done[0] == batches:
            open(paused, "w").close()
            while True:  # holds still here, the next photos not committed, until killed
                time.sleep(0.05)

    OcrPass._commit = pausing_commit
    with Library(library) as lib:
        OcrPass(lib, batch_size=2).run(force=True)
    """
)


def test_a_killed_pass_resumes_with_only_the_rest(tmp_path, capsys, tiny_model, library_dir):
    photos = tmp_path / "photos"
    names = ["astronaut.jpg", "coffee.jpg", "flower.jpg", "temple.jpg", "cat.jpg", "rocket-launch.jpg"]
    for i, name in enumerate(names):
        render(name, photos / f"p{i}.jpg", f"label{i} zebra", latin_font(), side=320)
    index_json(capsys, library_dir, photos, extra=["--model", tiny_model])

    paused = tmp_path / "paused"
    child = subprocess.Popen(
        [sys.executable, "-c", PAUSING_PASS, str(library_dir), str(paused), "2"],
        cwd=REPO,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 300
    while not paused.exists():
        assert child.poll() is None, child.stderr.read().decode()
        assert time.monotonic() < deadline, "the OCR pass never committed two batches"
        time.sleep(0.05)
    child.send_signal(signal.SIGKILL)
    child.wait()

    fts_intact(library_dir)
    before = dict(db_rows(library_dir, "SELECT photo_id, at FROM ocr_done"))
    assert len(before) == 4  # two batches of two, nothing of the third

    seen = []
    report = read_text(library_dir, progress=lambda done, total: seen.append((done, total)))
    assert (report.total, report.read) == (2, 2) and seen[-1] == (2, 2)
    after = dict(db_rows(library_dir, "SELECT photo_id, at FROM ocr_done"))
    assert len(after) == 6 and all(after[pid] == at for pid, at in before.items())  # the first four not read again
    assert len(found(library_dir, "zebra")) == 6
    assert set(found(library_dir, "label5")) == {"p5.jpg"}


NO_OCR_RUN = textwrap.dedent(
    """
    import sys
    from desktop_app.cli import main
    from desktop_app.library import text_search
    from desktop_app.library.library_dir import Library
    from desktop_app.library.ocr_pass import OcrPass

    library, photos, model, on = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4] == "on"
    code = main(["index", photos, "--library", library, "--model", model, "--ocr" if on else "--no-ocr"])
    with Library(library) as lib:
        report = OcrPass(lib).run()  # after the index run, which read the text when on
        read = len(text_search.photo_ids_matching(lib.catalogue, ["hornbach"]))
    print("RESULT", code, report.disabled, read, "rapidocr" in sys.modules, "onnxruntime" in sys.modules)
    """
)


def test_a_library_with_ocr_off_never_loads_the_ocr_models(tmp_path, tiny_model, pixfind_home):
    photos = tmp_path / "photos"
    render("coffee.jpg", photos / "receipt.jpg", "HORNBACH", latin_font(), side=240)

    def run(library: Path, on: str) -> list[str]:
        out = subprocess.run(
            [sys.executable, "-c", NO_OCR_RUN, str(library), str(photos), tiny_model, on],
            cwd=REPO,
            capture_output=True,
            text=True,
            env={**os.environ, "PIXFIND_HOME": str(pixfind_home)},
        )
        assert out.returncode == 0, out.stderr
        return out.stdout.splitlines()[-1].split()[1:]

    # exit code, OCR disabled, photos found by their text, rapidocr imported, onnxruntime imported (by the image model)
    assert run(tmp_path / "off", "off") == ["0", "True", "0", "False", "True"]
    assert run(tmp_path / "on", "on") == ["0", "False", "1", "True", "True"]


def test_ocr_is_on_for_new_libraries_and_off_for_upgraded_ones_with_photos(tmp_path):
    with Library(tmp_path / "new") as lib:
        assert ocr_enabled(lib.catalogue)
        set_ocr_enabled(lib.catalogue, False)
    with Library(tmp_path / "new") as lib:
        assert not ocr_enabled(lib.catalogue)

    old = tmp_path / "old"
    old.mkdir()
    conn = sqlite3.connect(old / "catalogue.db")
    for version, step in enumerate(migrations.STEPS[:3], start=1):
        conn.executescript(step)
        conn.execute(f"PRAGMA user_version = {version}")
    conn.execute("INSERT INTO folders (id, path, added_at) VALUES (1, x'2f70', 0)")
    conn.execute(
        "INSERT INTO photos (folder_id, path, size, mtime_ns, fingerprint, file_time, indexed_at) "
        "VALUES (1, x'2f702f612e6a7067', 1, 1, 'f', 0, 0)"
    )
    conn.commit()
    conn.close()
    with Library(old) as lib:
        assert not ocr_enabled(lib.catalogue)  # an upgrade never starts hours of OCR unasked
        assert db_rows(old, "PRAGMA user_version") == [(migrations.LATEST,)]
