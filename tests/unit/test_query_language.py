"""The one query language of both front ends: parsed in desktop_app.library.query, tested here."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from desktop_app.errors import PixfindError
from desktop_app.library import query
from desktop_app.library.query import Term
from tests.library_helpers import make_photo


@pytest.mark.parametrize(
    "natural, symbolic",
    [
        ("beach not people", "beach - people"),
        ("beach without people", "beach - people"),
        ("beach but not people", "beach - people"),
        ("beach no people", "beach - people"),
        ("Beach NOT people", "Beach - people"),
        ("2:beach not 0.5:people + sunset", "2:beach - 0.5:people + sunset"),
        ("notre dame", "notre dame"),
        ("a knot", "a knot"),
    ],
)
def test_natural_negation_means_minus(natural, symbolic):
    assert query.parse(natural) == query.parse(symbolic)


@pytest.mark.parametrize("text", ["not a rocket", "no people", "without cars", "- cats"])
def test_a_leading_negation_leaves_no_positive_term(text):
    with pytest.raises(PixfindError, match="at least one positive term"):
        query.parse(text)


@pytest.mark.parametrize("weight", ["1000000000000000000000000000000000000000000", "9" * 39, "0", "0.0", "100.5"])
def test_weights_must_be_finite_and_at_most_100(weight):
    with pytest.raises(PixfindError, match="weight"):
        query.parse(f"{weight}:cat")


def test_weights_in_range_are_kept():
    assert query.parse("100:cat - .5:dog") == [Term("text", "cat", 100.0), Term("text", "dog", -0.5)]


def test_number_of_terms_and_length_are_capped():
    assert len(query.parse(" + ".join(["cat"] * query.MAX_TERMS))) == query.MAX_TERMS
    with pytest.raises(PixfindError, match=f"at most {query.MAX_TERMS}"):
        query.parse(" + ".join(["cat"] * (query.MAX_TERMS + 1)))
    with pytest.raises(PixfindError, match=f"at most {query.MAX_TERMS}"):
        query.parse("cat", add=["dog"] * query.MAX_TERMS)
    with pytest.raises(PixfindError, match="characters"):
        query.parse("a" * (query.MAX_QUERY_CHARS + 1))


@pytest.mark.parametrize("term", ["missing.jpg", "./holiday", "/no/such/place.png", "~/nothing-here.heic"])
def test_a_path_that_does_not_exist_is_refused_by_name(term):
    for args in ((f"cat + {term}",), (None, (), [term]), ("cat", (), (), [term])):
        with pytest.raises(PixfindError, match=f"{term}: no such image file"):
            query.parse(*args)


def test_words_with_a_slash_stay_words():
    assert query.parse("AC/DC concert") == [Term("text", "AC/DC concert")]


def test_images_by_path_and_a_file_name_with_a_minus(tmp_path):
    img = make_photo(tmp_path / "dog - not cat.jpg", seed=1)
    assert query.parse(str(img)) == [Term("image", str(img))]
    plain = make_photo(tmp_path / "dog.jpg", seed=2)
    assert query.parse(f"beach + 2:{plain} not people") == [
        Term("text", "beach"),
        Term("image", str(plain), 2.0),
        Term("text", "people", -1.0),
    ]


def test_balance_weighs_images_against_words():
    terms = [Term("text", "a", 1.0), Term("image", "b", 1.0), Term("text", "c", -1.0)]
    assert query.balance(terms, 0.5) == terms
    tilted = query.balance(terms, 0.75)
    assert [t.weight for t in tilted] == pytest.approx([0.5, 1.5, -0.5])
    assert min(abs(t.weight) for t in query.balance(terms, 0.0)) > 0  # clamped: neither side vanishes
    words_only = [Term("text", "a")]
    assert query.balance(words_only, 0.9) == words_only


def test_combine_refuses_a_non_finite_sum():
    a = np.ones(4, dtype=np.float32)
    with pytest.raises(PixfindError, match="too large"):
        query.combine([Term("text", "a", 1e39)], lambda t: np.stack([a]), None)


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=300))
def test_any_text_parses_or_fails_with_a_pixfind_error(text):
    try:
        terms = query.parse(text)
    except PixfindError as e:
        assert str(e)
        return
    assert 0 < len(terms) <= query.MAX_TERMS and any(t.weight > 0 for t in terms)
    assert all(math.isfinite(t.weight) and 0 < abs(t.weight) <= query.MAX_WEIGHT for t in terms)
    assert all(t.value == t.value.strip() and t.value for t in terms)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["+", "-", "not", "without", "but not"]), st.text("abcdefg", min_size=1, max_size=8)), max_size=6))
def test_negation_words_and_signs_agree(pairs):
    natural = "start " + " ".join(f"{op} {word}" for op, word in pairs)
    symbolic = "start " + " ".join(f"{'+' if op == '+' else '-'} {word}" for op, word in pairs)
    if any(w in ("no", "not", "without", "but") for _, w in pairs):
        return
    assert query.parse(natural) == query.parse(symbolic)
    assert [t.weight for t in query.parse(natural)] == [1.0] + [1.0 if op == "+" else -1.0 for op, _ in pairs]


def test_query_parsing(tmp_path):
    img = make_photo(tmp_path / "dog.jpg", seed=1)
    terms = query.parse(f"a beach + 2:{img} - 0.5:people")
    assert terms == [
        Term("text", "a beach"),
        Term("image", str(img), 2.0),
        Term("text", "people", -0.5),
    ]
    assert query.parse("rock-n-roll + x-ray") == [Term("text", "rock-n-roll"), Term("text", "x-ray")]
    assert query.parse(None, images=[str(img)], subtract=["cats"]) == [
        Term("image", str(img)),
        Term("text", "cats", -1.0),
    ]
    for bad in ("", "   ", "- cats"):
        with pytest.raises(PixfindError):
            query.parse(bad)
    with pytest.raises(PixfindError, match="no such image"):
        query.parse(None, images=[str(tmp_path / "missing.jpg")])


def test_combine_is_a_normalised_weighted_sum():
    a, b = np.eye(3, dtype=np.float32)[:2]
    vec = query.combine(
        [Term("text", "a", 2.0), Term("image", "b", -1.0)],
        lambda texts: np.stack([a]),
        lambda images: np.stack([b]),
    )
    np.testing.assert_allclose(vec, np.array([2, -1, 0]) / np.sqrt(5), rtol=1e-6)
    with pytest.raises(PixfindError, match="cancel"):
        query.combine([Term("text", "a", 1.0), Term("text", "a", -1.0)], lambda t: np.stack([a] * len(t)), None)
