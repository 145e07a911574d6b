"""Finding photos by the text read in them: SQLite FTS5 over the OCR lines.

The index (``ocr_fts``, schema step 4) tokenizes with unicode61: case and diacritics folded
(``remove_diacritics 2``: "cafe" finds "Café"), a prefix index for partial words ("horn"
finds "Hornbach"). unicode61 takes a run of CJK characters, which has no spaces between
words, for one token; so lines are indexed with every CJK character spaced apart (the
``terms`` column) and a CJK word is searched as the phrase of its characters: "预算"
finds "本月预算表". Both sides go through NFKC, so full-width letters match plain ones.

A search term is a word or a quoted phrase; its words must follow each other on one line,
the last may be the start of a longer word. Several terms must all occur in the photo, on
any of its lines.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from sqlalchemy import text as sql

from ..errors import PixfindError
from .catalogue import Catalogue
from .ocr import TextLine

# Scripts written without spaces between words: Han (with its extensions and compatibility
# ideographs), kana, Hangul syllables, CJK punctuation and full-width forms.
_CJK = re.compile(
    "([\u3000-\u303f\u3040-\u30ff\u31f0-\u31ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af"
    "\uf900-\ufaff\uff66-\uff9f\U00020000-\U0003134f])"
)
# What unicode61 calls a token character: letters, digits and marks.
_WORD = re.compile(r"[^\W_]+")


def index_terms(text: str) -> str:
    """The line as the full-text index sees it: NFKC, every CJK character a token of its own."""
    return _CJK.sub(r" \1 ", unicodedata.normalize("NFKC", text))


def terms_column(text: str) -> str | None:
    """The value of ocr_lines.terms: index_terms(text), or None when that is the text itself."""
    terms = index_terms(text)
    return None if terms == text else terms


def _tokens(term: str) -> list[str]:
    return _WORD.findall(index_terms(term))


def match_expression(term: str) -> str:
    """The FTS5 query for one search term: its tokens as one phrase, the last one as a prefix.
    Every token is quoted, so nothing the user types is read as FTS5 syntax."""
    tokens = _tokens(term)
    if not tokens:
        raise PixfindError(f"{term!r}: no letters or digits to look for in the photos' text")
    return '"' + " ".join(t.replace('"', '""') for t in tokens) + '"*'


@dataclass(frozen=True)
class LineMatch:
    photo_id: int
    line_id: int
    text: str
    box: tuple[tuple[float, float], ...]  # four corners, fractions of the upright photo's width and height
    confidence: float
    spans: tuple[tuple[int, int], ...]  # [start, end) character ranges of the matched words in text

    def word_boxes(self) -> list[tuple[tuple[float, float], ...]]:
        """The part of the line's box under each matched span, for highlighting."""
        return [sub_box(self.box, len(self.text), start, end) for start, end in self.spans]


def _fold(char: str) -> str:
    decomposed = unicodedata.normalize("NFKD", char)
    return "".join(c for c in decomposed if not unicodedata.combining(c)).casefold()


def _folded(text: str) -> tuple[str, list[int]]:
    """The text case- and diacritic-folded, and for each folded character the index of its source."""
    out, where = [], []
    for i, char in enumerate(text):
        piece = _fold(char)
        out.append(piece)
        where += [i] * len(piece)
    return "".join(out), where


def spans(text: str, terms: Sequence[str]) -> tuple[tuple[int, int], ...]:
    """Where the words of the terms occur in a line: each at the start of a word (anywhere for
    CJK characters); the last word of a term extends to the end of the word it begins."""
    folded, where = _folded(text)
    found: set[tuple[int, int]] = set()
    for term in terms:
        tokens = [_fold_token(t) for t in _tokens(term)]
        for n, token in enumerate(tokens):
            last, cjk = n == len(tokens) - 1, bool(_CJK.fullmatch(token))
            for m in re.finditer(re.escape(token), folded):
                start, end = m.start(), m.end()
                if not cjk and start > 0 and folded[start - 1].isalnum():
                    continue
                if not cjk and not last and end < len(folded) and folded[end].isalnum():
                    continue
                while not cjk and last and end < len(folded) and folded[end].isalnum() and not _CJK.match(folded[end]):
                    end += 1
                found.add((where[start], where[end - 1] + 1))
    merged: list[tuple[int, int]] = []
    for start, end in sorted(found):  # overlapping or touching ranges (a CJK word's characters) as one
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(end, merged[-1][1]))
        else:
            merged.append((start, end))
    return tuple(merged)


def _fold_token(token: str) -> str:
    return "".join(_fold(c) for c in token)


def sub_box(box: Sequence[tuple[float, float]], length: int, start: int, end: int) -> tuple[tuple[float, float], ...]:
    """The part of a line's box (corners clockwise from top left) under characters [start, end),
    assuming characters of equal width: good enough to mark a word."""
    if length <= 0:
        return tuple(box)
    a, b = start / length, end / length
    (x0, y0), (x1, y1), (x2, y2), (x3, y3) = box[:4]

    def along(p, q, t):
        return (p[0] + (q[0] - p[0]) * t, p[1] + (q[1] - p[1]) * t)

    top_a, top_b = along((x0, y0), (x1, y1), a), along((x0, y0), (x1, y1), b)
    bottom_a, bottom_b = along((x3, y3), (x2, y2), a), along((x3, y3), (x2, y2), b)
    return (top_a, top_b, bottom_b, bottom_a)


