"""Behaviours of desktop_app/library/search.py that mutation testing (benchmarks/mutation_score.py)
found untested: each catalogue filter at its bounds, the text-in-photo candidates and their
ranking, ``within``/``without`` on the exact and the hnswlib path, the size at which a search
leaves the exact path, the cached count of embedded photos, a minimum score and date order.

A real catalogue whose vectors are chosen so that every score is known exactly (a query along
one axis, each photo's vector at a binary-fraction cosine to it), and the tiny real pack for the
model's name, key and size (its text tower runs in one test only).
"""

from __future__ import annotations

import math
import time

import numpy as np
import pytest
from PIL import Image
from sqlalchemy import event

from desktop_app.encoder import Encoder
from desktop_app.errors import PixfindError
from desktop_app.library import query, text_search
from desktop_app.library import search as search_module
from desktop_app.library.catalogue import Embedding, Folder, OcrDone, OcrLine, Photo
from desktop_app.library.decode import open_upright
from desktop_app.library.library_dir import Library
from desktop_app.library.ocr import TextLine
from desktop_app.library.search import Filters, SearchEngine, text_candidates, text_ranked
from tests.library_helpers import make_photo
from tests.vector_helpers import add_photos

OTHER_MODEL = "other@0123456789ab"
BOX = ((0.1, 0.2), (0.5, 0.2), (0.5, 0.3), (0.1, 0.3))
LONG_LINE = "HORNBACH Baumarkt GmbH Filiale Zürich Öffnungszeiten Montag bis Samstag"

# name: (folder, taken_at, file_time, make, model, (lat, lon) or None, place, score or None, text lines)
# The date a filter sees is taken_at, else file_time. Scores are binary fractions: exact in float32.
# "g" has a vector of another model only (a library half re-indexed after a model switch).
PHOTOS = {
    "a": ("trip", 1000.0, 5000.0, "Canon", "EOS R5", (47.4, 8.5), "Zürich", 0.875, [LONG_LINE]),
    "b": ("trip", None, 2000.0, "FUJIFILM", "X100V", None, None, 0.75, ["Hornbach"]),
    "c": ("home", 3000.0, 9000.0, "Canon", None, (49.6, 6.1), "Luxembourg", 0.625, ["receipt hornbach", "total 12"]),
    "d": ("home", 4000.0, 100.0, None, None, (0.0, 0.0), "", 0.5, []),
    "e": ("trip2", 1500.0, 100.0, "Sony", "A7", None, "Port_Louis", 0.375, ["Baumarkt"]),
    "g": ("home", 5000.0, 100.0, None, None, None, None, None, ["hornbach"]),
}
EMBEDDED = [n for n, row in PHOTOS.items() if row[7] is not None]  # best score first


@pytest.fixture(scope="module")
def encoder(tiny_pack) -> Encoder:
    return Encoder(tiny_pack, verify=False, lazy=True)


def _vector(score: float, axis: int, dim: int) -> np.ndarray:
    v = np.zeros(dim, np.float32)
    v[0], v[axis] = score, math.sqrt(1.0 - score * score)
    return v


def _build(directory, encoder: Encoder) -> tuple[Library, dict[str, int]]:
    """The photos of PHOTOS in a real catalogue, and their ids by name."""
    library = Library(directory)
    model = SearchEngine(library, encoder).model
    cat, ids, folders = library.catalogue, {}, {}
    with cat.session() as s, s.begin():
        for i, (name, (folder, taken, ftime, make, camera, gps, place, score, lines)) in enumerate(PHOTOS.items()):
            if folder not in folders:
                folders[folder] = Folder(path=f"/photos/{folder}", added_at=0.0)
                s.add(folders[folder])
                s.flush()
            photo = Photo(folder_id=folders[folder].id, path=f"/photos/{folder}/{name}.jpg", size=1, mtime_ns=0,
                          fingerprint=name, taken_at=taken, file_time=ftime, camera_make=make, camera_model=camera,
                          gps_lat=gps and gps[0], gps_lon=gps and gps[1], place=place, indexed_at=0.0)  # fmt: skip
            s.add(photo)
            s.flush()
            ids[name] = photo.id
            key, vector = (model, _vector(score, 1 + i, encoder.dim)) if score else (OTHER_MODEL, _vector(0.5, 1 + i, encoder.dim))
            s.add(Embedding(photo_id=photo.id, model=key, vector=vector.tobytes(), seq=cat.next_seq(s)))
            for text in lines:
                s.add(OcrLine(photo_id=photo.id, text=text, terms=text_search.terms_column(text),
                              box=TextLine(text, BOX, 0.9).box_json(), confidence=0.9))  # fmt: skip
            s.add(OcrDone(photo_id=photo.id, model="m", at=time.time()))
    return library, ids


