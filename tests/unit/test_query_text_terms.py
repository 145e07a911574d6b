"""Words to find in the photos' text, in the one query language: "quoted words" and text:word."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from desktop_app.errors import PixfindError
from desktop_app.library import query
from desktop_app.library.query import Term
from tests.library_helpers import make_photo


def written(value: str, weight: float = 1.0) -> Term:
    return Term("written", value, weight)


@pytest.mark.parametrize(
    "text, terms",
    [
        ('"hornbach"', [written("hornbach")]),
        ("text:hornbach", [written("hornbach")]),
        ("TEXT:Hornbach", [written("Hornbach")]),
        ('text:"two words"', [written("two words")]),
        ("“typographic quotes”", [written("typographic quotes")]),
        ('"  spaced   out  "', [written("spaced out")]),
        ('"预算"', [written("预算")]),
        ('receipt "hornbach"', [written("hornbach"), Term("text", "receipt")]),
        ('"hornbach" receipt', [written("hornbach"), Term("text", "receipt")]),
        ('a cup of coffee "budget"', [written("budget"), Term("text", "a cup of coffee")]),
        ('"budget" "2024"', [written("budget"), written("2024")]),
        ('beach -"sale"', [written("sale", -1.0), Term("text", "beach")]),
        ("beach -text:sale", [written("sale", -1.0), Term("text", "beach")]),
        ('beach - "sale"', [Term("text", "beach"), written("sale", -1.0)]),
        ('beach not "sale"', [Term("text", "beach"), written("sale", -1.0)]),
        ('"not for sale" beach', [written("not for sale"), Term("text", "beach")]),  # quoted words stay words
        ('2:dog "bone"', [written("bone"), Term("text", "dog", 2.0)]),
        ('"hornbach', [written("hornbach")]),  # still being typed: the quote runs to the end
        ('cat ""', [Term("text", "cat")]),  # empty quotes look for nothing
        ("context:menu", [Term("text", "context:menu")]),  # only text: starts a term
    ],
)
def test_quoted_words_and_text_terms_look_in_the_photo(text, terms):
    assert query.parse(text) == terms


def test_a_query_of_excluded_words_only_has_no_positive_term():
    for text in ('-"sale"', 'not "sale"', "-text:sale"):
        with pytest.raises(PixfindError, match="at least one positive term"):
            query.parse(text)


@pytest.mark.parametrize("text", ['"!!!"', "text:---", '"…" beach'])
def test_a_term_without_letters_or_digits_is_refused_in_one_line(text):
    with pytest.raises(PixfindError, match="no letters or digits") as error:
        query.parse(text)
    assert "\n" not in str(error.value)


def test_a_photo_path_with_quotes_in_its_name_stays_an_example_image(tmp_path):
    photo = make_photo(tmp_path / 'the "best" one.jpg', seed=1)
    assert query.parse(str(photo)) == [Term("image", str(photo))]


def test_written_and_for_model_split_the_terms():
    terms = query.parse('receipt "hornbach" -"obi" + "baumarkt"')
    assert query.written(terms) == (["hornbach", "baumarkt"], ["obi"])
    assert query.for_model(terms) == [Term("text", "receipt")]


def test_text_in_the_photo_takes_no_part_in_the_vector_or_the_balance(tmp_path):
    a, b = np.eye(3, dtype=np.float32)[:2]
    terms = [Term("text", "x"), written("word"), Term("image", "y")]
    vector = query.combine(terms, lambda texts: np.stack([a] * len(texts)), lambda images: np.stack([b] * len(images)))
    np.testing.assert_allclose(vector, (a + b) / np.sqrt(2), rtol=1e-6)
    tilted = query.balance(terms, 0.75)
    assert [t.weight for t in tilted] == pytest.approx([0.5, 1.0, 1.5])  # the written term untouched


WORDS = st.text("abcxyz预算 ", min_size=1, max_size=12).filter(lambda w: w.strip())


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(st.booleans(), WORDS), min_size=1, max_size=5), st.sampled_from(["", "a beach", "dog"]))
def test_every_quoted_phrase_becomes_one_written_term(phrases, words):
    """Quoted phrases, negated or not, anywhere among plain words: each comes back once, in order,
    its sign kept, its spaces collapsed; the plain words go to the model."""
    text = " ".join(f'{"-" if negative else ""}"{phrase}"' for negative, phrase in phrases)
    text = f"{words} {text}" if words else text
    if not words and all(negative for negative, _ in phrases):
        with pytest.raises(PixfindError):
            query.parse(text)
        return
    terms = query.parse(text)
    assert [(t.value, t.weight) for t in terms if t.kind == "written"] == [
        (" ".join(phrase.split()), -1.0 if negative else 1.0) for negative, phrase in phrases
    ]
    assert [t.value for t in query.for_model(terms)] == ([words] if words else [])


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=120).map(lambda s: s.replace("\x00", "")))
def test_any_text_with_quotes_parses_or_fails_with_a_pixfind_error(text):
    text = text.replace("'", '"')  # more quotes than random text has
    try:
        terms = query.parse(text)
    except PixfindError as e:
        assert str(e) and "\n" not in str(e)
        return
    assert any(t.weight > 0 for t in terms)
    assert all(t.value and t.value == t.value.strip() for t in terms)
    assert all('"' not in t.value for t in terms if t.kind == "written")
