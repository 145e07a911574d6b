"""Behaviours of desktop_app/library/duplicates.py that mutation testing
(benchmarks/mutation_score.py) found untested: which copy of a picture is kept, that comparing
the library in chunks (exactly, or through the vector index above 20,000 photos) finds the same
pairs as comparing it at once, the order of the groups, when a group is certain, and copies found
from the files themselves when the thumbnail cache is gone."""

from __future__ import annotations

import os

import numpy as np
import pytest
from PIL import Image

from desktop_app.library.catalogue import Embedding, Folder, Photo
from desktop_app.library.duplicates import _pairs_exact, _pairs_index, find_groups, keep_rank
from desktop_app.library.library_dir import Library


def _photo(path: str, width=4000, height=3000, size=5_000_000, taken_at=None, file_time=1e9) -> Photo:
    return Photo(path=path, width=width, height=height, size=size, taken_at=taken_at, file_time=file_time)


def _kept_first(*photos: Photo) -> list[str]:
    return [p.path for p in sorted(photos, key=keep_rank)]


def test_the_copy_kept_is_the_largest_picture_first():
    # More pixels win over a better format and a bigger file: a downscaled PNG is not the original.
    assert _kept_first(_photo("/a/small.png", 2000, 1500, size=9_000_000), _photo("/a/big.jpg")) == ["/a/big.jpg", "/a/small.png"]


def test_at_the_same_size_raw_beats_lossless_beats_jpeg():
    got = _kept_first(_photo("/a/x.jpg", size=9_000_000), _photo("/a/x.png", size=1), _photo("/a/x.CR2", size=1))
    assert got == ["/a/x.CR2", "/a/x.png", "/a/x.jpg"]


def test_then_the_larger_file_then_the_older_photo_then_the_path():
    assert _kept_first(_photo("/a/1.jpg", size=100), _photo("/a/2.jpg", size=200)) == ["/a/2.jpg", "/a/1.jpg"]
    older, newer = _photo("/a/z.jpg", taken_at=1e9), _photo("/a/a.jpg", taken_at=2e9)
    assert _kept_first(newer, older) == ["/a/z.jpg", "/a/a.jpg"]
    # no EXIF date: the file's own time stands in for it
    assert _kept_first(_photo("/a/a.jpg", file_time=5e9), _photo("/a/z.jpg", file_time=4e9)) == ["/a/z.jpg", "/a/a.jpg"]
    assert _kept_first(_photo("/a/b.jpg"), _photo("/a/a.jpg")) == ["/a/a.jpg", "/a/b.jpg"]
    # a photo without known dimensions ranks after one with them
    assert _kept_first(_photo("/a/a.jpg", None, None), _photo("/a/b.jpg", 10, 10)) == ["/a/b.jpg", "/a/a.jpg"]


def test_pairs_are_the_same_whatever_the_chunk_size():
    rng = np.random.default_rng(0)
    base = rng.standard_normal((6, 8)).astype(np.float32)
    matrix = np.concatenate([base, base + 0.05 * rng.standard_normal((6, 8)).astype(np.float32)])
    matrix /= np.linalg.norm(matrix, axis=1, keepdims=True)
    labels = np.arange(100, 100 + len(matrix), dtype=np.int64)
    at_once = sorted(_pairs_exact(labels, matrix, 0.9))
    assert len(at_once) >= 6  # each photo and its near copy at least
    for chunk in (1, 5, 7):
        chunked = sorted(_pairs_exact(labels, matrix, 0.9, chunk=chunk))
        assert [(a, b) for a, b, _ in chunked] == [(a, b) for a, b, _ in at_once]
        np.testing.assert_allclose([s for *_, s in chunked], [s for *_, s in at_once], atol=1e-6)
    assert all(a < b and s >= 0.9 for a, b, s in at_once)


# --------------------------------------------------------------------------- groups in a real catalogue

MODEL, DIM = "m@dupes", 8


def _skimage(name: str, size: tuple[int, int]) -> Image.Image:
    import skimage.data

    return Image.fromarray(np.asarray(getattr(skimage.data, name)())[..., :3]).convert("RGB").resize(size)


def _unit(v: np.ndarray) -> np.ndarray:
    return (v / np.linalg.norm(v)).astype(np.float32)


