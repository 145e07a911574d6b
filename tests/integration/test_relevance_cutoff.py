"""The good-match cut-off: calibrated per model, refined per query; good matches first, also by date;
the CLI hides the weaker ones unless --all. Real packs (tiny, and the starter for realism), real photos."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from desktop_app import calibration
from desktop_app.services import library as library_service
from desktop_app.services.library import CUTOFF_SAMPLE, LibraryService
from desktop_app.services.records import SearchRequest
from tests.library_helpers import index_json, make_photo, run_cli

SAMPLES = Path(__file__).resolve().parents[2] / "desktop_app" / "resources" / "sample-photos"
RELIABLE = {"match_auc": 0.9, "match_reliable": True, "method": calibration.METHOD, "version": 1}


def test_query_cutoff_moves_to_the_gap_within_the_window():
    cal = {**RELIABLE, "match_threshold": 0.30, "match_mean": 0.35, "non_match_mean": 0.25}
    # the window is 0.26..0.34: the drop 0.44 -> 0.31 crosses it, the cut goes to its edge
    assert calibration.query_cutoff([0.45, 0.44, 0.31, 0.30, 0.20], cal) == pytest.approx(0.34)
    # a drop inside the window: its middle
    assert calibration.query_cutoff([0.34, 0.33, 0.28, 0.27], cal) == pytest.approx(0.305)
    # nothing near the threshold: the calibrated threshold itself, so no photo is a good match
    assert calibration.query_cutoff([0.2, 0.19, 0.1], cal) == pytest.approx(0.30)
    # a model whose calibration shows it cannot tell matches apart gets no cut-off at all
    assert calibration.query_cutoff([0.45, 0.2], {**cal, "match_auc": 0.5}) is None
    assert calibration.query_cutoff([0.45, 0.2], None) is None
    # a wording that scores every photo of the library higher ("a photo of ...") lifts the
    # threshold by as much: without the baseline all four would count as good
    lifted = [0.80, 0.61, 0.58, 0.57]
    assert calibration.query_cutoff(lifted, cal) == pytest.approx(0.30)
    assert calibration.query_cutoff(lifted, cal, baseline=0.55) == pytest.approx(0.64)
    # a query that scores the library lower than usual never lowers the bar
    assert calibration.query_cutoff([0.2, 0.19, 0.1], cal, baseline=0.05) == pytest.approx(0.30)
    assert calibration.score_range(cal | {"score_low": 0.1, "score_high": 0.5}) == (0.06, 0.54)


def _install_with(tiny_pack: Path, tmp_path: Path, name: str, cal: dict) -> str:
    from desktop_app import model_store

    pack = tmp_path / name
    shutil.copytree(tiny_pack, pack)
    data = json.loads((pack / "pack.json").read_text())
    data["calibration"] = {**data["calibration"], **cal, "match_reliable": True, "match_auc": 0.9}
    data["name"] = name
    (pack / "pack.json").write_text(json.dumps(data))
    model_store.install(pack, name)
    return name


@pytest.fixture
def photos(tmp_path, capsys, tiny_model, library_dir):
    root = tmp_path / "photos"
    for i in range(8):
        make_photo(root / f"p{i}.jpg", seed=i, exif={0x8769: {0x9003: f"20{10 + i}:01:01 12:00:00"}})
    index_json(capsys, library_dir, root)
    return root


def _record_fetches(monkeypatch, engine) -> list[int]:
    """The number of photos each vector search of ``engine`` asks for, in order."""
    fetched: list[int] = []
    ranked = engine.ranked

    def recording(vector, filters=None, limit=20, *args):
        fetched.append(limit)
        return ranked(vector, filters, limit, *args)

    monkeypatch.setattr(engine, "ranked", recording)
    return fetched


def test_good_matches_first_by_score_or_date_and_the_cli_cut(photos, tiny_pack, tmp_path, library_dir, capsys, monkeypatch):
    with LibraryService(library_dir) as service:
        service.load_model("tiny")
        plain = service.search(SearchRequest("a photo"))
        assert plain.cutoff is None and plain.good == len(plain.items) == 8  # the random tiny model: no cut-off
        scores = [it.score for it in plain.items]
    # A calibration whose window holds the largest drop among this query's scores (the real scores of the pack)
    drops = [a - b for a, b in zip(scores, scores[1:])]
    k = max(range(1, 7), key=lambda i: drops[i])  # a cut after at least 2 photos
    mid = (scores[k] + scores[k + 1]) / 2
    sep = 2 * (scores[0] - scores[-1])
    # non-matching pairs scored like this query's typical photo (its median): no lift of the threshold
    non_match = float(np.median(scores))
    name = _install_with(tiny_pack, tmp_path, "cut", {"match_threshold": mid, "match_mean": non_match + sep, "non_match_mean": non_match})
    index_json(capsys, library_dir, photos, extra=("--model", name))  # the same weights: the same scores
    with LibraryService(library_dir) as service:
        service.load_model(name)
        result = service.search(SearchRequest("a photo"))
        assert result.good == k + 1 and result.cutoff == pytest.approx(mid, abs=1e-6)
        assert [it.score >= result.cutoff for it in result.items] == [True] * result.good + [False] * (8 - result.good)
        # A page ending above the cut-off's window (the window is wide here): the cut-off is still the
        # one of the whole list, found in the scores past the page. The library sample (here the whole
        # library) foresaw it: the cut-off's sample is fetched at once.
        fetched = _record_fetches(monkeypatch, service.engine)
        for limit in (1, k, k + 1):
            fetched.clear()
            page = service.search(SearchRequest("a photo"), limit)
            assert page.cutoff == pytest.approx(result.cutoff) and page.good == min(limit, result.good), limit
            assert fetched == [CUTOFF_SAMPLE], (limit, fetched)
        # A sample that foresees no score in the window (a few hundred photos of a large library can miss
        # the few there are): the page's last score asks for the cut-off's sample after the page.
        with monkeypatch.context() as patched:
            patched.setattr(library_service, "_expected_above", lambda sample, score, photos: 0.0)
            for limit in (1, k, k + 1):
                fetched.clear()
                page = service.search(SearchRequest("a photo"), limit)
                assert page.cutoff == pytest.approx(result.cutoff) and page.good == min(limit, result.good), limit
                assert fetched == [limit, CUTOFF_SAMPLE], (limit, fetched)
        by_date = service.search(SearchRequest("a photo", sort="date"))
        assert by_date.good == result.good  # the query is kept: its good matches, newest first, then the rest
        good, weak = by_date.items[: by_date.good], by_date.items[by_date.good :]
        assert {it.path for it in good} == {it.path for it in result.items[: result.good]}
        assert [it.date for it in good] == sorted((it.date for it in good), reverse=True)
        assert [it.date for it in weak] == sorted((it.date for it in weak), reverse=True)
        low, high = service.score_range()
        assert low < mid < high

    code, out, err = run_cli(capsys, "search", "a photo", "--model", name, "--library", library_dir)
    rows = out.strip().splitlines()
    assert code == 0 and len(rows) == 1 + result.good and "weaker matches" in err
    code, out, _ = run_cli(capsys, "search", "a photo", "--all", "--model", name, "--library", library_dir)
    rows = out.strip().splitlines()
    assert rows[1 + result.good] == f"— {8 - result.good} weaker matches —" and len(rows) == 10
    code, out, _ = run_cli(capsys, "search", "a photo", "--json", "--model", name, "--library", library_dir)
    assert len(json.loads(out)) == result.good and all(r["good"] for r in json.loads(out))

    strict = _install_with(tiny_pack, tmp_path, "strict", {"match_threshold": 0.99, "match_mean": 0.995, "non_match_mean": 0.985})
    index_json(capsys, library_dir, photos, extra=("--model", strict))
    with LibraryService(library_dir) as service:
        service.load_model(strict)
        none = service.search(SearchRequest("a photo"))
        fetched = _record_fetches(monkeypatch, service.engine)
        page = service.search(SearchRequest("a photo"), 2)  # every score below the narrow window: the page suffices
        assert fetched == [2]
    assert none.good == 0 and none.no_good_match and len(none.items) == 8  # the weaker ones are still offered
    assert page.cutoff == pytest.approx(none.cutoff) and page.good == 0 and len(page.items) == 2
    code, out, _ = run_cli(capsys, "search", "a photo", "--model", strict, "--library", library_dir)
    assert code == 0 and out.strip() == "no good match for this query; 8 weaker matches (--all shows them)"


def test_starter_model_cuts_real_queries(tmp_path, library_dir, capsys):
    """The offline starter model, calibrated at build: a specific query keeps its photo, nonsense keeps none."""
    pytest.importorskip("open_clip")
    from desktop_app import model_store
    from desktop_app.pack import read_manifest
    from model_training.starter.build import build_starter_pack

    pack = build_starter_pack(tmp_path / "starter")
    cal = read_manifest(pack).calibration
    assert cal["duplicate_reliable"] and cal["match_reliable"]
    assert cal["duplicate_distinct_high"] < cal["duplicate_threshold"] < cal["duplicate_copies_low"]
    model_store.install(pack, "starter")
    index_json(capsys, library_dir, SAMPLES)
    with LibraryService(library_dir) as service:
        for query, photo in (
            ("a cup of coffee", "coffee.jpg"),
            ("a cat", "cat.jpg"),
            ("a rocket launch", "rocket-launch.jpg"),
            ("a photo of a cat", "cat.jpg"),  # the wording lifts every score: the cut-off follows it
            ("a photo of a cup of coffee", "coffee.jpg"),
        ):
            result = service.search(SearchRequest(query))
            assert 1 <= result.good < 9 and result.items[0].name == photo, (query, result.good)
        nonsense = service.search(SearchRequest("zzzz"))
        assert nonsense.good == 0 and len(nonsense.items) == 9
        low, high = service.score_range()
        assert low < cal["match_threshold"] < high
        assert service.duplicates() == []  # nine different photos: no group, at the calibrated default