@pytest.fixture(scope="module")
def shared(tmp_path_factory, encoder):
    library, ids = _build(tmp_path_factory.mktemp("search") / "lib", encoder)
    yield library, ids
    library.close()


@pytest.fixture
def lib(shared, encoder):
    """(library, a new engine, {name: photo id}) for the tests that only search the shared library."""
    library, ids = shared
    return library, SearchEngine(library, encoder), ids


@pytest.fixture
def own_lib(tmp_path, encoder):
    """The same, in a library of the test's own, which it may change."""
    library, ids = _build(tmp_path / "lib", encoder)
    yield library, SearchEngine(library, encoder), ids
    library.close()


QUERY = np.eye(1, 64, 0, dtype=np.float32)[0]  # the tiny pack's vectors have 64 dimensions


@pytest.fixture(params=["exact", "hnswlib"])
def path_taken(request, monkeypatch) -> str:
    if request.param == "hnswlib":
        monkeypatch.setattr(search_module, "EXACT_LIMIT", 0)  # as in a library of more than 20,000 photos
    return request.param


def _names(ids: dict[str, int], found: list[int]) -> list[str]:
    by_id = {v: k for k, v in ids.items()}
    return [by_id[i] for i in found]


def _ranked(lib, **kwargs) -> list[str]:
    library, engine, ids = lib
    found, scores = engine.ranked(QUERY, limit=kwargs.pop("limit", 10), **kwargs)
    expected = [PHOTOS[n][7] for n in _names(ids, found)]
    assert scores == pytest.approx(expected, abs=1e-6)  # each photo's own cosine, best first
    return _names(ids, found)


# --------------------------------------------------------------------------- filters


@pytest.mark.parametrize(
    "filters, expected",
    [
        (None, ["a", "b", "c", "d", "e"]),
        (Filters(), ["a", "b", "c", "d", "e"]),
        (Filters(folder="/photos/trip"), ["a", "b"]),  # not /photos/trip2
        (Filters(folder="/photos/trip/"), ["a", "b"]),
        (Filters(after=2000.0), ["b", "c", "d"]),  # from that moment on, by file time when EXIF has none
        (Filters(before=2000.0), ["a", "e"]),  # up to that moment, not at it
        (Filters(after=1000.0, before=3000.0), ["a", "b", "e"]),
        (Filters(camera="Canon"), ["a", "c"]),  # a make without a model still matches
        (Filters(camera="canon eos"), ["a"]),  # across make and model
        (Filters(camera="eos r"), ["a"]),
        (Filters(camera="x"), ["b"]),  # a photo without make or model matches no camera filter
        (Filters(camera="leica"), []),
        (Filters(has_gps=True), ["a", "c", "d"]),  # latitude 0 is a position
        (Filters(has_gps=False), ["b", "e"]),
        (Filters(place="ZÜR"), ["a"]),
        (Filters(place="LUX"), ["c"]),
        (Filters(place="x"), ["c"]),  # a place not looked up, or none near, matches no place filter
        (Filters(place="t_l"), ["e"]),  # '_' and '%' are the characters themselves, not LIKE wildcards
        (Filters(place="r_ch"), []),
        (Filters(place="z%h"), []),
        (Filters(folder="/photos/home", has_gps=True), ["c", "d"]),
    ],
)
def test_each_filter_keeps_exactly_its_photos_best_first(lib, path_taken, filters, expected):
    assert _ranked(lib, filters=filters) == expected


def test_filters_are_active_when_any_one_is_set():
    assert not Filters().active()
    for field, value in [("folder", "/p"), ("after", 0.0), ("before", 0.0), ("camera", "x"), ("has_gps", False), ("place", "x")]:
        assert Filters(**{field: value}).active(), field


# --------------------------------------------------------------------------- ranking by vector


def test_the_best_limit_photos_come_first_and_a_minimum_score_is_inclusive(lib, path_taken):
    assert _ranked(lib, limit=2) == ["a", "b"]
    assert _ranked(lib, limit=1) == ["a"]
    assert _ranked(lib, min_score=0.625) == ["a", "b", "c"]
    assert _ranked(lib, min_score=0.9) == []


def test_within_and_without_narrow_the_candidates(lib, path_taken):
    _, _, ids = lib
    # g, a photo with text but without a vector of this model, is a candidate that cannot be found
    assert _ranked(lib, within={ids["b"], ids["d"], ids["g"]}) == ["b", "d"]
    assert _ranked(lib, without={ids["a"], ids["c"]}) == ["b", "d", "e"]
    assert _ranked(lib, without={ids["a"], ids["c"]}, limit=2) == ["b", "d"]
    assert _ranked(lib, without={ids[n] for n in EMBEDDED}) == []
    assert _ranked(lib, within={ids["g"]}) == []
    assert _ranked(lib, within=set()) == []