@pytest.fixture
def catalogue(tmp_path):
    """Photos on disk with no thumbnail (a library whose thumbnail cache is gone) and hand-made
    vectors: every photo is 'the same' for the model (cosine >= 0.97), only the pictures decide.
    Copies of the cat (3, the largest picture first) and of the coffee (2), and a brick texture."""
    pytest.importorskip("skimage")
    files = {  # name: (picture, size, how far its vector leans from the common one)
        "cat.jpg": ("chelsea", (900, 600), 0.0), "cat-b.jpg": ("chelsea", (300, 200), 0.1), "cat-c.jpg": ("chelsea", (240, 160), 0.15),
        "b-coffee.jpg": ("coffee", (600, 400), 0.05), "a-coffee.jpg": ("coffee", (300, 200), 0.12),
        "brick.jpg": ("brick", (300, 300), 0.2),
    }
    rng = np.random.default_rng(0)
    common, lean = rng.standard_normal(DIM), rng.standard_normal(DIM)
    with Library(tmp_path / "lib") as lib:
        with lib.catalogue.session() as s, s.begin():
            folder = Folder(path=str(tmp_path), added_at=0.0)
            s.add(folder)
            s.flush()
            for i, (name, (picture, size, tilt)) in enumerate(files.items()):
                path = tmp_path / name
                _skimage(picture, size).save(path, quality=90)
                photo = Photo(folder_id=folder.id, path=str(path), size=path.stat().st_size, mtime_ns=0, fingerprint=name,
                              width=size[0], height=size[1], file_time=1e9, indexed_at=0.0)  # fmt: skip
                s.add(photo)
                s.flush()
                s.add(Embedding(photo_id=photo.id, model=MODEL, vector=_unit(common + tilt * lean).tobytes(), seq=i + 1))
            lib.catalogue.set_meta(s, "seq", str(len(files)))
        yield lib


def _groups(lib, **kwargs) -> list[list[str]]:
    return [[os.path.basename(m.photo.path) for m in g.members] for g in find_groups(lib, MODEL, DIM, **kwargs)]


def test_copies_are_found_from_the_files_when_thumbnails_are_missing_largest_group_first(catalogue):
    # largest group first; the best copy (most pixels) leads each group; the texture is in none
    assert _groups(catalogue, threshold=0.9) == [["cat.jpg", "cat-b.jpg", "cat-c.jpg"], ["b-coffee.jpg", "a-coffee.jpg"]]


def test_groups_of_one_size_are_ordered_by_their_best_copys_path(catalogue):
    with catalogue.catalogue.session() as s, s.begin():  # the cat's third copy has no vector for this model
        cat_c = s.query(Photo.id).filter(Photo.fingerprint == "cat-c.jpg").scalar()
        s.query(Embedding).filter(Embedding.photo_id == cat_c).delete()
    # (the cat's best copy has the most pixels of all, so it is looked at first: the order is the paths')
    assert _groups(catalogue, threshold=0.9) == [["b-coffee.jpg", "a-coffee.jpg"], ["cat.jpg", "cat-b.jpg"]]


def test_a_group_is_certain_only_when_every_copy_reaches_the_confident_similarity(catalogue):
    assert all(g.confident for g in find_groups(catalogue, MODEL, DIM, 0.9))  # identical pictures, sims above 0.9
    # the calibrated 'certain' level above the copies' similarities: found, but nothing pre-marked
    groups = find_groups(catalogue, MODEL, DIM, 0.9, confident_at=0.99999)
    assert len(groups) == 2 and not any(g.confident for g in groups)


def test_the_vector_index_path_finds_the_same_pairs_chunk_by_chunk(catalogue):
    with catalogue.catalogue.session() as s:
        rows = s.query(Embedding.photo_id, Embedding.vector).filter(Embedding.model == MODEL).all()
    labels = np.array([r[0] for r in rows], dtype=np.int64)
    matrix = np.stack([np.frombuffer(r[1], np.float32) for r in rows])
    vindex = catalogue.vector_index(MODEL, DIM)
    exact = sorted((a, b) for a, b, _ in _pairs_exact(labels, matrix, 0.9))
    assert len(exact) == len(labels) * (len(labels) - 1) // 2  # the model lets every pair through
    for chunk in (2, 4096):
        # each pair comes from both of its photos' neighbour lists: the same set, seen twice
        assert sorted({(a, b) for a, b, _ in _pairs_index(vindex, labels, matrix, 0.9, chunk=chunk)}) == exact
