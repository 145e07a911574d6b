"""A search ranks photo ids and scores, then reads the catalogue rows of the page it returns only.

Checked against an independent exact search over the stored vectors (read with sqlite3), through
the exact NumPy path and the hnswlib path, with filters, a minimum score, date order, paging and
the good-match cut-off. Real tiny pack, real photos, real catalogue.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import event

from desktop_app.library import search as search_module
from desktop_app.library.search import Filters
from desktop_app.services.library import LibraryService
from desktop_app.services.records import SearchRequest
from tests.library_helpers import index_json, make_photo

N = 14


@pytest.fixture
def photos(tmp_path, capsys, tiny_model, library_dir) -> Path:
    root = tmp_path / "photos"
    for i in range(N):
        make_photo(root / ("a" if i % 2 else "b") / f"p{i:02d}.jpg", seed=i, exif={0x8769: {0x9003: f"20{10 + i}:03:01 12:00:00"}})
    index_json(capsys, library_dir, root)
    return root


def _reliable(tiny_pack: Path, tmp_path: Path, library_dir: Path, photos: Path, capsys, threshold: float) -> str:
    """The tiny pack again (same weights, same scores) with a calibration that says its scores mean something."""
    from desktop_app import model_store

    pack = tmp_path / "cut-pack"
    shutil.copytree(tiny_pack, pack)
    data = json.loads((pack / "pack.json").read_text())
    data["calibration"] = {**data["calibration"], "match_threshold": threshold, "match_mean": threshold + 0.05,
                           "non_match_mean": threshold - 0.05, "match_reliable": True, "match_auc": 0.9}  # fmt: skip
    data["name"] = "cut"
    (pack / "pack.json").write_text(json.dumps(data))
    model_store.install(pack, "cut")
    index_json(capsys, library_dir, photos, extra=("--model", "cut"))
    return "cut"


def _exact(library_dir: Path, service: LibraryService, vector: np.ndarray, folder: str | None = None) -> list[tuple[str, float]]:
    """(path, score) of every photo, best first, computed here from the catalogue's raw rows."""
    db = sqlite3.connect(library_dir / "catalogue.db")
    rows = db.execute(
        "SELECT p.path, e.vector FROM embeddings e JOIN photos p ON p.id = e.photo_id WHERE e.model = ?", (service.model,)
    ).fetchall()
    db.close()
    out = [(os.fsdecode(path), float(np.frombuffer(blob, np.float32) @ vector)) for path, blob in rows]
    if folder:
        out = [(p, s) for p, s in out if p.startswith(folder + os.sep)]
    return sorted(out, key=lambda r: -r[1])


def _pairs(result) -> list[tuple[str, float]]:
    return [(it.path, it.score) for it in result.items]


@pytest.fixture(params=["exact", "hnswlib"])
def path_taken(request, monkeypatch) -> str:
    if request.param == "hnswlib":
        monkeypatch.setattr(search_module, "EXACT_LIMIT", 0)  # every search through the vector index
    return request.param


def test_pages_filters_and_order_match_an_exact_search(photos, library_dir, path_taken):
    with LibraryService(library_dir) as service:
        service.load_model("tiny")
        vector = service.query_vector(SearchRequest("a red car"))
        truth = _exact(library_dir, service, vector)
        full = service.search(SearchRequest("a red car"))
        assert [p for p, _ in _pairs(full)] == [p for p, _ in truth] and full.complete
        assert [s for _, s in _pairs(full)] == pytest.approx([s for _, s in truth], abs=1e-5)
        for limit in (1, 5, N - 1):  # every page is the head of the full list, and says more follow
            page = service.search(SearchRequest("a red car"), limit)
            assert _pairs(page) == _pairs(full)[:limit] and not page.complete

        folder = str(photos / "a")
        only_a = service.search(SearchRequest("a red car", filters=Filters(folder=folder)))
        assert [p for p, _ in _pairs(only_a)] == [p for p, _ in _exact(library_dir, service, vector, folder)]

        floor = (truth[4][1] + truth[5][1]) / 2
        above = service.search(SearchRequest("a red car", min_score=floor))
        assert [p for p, _ in _pairs(above)] == [p for p, s in truth if s >= floor]

        by_date = service.search(SearchRequest("a red car", sort="date"), 6)
        assert {it.path for it in by_date.items} == {p for p, _ in truth[:6]}  # the query's best six, newest first
        assert [it.date for it in by_date.items] == sorted((it.date for it in by_date.items), reverse=True)