def test_within_and_without_apply_together_with_the_filters(lib, path_taken):
    _, _, ids = lib
    assert _ranked(lib, filters=Filters(camera="canon"), within={ids["a"], ids["b"]}) == ["a"]
    assert _ranked(lib, filters=Filters(folder="/photos/trip"), without={ids["a"]}) == ["b"]
    assert _ranked(lib, filters=Filters(has_gps=True), within={ids["a"], ids["c"], ids["e"]}, without={ids["a"]}) == ["c"]
    assert _ranked(lib, filters=Filters(folder="/photos/trip2"), without={ids["e"]}) == []


def test_up_to_exact_limit_candidates_the_search_builds_no_vector_index(own_lib, monkeypatch):
    lib = own_lib
    library, engine, _ = lib
    marker = library.vectors_dir / f"{engine.model}.json"
    monkeypatch.setattr(search_module, "EXACT_LIMIT", len(EMBEDDED))
    assert _ranked(lib) == EMBEDDED and not marker.exists()
    # the candidates counted are the filtered photos with a vector of this model: c and d, not g
    monkeypatch.setattr(search_module, "EXACT_LIMIT", 2)
    assert _ranked(lib, filters=Filters(folder="/photos/home")) == ["c", "d"] and not marker.exists()
    monkeypatch.setattr(search_module, "EXACT_LIMIT", len(EMBEDDED) - 1)
    assert _ranked(lib) == EMBEDDED and marker.exists()  # built, and kept for the next search
    assert _ranked(lib, filters=Filters(folder="/photos/home")) == ["c", "d"]


def test_the_count_of_embedded_photos_is_this_models_and_follows_the_catalogue(own_lib):
    library, engine, _ = own_lib
    assert engine.embedded_count() == len(EMBEDDED)  # g's vector belongs to another model
    assert engine.embedded_count() == len(EMBEDDED)
    add_photos(library, 2, np.random.default_rng(0), engine.model, engine.encoder.dim)
    assert engine.embedded_count() == len(EMBEDDED) + 2
    assert len(_ranked_ids(engine)) == len(EMBEDDED) + 2
    add_photos(library, 1, np.random.default_rng(1), OTHER_MODEL, engine.encoder.dim)
    assert engine.embedded_count() == len(EMBEDDED) + 2


def test_the_count_is_read_again_only_after_the_catalogue_changed(own_lib):
    library, engine, _ = own_lib
    counted: list[str] = []

    def count(conn, cursor, statement, parameters, context, executemany):
        if "count(*)" in statement and "FROM embeddings" in statement:
            counted.append(statement)

    event.listen(library.catalogue.engine, "before_cursor_execute", count)
    try:
        assert engine.embedded_count() == engine.embedded_count() == len(EMBEDDED)
        assert len(counted) == 1  # the second call answered from the count kept
        add_photos(library, 1, np.random.default_rng(0), engine.model, engine.encoder.dim)
        assert engine.embedded_count() == engine.embedded_count() == len(EMBEDDED) + 1
        assert len(counted) == 2
    finally:
        event.remove(library.catalogue.engine, "before_cursor_execute", count)


def _ranked_ids(engine: SearchEngine) -> list[int]:
    return engine.ranked(QUERY, limit=100)[0]


def test_a_library_without_vectors_of_the_model_says_to_index_it(tmp_path, encoder):
    with Library(tmp_path / "lib") as library:
        add_photos(library, 3, np.random.default_rng(0), OTHER_MODEL, encoder.dim)
        engine = SearchEngine(library, encoder)
        assert engine.embedded_count() == 0
        with pytest.raises(PixfindError) as e:
            engine.ranked(QUERY)
        assert str(e.value) == "the library has no photos indexed with model 'tiny': run `pixfind index PATH` first"


# --------------------------------------------------------------------------- search with catalogue rows


def test_search_returns_ranked_rows_with_scores(lib, path_taken):
    _, engine, _ = lib
    hits = engine.search(QUERY, limit=3)
    assert [(h.rank, h.photo.path, h.score) for h in hits] == [
        (1, "/photos/trip/a.jpg", 0.875), (2, "/photos/trip/b.jpg", 0.75), (3, "/photos/home/c.jpg", 0.625),
    ]  # fmt: skip
    assert [h.photo.path for h in engine.search(QUERY, min_score=0.7)] == ["/photos/trip/a.jpg", "/photos/trip/b.jpg"]
    assert [h.photo.path for h in engine.search(QUERY, Filters(has_gps=False))] == ["/photos/trip/b.jpg", "/photos/trip2/e.jpg"]


