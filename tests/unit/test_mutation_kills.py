"""Tests that kill mutants which survived `benchmarks/mutation_score.py` and change real behaviour.

Each names the behaviour; the mutants left alive are argued in the issue's closing note
(equivalent ones, and error-message spellings that a substring match rightly does not pin).
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from desktop_app.errors import PixfindError
from desktop_app.library import query
from desktop_app.library.query import MAX_QUERY_CHARS, Term

# --------------------------------------------------------------------------- query.py


def test_a_query_of_exactly_the_maximum_length_is_accepted():
    assert query.parse("a" * MAX_QUERY_CHARS) == [Term("text", "a" * MAX_QUERY_CHARS, 1.0)]
    with pytest.raises(PixfindError, match=f"at most {MAX_QUERY_CHARS}"):
        query.parse("a" * (MAX_QUERY_CHARS + 1))


@pytest.mark.parametrize("where", ["query", "images", "add", "subtract"])
def test_a_nul_character_anywhere_is_refused(where):
    kwargs = {"query": "cats"} if where != "query" else {"query": "ca\x00ts"}
    if where != "query":
        kwargs[where] = ["x\x00y"]
    with pytest.raises(PixfindError, match="cannot contain a NUL character"):
        query.parse(**kwargs)


def test_added_and_subtracted_terms_are_words_of_weight_one():
    assert query.parse("beach", add=["sunset"], subtract=["people"]) == [
        Term("text", "beach", 1.0), Term("text", "sunset", 1.0), Term("text", "people", -1.0)]


def test_an_example_image_is_an_image_whatever_its_name(tmp_path, monkeypatch):
    """--image PATH is an image even when the name has no photo extension and no path prefix."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "holiday").write_bytes(b"\xff\xd8 not decoded here")
    assert query.parse(images=["holiday"]) == [Term("image", "holiday", 1.0)]
    assert query.parse("holiday") == [Term("text", "holiday", 1.0)]  # as a word it stays a word


@pytest.mark.parametrize("text", ["C:/photos/a", "d:\\photos\\b", "C:/"])
def test_a_windows_drive_path_is_an_image_term(text):
    with pytest.raises(PixfindError, match="no such image file"):
        query.parse(text)


@pytest.mark.parametrize("text", ["x:", "C:", "re: sunset", "a:b", "C:x", "C:Xylophone"])
def test_a_colon_that_is_not_a_drive_path_stays_words(text):
    assert query.parse(text) == [Term("text", text, 1.0)]


def test_messages_name_the_problem(tmp_path):
    with pytest.raises(PixfindError, match=r"^empty query term in "):
        query.parse("cats + 2:")
    with pytest.raises(PixfindError, match=r": not an image file$"):
        query.parse(str(tmp_path) + "/")
    with pytest.raises(PixfindError, match=r"^nothing to search for: give a text query or --image PATH$"):
        query.parse("   ")


def test_a_long_bad_weight_is_shown_shortened():
    with pytest.raises(PixfindError) as e:
        query.parse("1234567890123456:cats")
    assert str(e.value).startswith("weight 123456789012… in ")
    with pytest.raises(PixfindError) as e:
        query.parse("123456789012:cats")  # 12 characters: shown whole
    assert str(e.value).startswith("weight 123456789012 in ")


def test_balance_clamps_both_extremes_so_neither_side_vanishes():
    terms = [Term("text", "beach", 1.0), Term("image", "/x.jpg", 1.0)]
    only_images = query.balance(terms, 1.0)
    assert only_images[0].weight == pytest.approx(2 * 0.02) and only_images[1].weight == pytest.approx(2 * 0.98)
    only_words = query.balance(terms, 0.0)
    assert only_words[0].weight == pytest.approx(2 * 0.98) and only_words[1].weight == pytest.approx(2 * 0.02)


def _axis(i: int, dim: int = 4) -> np.ndarray:
    v = np.zeros(dim, np.float32)
    v[i] = 1
    return v


def test_combine_embeds_the_image_terms_paths():
    seen = []

    def embed_images(paths):
        seen.append(list(paths))
        return np.stack([_axis(1) for _ in paths])

    terms = [Term("text", "beach", 1.0), Term("image", "/a.jpg", 2.0)]
    vector = query.combine(terms, lambda texts: np.stack([_axis(0) for _ in texts]), embed_images)
    assert seen == [["/a.jpg"]]
    np.testing.assert_allclose(vector, np.array([1, 2, 0, 0]) / np.sqrt(5), rtol=1e-6)


def test_combine_accepts_a_short_sum_and_refuses_a_vanishing_one():
    embed = {"a": _axis(0), "b": 0.5 * _axis(0) + np.sqrt(0.75) * _axis(1)}
    texts = lambda values: np.stack([embed[v] for v in values])  # noqa: E731
    short = query.combine([Term("text", "a", 1.0), Term("text", "b", -1.0)], texts, None)  # |a - b| = 1
    assert np.linalg.norm(short) == pytest.approx(1.0, abs=1e-6)
    small = query.combine([Term("text", "a", 0.5), Term("text", "b", -0.5)], texts, None)  # sum has norm 0.5 before normalising
    assert np.linalg.norm(small) == pytest.approx(1.0, abs=1e-6)
    with pytest.raises(PixfindError, match="cancel each other out"):
        query.combine([Term("text", "a", 1.0), Term("text", "a", -1.0)], texts, None)


def test_combine_with_overflowing_weights_is_a_clean_error_without_numpy_warnings():
    huge = lambda values: np.full((len(values), 4), 3e38, np.float32)  # noqa: E731
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(PixfindError, match="too large to combine"):
            query.combine([Term("text", "a", 100.0), Term("text", "b", 100.0)], huge, None)



# --------------------------------------------------------------------------- evaluation/metrics.py


def _metrics():
    from model_training.evaluation import metrics

    return metrics


def test_knn_counts_every_query_whatever_the_chunk():
    metrics = _metrics()
    gallery = np.eye(3, dtype=np.float32)
    gallery_labels = [0, 1, 2]
    query = np.array([[1, 0, 0], [0, 1, 0], [0, 0.9, 0.1]], np.float32)
    truth = [0, 1, 2]  # the third query's nearest is class 1: wrong
    for chunk in (1, 2, 1024):
        got = metrics.knn_accuracy(query, truth, gallery, gallery_labels, k=1, chunk=chunk)
        assert got == pytest.approx(2 / 3), chunk


def test_knn_votes_over_21_neighbours_by_default():
    """10 nearest of class 0, the next 11 of class 1, then more of class 0: with nearly equal weights (a high
    temperature) the 21 nearest elect class 1; a 22nd neighbour would hand the vote to class 0."""
    metrics = _metrics()
    sims = [0.9] * 10 + [0.8] * 11 + [0.7] * 5
    labels = [0] * 10 + [1] * 11 + [0] * 5
    gallery = np.array([[s, np.sqrt(1 - s * s)] for s in sims], np.float32)
    query = np.array([[1.0, 0.0]], np.float32)
    assert metrics.knn_accuracy(query, [1], gallery, labels, temperature=1000.0) == 1.0


def test_zero_shot_scores_each_image_against_its_own_label():
    metrics = _metrics()
    classifier = np.eye(2, dtype=np.float32)
    images = np.array([[0.1, 0.9], [0.8, 0.2], [0.3, 0.7]], np.float32)
    assert metrics.zero_shot_accuracy(images, [1, 0, 0], classifier) == pytest.approx(2 / 3)