def test_the_cut_off_looks_at_every_score_but_only_the_page_is_read(photos, tiny_pack, tmp_path, library_dir, capsys, path_taken):
    with LibraryService(library_dir) as service:
        service.load_model("tiny")
        scores = [it.score for it in service.search(SearchRequest("a red car")).items]
    name = _reliable(tiny_pack, tmp_path, library_dir, photos, capsys, (scores[3] + scores[4]) / 2)

    with LibraryService(library_dir) as service:
        service.load_model(name)
        full = service.search(SearchRequest("a red car"))
        assert full.cutoff is not None and full.good == sum(1 for s in scores if s >= full.cutoff)

        loaded: list[int] = []  # photo ids bound into each statement that reads whole photo rows

        def count(conn, cursor, statement, parameters, context, executemany):
            if "photos.path" in statement and "photos.thumbnail" in statement:
                listed = [json.loads(p) for p in parameters if isinstance(p, str) and p.startswith("[")]
                loaded.append(sum(1 for p in parameters if isinstance(p, int)) + sum(len(ids) for ids in listed))

        event.listen(service.library.catalogue.engine, "before_cursor_execute", count)
        page = service.search(SearchRequest("a red car"), 3)
        event.remove(service.library.catalogue.engine, "before_cursor_execute", count)
        # the cut-off of the page is the full list's, from all the scores, while the rows read are the page's
        assert page.cutoff == pytest.approx(full.cutoff) and page.good == min(3, full.good)
        assert _pairs(page) == _pairs(full)[:3] and not page.complete
        assert loaded and max(loaded) <= 3, loaded

        by_date = service.search(SearchRequest("a red car", sort="date"))
        good, weak = by_date.items[: by_date.good], by_date.items[by_date.good :]
        assert by_date.good == full.good and {it.path for it in good} == {it.path for it in full.items[: full.good]}
        assert [it.date for it in good] == sorted((it.date for it in good), reverse=True)
        assert [it.date for it in weak] == sorted((it.date for it in weak), reverse=True)


def test_one_service_sees_photos_added_and_removed(photos, tmp_path, library_dir):
    """The window keeps one service open while indexing: its searches follow the catalogue."""
    more = tmp_path / "more"
    for i in range(3):
        make_photo(more / f"m{i}.jpg", seed=100 + i)
    with LibraryService(library_dir) as service:
        service.load_model("tiny")
        assert len(service.search(SearchRequest("a photo")).items) == N
        service.index([str(more)])
        assert len(service.search(SearchRequest("a photo")).items) == N + 3
        service.remove_folder(str(more))
        assert len(service.search(SearchRequest("a photo")).items) == N


def test_rows_of_more_ids_than_sqlite_binds_in_one_statement_in_the_given_order(photos, library_dir):
    """A page's rows are read with the ids as one parameter: any number of them (SQLite binds at most
    32,766 variables), in the ranking's order, ids no longer catalogued left out."""
    from desktop_app.services import photos as photo_rows

    with LibraryService(library_dir) as service:
        catalogue = service.library.catalogue
        with catalogue.reader() as reader:
            real = [row[0] for row in reader.exec_driver_sql("SELECT id FROM photos").all()]
        gone = list(range(max(real) + 1, max(real) + 40_001))
        ranking = gone[:20_000] + real[::-1] + gone[20_000:]
        statements: list[str] = []
        event.listen(catalogue.engine, "before_cursor_execute", lambda *a: statements.append(a[2]))
        with catalogue.reader() as reader:
            items = photo_rows.items(reader, [(pid, 1.0 / (i + 1)) for i, pid in enumerate(ranking)])
        assert [it.id for it in items] == real[::-1] and len(statements) == 1
        assert all(os.path.isfile(it.path) and isinstance(it.path, str) for it in items)