def test_search_by_date_puts_the_newest_first(lib):
    _, engine, _ = lib
    hits = engine.search(QUERY, sort="date")
    # d 4000, c 3000, b 2000 (its file time: no EXIF date), e 1500, a 1000
    assert [h.photo.path.rsplit("/", 1)[1] for h in hits] == ["d.jpg", "c.jpg", "b.jpg", "e.jpg", "a.jpg"]
    assert [h.rank for h in hits] == [1, 2, 3, 4, 5]
    assert [h.score for h in hits] == [0.5, 0.625, 0.75, 0.375, 0.875]
    newest_good = engine.search(QUERY, min_score=0.6, sort="date")
    assert [h.photo.path.rsplit("/", 1)[1] for h in newest_good] == ["c.jpg", "b.jpg", "a.jpg"]


def test_an_unknown_sort_order_is_one_line_naming_the_choices(lib):
    _, engine, _ = lib
    with pytest.raises(PixfindError) as e:
        engine.search(QUERY, sort="name")
    assert str(e.value) == "unknown sort order 'name' (relevance or date)"


def test_a_query_vector_is_the_models_embedding_of_the_text_or_the_image(lib, tmp_path):
    _, engine, _ = lib
    vector = engine.query_vector(query.parse("a red car"))
    expected = engine.encoder.encode_texts(["a red car"])[0]
    np.testing.assert_allclose(vector, expected / np.linalg.norm(expected), atol=1e-5)
    # an example photo is read upright (its EXIF orientation applied), as the indexer reads it
    photo = make_photo(tmp_path / "example.jpg", seed=3, size=(48, 32), exif={0x0112: 6})
    vector = engine.query_vector(query.parse(images=[str(photo)]))
    expected = engine.encoder.encode_images([open_upright(str(photo))])[0]
    np.testing.assert_allclose(vector, expected / np.linalg.norm(expected), atol=1e-5)
    # the same photo read sideways: some component differs by ~3e-2 with the tiny model, 30x the tolerance
    assert not np.allclose(vector, engine.encoder.encode_images([Image.open(photo)])[0], atol=1e-3)


# --------------------------------------------------------------------------- words in the photos' text


def test_text_candidates_have_every_word_to_include_and_list_those_with_a_word_to_exclude(lib):
    library, _, ids = lib
    within, without = text_candidates(library.catalogue, ["hornbach"], ["receipt", "baumarkt"])
    assert within == {ids[n] for n in "abcg"} and without == {ids[n] for n in "ace"}
    within, without = text_candidates(library.catalogue, ["hornbach", "total"], [])
    assert within == {ids["c"]} and without == set()
    assert text_candidates(library.catalogue, [], ["total"]) == (None, {ids["c"]})


def test_a_words_only_search_ranks_by_how_well_the_text_matches(lib):
    library, _, ids = lib
    found, scores = text_ranked(library.catalogue, ["hornbach"], [])
    # bm25 favours the word alone on a short line over the same word among many (length
    # normalisation): b and g (a line of one word; equal, so the lower id first), then c, then a.
    assert _names(ids, found) == ["b", "g", "c", "a"]
    assert scores[0] == scores[1] > scores[2] > scores[3] > 0 and scores[0] < 1
    assert scores == pytest.approx([text_search.relevance(library.catalogue, ["hornbach"], [i])[i] for i in found])
    found, limited = text_ranked(library.catalogue, ["hornbach"], [], limit=2)
    assert _names(ids, found) == ["b", "g"] and limited == scores[:2]


def test_a_words_only_search_leaves_out_excluded_words_and_photos_outside_the_filters(lib):
    library, _, ids = lib
    cat = library.catalogue
    assert _names(ids, text_ranked(cat, ["hornbach"], ["receipt"])[0]) == ["b", "g", "a"]
    assert _names(ids, text_ranked(cat, ["hornbach"], [], Filters(folder="/photos/home"))[0]) == ["g", "c"]
    assert _names(ids, text_ranked(cat, ["hornbach"], ["total"], Filters(folder="/photos/home"))[0]) == ["g"]
    assert _names(ids, text_ranked(cat, ["hornbach"], [], Filters(has_gps=True))[0]) == ["c", "a"]
    assert text_ranked(cat, ["hornbach"], [], Filters(camera="leica")) == ([], [])
    assert text_ranked(cat, ["nowhere"], []) == ([], [])
    assert text_ranked(cat, ["hornbach"], ["hornbach"]) == ([], [])