def _lines_matching(s, term: str, photo_ids: Iterable[int] | None = None):
    query = (
        "SELECT l.id, l.photo_id, l.text, l.box, l.confidence FROM ocr_fts JOIN ocr_lines l ON l.id = ocr_fts.rowid "
        "WHERE ocr_fts MATCH :q"
    )
    params: dict = {"q": match_expression(term)}
    if photo_ids is not None:
        ids = sorted(set(photo_ids))
        if not ids:
            return []
        query += f" AND l.photo_id IN ({','.join(str(int(i)) for i in ids)})"
    return s.execute(sql(query), params).all()


def photo_ids_matching(catalogue: Catalogue, terms: Sequence[str], within: Iterable[int] | None = None) -> set[int]:
    """Ids of the photos whose text contains every term (each on any of its lines), optionally
    only among ``within``."""
    if not terms:
        raise ValueError("no terms to look for")
    found: set[int] | None = None if within is None else set(within)
    with catalogue.session() as s:
        for term in sorted(terms, key=lambda t: -len(t)):  # the longest term is usually the rarest
            expression = match_expression(term)
            query = "SELECT DISTINCT l.photo_id FROM ocr_fts JOIN ocr_lines l ON l.id = ocr_fts.rowid WHERE ocr_fts MATCH :q"
            ids = set(s.scalars(sql(query), {"q": expression}))
            found = ids if found is None else found & ids
            if not found:
                return set()
    return found or set()


def relevance(catalogue: Catalogue, terms: Sequence[str], photo_ids: Iterable[int]) -> dict[int, float]:
    """How well each of these photos' text matches the terms, in (0, 1), higher is better: FTS5's
    bm25 of the photo's best line for each term, summed over the terms, as r / (1 + r). bm25 puts
    a word that stands out (a sign, a label, a short line) before one lost in a page of text.
    Photos without a match score 0."""
    ids = sorted(set(photo_ids))
    total = dict.fromkeys(ids, 0.0)
    if not ids:
        return total
    with catalogue.session() as s:
        for term in terms:
            rows = s.execute(  # per line: FTS5 refuses bm25() inside an aggregate
                sql(
                    "SELECT l.photo_id, bm25(ocr_fts) FROM ocr_fts JOIN ocr_lines l ON l.id = ocr_fts.rowid "
                    f"WHERE ocr_fts MATCH :q AND l.photo_id IN ({','.join(str(int(i)) for i in ids)})"
                ),
                {"q": match_expression(term)},
            )
            best: dict[int, float] = {}
            for photo_id, score in rows:  # bm25() is negative, lower is better
                best[photo_id] = max(best.get(photo_id, 0.0), -float(score))
            for photo_id, score in best.items():
                total[photo_id] += score
    return {pid: r / (1.0 + r) for pid, r in total.items()}


def matched_lines(catalogue: Catalogue, terms: Sequence[str], photo_ids: Iterable[int]) -> dict[int, list[LineMatch]]:
    """For each of the given photos, its lines matching any of the terms, with the matched words
    marked: what a result list shows under a photo and draws over it."""
    ids = list(photo_ids)
    result: dict[int, dict[int, LineMatch]] = {pid: {} for pid in ids}
    with catalogue.session() as s:
        for term in terms:
            for line_id, photo_id, text, box, confidence in _lines_matching(s, term, ids):
                if line_id in result[photo_id]:
                    continue
                result[photo_id][line_id] = LineMatch(
                    photo_id, line_id, text, TextLine.box_from_json(box), confidence, spans(text, terms)
                )
    return {pid: sorted(lines.values(), key=lambda m: m.line_id) for pid, lines in result.items()}


def find(catalogue: Catalogue, terms: Sequence[str], limit: int | None = None) -> dict[int, list[LineMatch]]:
    """Photos whose text contains every term, with their matching lines (at most ``limit``
    photos, lowest ids first)."""
    ids = sorted(photo_ids_matching(catalogue, terms))
    return matched_lines(catalogue, terms, ids[:limit] if limit is not None else ids)


def photo_text(catalogue: Catalogue, photo_id: int) -> list[TextLine]:
    """Every line read in one photo, in reading order (top to bottom, then left to right)."""
    with catalogue.session() as s:
        rows = s.execute(
            sql("SELECT text, box, confidence FROM ocr_lines WHERE photo_id = :p ORDER BY id"), {"p": photo_id}
        ).all()
    lines = [TextLine(text, TextLine.box_from_json(box), confidence) for text, box, confidence in rows]
    return sorted(lines, key=lambda line: (round(min(y for _, y in line.box), 2), min(x for x, _ in line.box)))


def check_index(catalogue: Catalogue) -> bool:
    """Rebuild the full-text index when it no longer matches the lines (damage, a lost table
    recreated empty); True when it was rebuilt. Cheap: compares two counts."""
    with catalogue.session() as s, s.begin():
        lines = s.scalar(sql("SELECT count(*) FROM ocr_lines"))
        indexed = s.scalar(sql("SELECT count(*) FROM ocr_fts_docsize"))
        if lines == indexed:
            return False
        s.execute(sql("INSERT INTO ocr_fts (ocr_fts) VALUES ('rebuild')"))
        return True
