"""The full-text index over OCR lines in a real catalogue: query syntax, folding, CJK, and the
index kept in step with photos (no OCR model: lines are stored as the OCR pass stores them)."""

from __future__ import annotations

import sqlite3
import time

import pytest
from sqlalchemy import delete, select

from desktop_app.errors import PixfindError
from desktop_app.library import text_search
from desktop_app.library.catalogue import Folder, OcrDone, OcrLine, Photo
from desktop_app.library.library_dir import Library
from desktop_app.library.ocr import TextLine

BOX = ((0.1, 0.2), (0.5, 0.2), (0.5, 0.3), (0.1, 0.3))


@pytest.fixture
def library(tmp_path):
    with Library(tmp_path / "lib") as lib:
        yield lib


def add_photo(lib: Library, name: str, *lines: str) -> int:
    with lib.catalogue.session() as s, s.begin():
        folder = s.scalars(select(Folder)).first() or Folder(path="/photos", added_at=0.0)
        s.add(folder)
        s.flush()
        photo = Photo(folder_id=folder.id, path=f"/photos/{name}", size=1, mtime_ns=0, fingerprint=name,
                      file_time=0.0, indexed_at=0.0)  # fmt: skip
        s.add(photo)
        s.flush()
        for text in lines:
            line = TextLine(text, BOX, 0.9)
            s.add(OcrLine(photo_id=photo.id, text=text, terms=text_search.terms_column(text), box=line.box_json(), confidence=0.9))
        s.add(OcrDone(photo_id=photo.id, model="m", at=time.time()))
        return photo.id


def names(lib: Library, *terms: str) -> set[str]:
    ids = text_search.photo_ids_matching(lib.catalogue, list(terms))
    with lib.catalogue.session() as s:
        return {p.rsplit("/", 1)[-1] for p in s.scalars(select(Photo.path).where(Photo.id.in_(ids)))}


def test_words_prefixes_phrases_diacritics_and_cjk(library):
    add_photo(library, "receipt", "HORNBACH Baumarkt GmbH", "Summe 42,99 EUR")
    add_photo(library, "sign", "Café Müller", "Zürich")
    add_photo(library, "plan", "本月预算表", "北京")
    add_photo(library, "wide", "ＦＵＬＬ ｗｉｄｔｈ")  # full-width letters, as screenshots of CJK text have them

    assert names(library, "hornbach") == {"receipt"}
    assert names(library, "horn") == {"receipt"}
    assert names(library, "bach") == set()  # prefix search: the start of a word, not its middle
    assert names(library, "hornbach baum") == {"receipt"}
    assert names(library, "baumarkt hornbach") == set()
    assert names(library, "CAFE", "zurich") == {"sign"}
    assert names(library, "müller") == {"sign"}
    assert names(library, "预算") == {"plan"} and names(library, "月预") == {"plan"}
    assert names(library, "预北") == set()  # characters must follow each other
    assert names(library, "full width") == {"wide"}
    assert names(library, "42") == {"receipt"}


@pytest.mark.parametrize("term", ['"', 'horn" OR "x', "horn*", "NEAR(a b)", "-horn", "a AND", "^horn", "col:horn", "(", "'"])
def test_fts_syntax_typed_by_the_user_is_only_words(library, term):
    add_photo(library, "receipt", "HORNBACH Baumarkt")
    try:
        result = names(library, term)
    except PixfindError as e:  # a term without letters or digits: one line, no SQL error
        assert "no letters or digits" in str(e)
        return
    assert result <= {"receipt"}


def test_matched_lines_mark_the_words_and_their_boxes(library):
    pid = add_photo(library, "receipt", "HORNBACH Baumarkt GmbH", "Summe 42,99 EUR", "Café")
    hits = text_search.find(library.catalogue, ["baum", "cafe"])
    (line_a, line_b) = hits[pid]
    assert line_a.text == "HORNBACH Baumarkt GmbH" and line_a.spans == ((9, 17),)  # the whole word "Baumarkt"
    assert line_b.text == "Café" and line_b.spans == ((0, 4),)
    (word,) = line_a.word_boxes()
    assert word[0][0] == pytest.approx(0.1 + 0.4 * 9 / 22) and word[1][0] == pytest.approx(0.1 + 0.4 * 17 / 22)
    assert [line.text for line in text_search.photo_text(library.catalogue, pid)] == [
        "HORNBACH Baumarkt GmbH", "Summe 42,99 EUR", "Café",
    ]  # fmt: skip


def test_index_follows_deleted_and_changed_photos(library):
    a = add_photo(library, "a", "hornbach")
    b = add_photo(library, "b", "hornbach receipt")
    with library.catalogue.session() as s, s.begin():
        s.execute(delete(Photo).where(Photo.id == a))  # cascades to its lines and their index entries
        s.get(Photo, b).fingerprint = "new content"  # new content: the old text no longer applies
    assert names(library, "hornbach") == set()
    rows = sqlite3.connect(library.catalogue.path).execute("SELECT count(*) FROM ocr_lines").fetchone()
    assert rows == (0,)
    with library.catalogue.session() as s:
        assert s.scalar(select(OcrDone.photo_id).where(OcrDone.photo_id == b)) is None  # read again next pass
    conn = sqlite3.connect(library.catalogue.path)
    conn.execute("INSERT INTO ocr_fts (ocr_fts, rank) VALUES ('integrity-check', 1)")
    conn.close()


def test_an_index_out_of_step_is_rebuilt(library):
    add_photo(library, "a", "hornbach")
    conn = sqlite3.connect(library.catalogue.path)
    conn.execute("INSERT INTO ocr_fts (ocr_fts) VALUES ('delete-all')")  # as if the index were lost
    conn.commit()
    conn.close()
    assert names(library, "hornbach") == set()
    assert text_search.check_index(library.catalogue) is True
    assert names(library, "hornbach") == {"a"}
    assert text_search.check_index(library.catalogue) is False
