"""The search language of multilingual models in the window: a real NLLB-style pack (a language
token first, its text tower exported by torch), photos indexed by the CLI, the language chosen by
typing into the real combo, the query typed into the real search field; the scores must be those
of `pixfind search --lang`."""

from __future__ import annotations

import json

import pytest

pytest.importorskip("PySide6")
pytest.importorskip("pytestqt")
pytest.importorskip("torch")  # the pack's towers are exported from torch modules

from PySide6.QtCore import QEvent, Qt
from PySide6.QtGui import QKeyEvent
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication

from desktop_app.gui import create_app
from desktop_app.gui.main_window import MainWindow
from desktop_app.gui.settings import settings
from tests.integration.test_text_inputs import LANGS, build_pack
from tests.library_helpers import index_json, make_photo, run_cli

QUERY = "a dog on the beach at sunset"  # detected as English: a chosen language must override that
# The CLI prints scores rounded to 4 decimals: the window's scores agree within that rounding.
ROUNDING = 1e-4


@pytest.fixture(scope="module")
def nllb_pack(tmp_path_factory):
    return build_pack(tmp_path_factory.mktemp("nllb") / "tiny-nllb")


def install_and_index(capsys, pack, name, photos, library_dir) -> None:
    for i in range(5):
        make_photo(photos / f"p{i}.jpg", seed=i)
    if pack is not None:
        code, _, err = run_cli(capsys, "models", "import", pack, "--name", name)
        assert code == 0, err
    code, _, err = run_cli(capsys, "models", "use", name)
    assert code == 0, err
    index_json(capsys, library_dir, photos)


def cli_scores(capsys, library_dir, lang: str) -> dict[str, float]:
    code, out, err = run_cli(capsys, "search", QUERY, "--library", library_dir, "--all", "--json", "--lang", lang)
    assert code == 0, err
    return {row["path"]: row["score"] for row in json.loads(out)}


def window_scores(w) -> dict[str, float]:
    return {item.path: item.score for item in w.last_result.items}


def same_scores(window: dict[str, float], cli: dict[str, float]) -> bool:
    return window.keys() == cli.keys() and all(abs(window[p] - cli[p]) <= ROUNDING for p in cli)


@pytest.fixture
def open_window(qtbot):
    windows = []

    def opener(library_dir):
        create_app()
        w = MainWindow(str(library_dir), watch=False)
        qtbot.addWidget(w)
        with qtbot.waitSignal(w.bar.language.offered, timeout=60000):  # the model's languages are in
            w.show()
        windows.append(w)
        return w

    yield opener
    for w in windows:
        w.close()


def type_text(widget, text: str) -> None:
    """Key presses carrying these characters (QTest.keyClicks knows ASCII only), as a keyboard layout sends them."""
    for ch in text:
        for kind in (QEvent.KeyPress, QEvent.KeyRelease):
            QApplication.sendEvent(widget, QKeyEvent(kind, Qt.Key_unknown, Qt.NoModifier, ch))


def choose_language(qtbot, w, typed: str) -> None:
    """Type into the language combo and pick the first language the list narrows to, as a user does."""
    combo = w.bar.language
    qtbot.mouseClick(combo.lineEdit(), Qt.LeftButton)
    combo.lineEdit().selectAll()
    type_text(combo.lineEdit(), typed)
    popup = combo.completer().popup()
    qtbot.waitUntil(popup.isVisible)
    QTest.keyClick(popup, Qt.Key_Down)
    QTest.keyClick(popup, Qt.Key_Return)


def search_for(qtbot, w, text: str) -> None:
    w.search.setFocus()
    w.search.clear()
    with qtbot.waitSignal(w.search_finished, timeout=60000):
        QTest.keyClicks(w.search, text)
        QTest.keyClick(w.search, Qt.Key_Return)


def test_the_chosen_language_reaches_the_model_and_is_kept(qtbot, capsys, tmp_path, library_dir, nllb_pack, open_window):
    install_and_index(capsys, nllb_pack, "nllb", tmp_path / "photos", library_dir)
    german, french = cli_scores(capsys, library_dir, "de"), cli_scores(capsys, library_dir, "fr")
    english = cli_scores(capsys, library_dir, "en")  # what detecting the query's language gives
    assert len(german) == 5
    # The languages must lead to different scores, by much more than the CLI's rounding.
    assert max(abs(german[p] - french[p]) for p in german) > 10 * ROUNDING
    assert max(abs(german[p] - english[p]) for p in german) > 10 * ROUNDING
    stored = settings()
    stored.setValue("search_language", "../../not a language")  # a settings file edited by hand
    stored.sync()

    w = open_window(library_dir)
    combo = w.bar.language
    assert combo.isVisibleTo(w) and combo.language() is None  # an unknown code: automatic
    assert combo.currentText().startswith("Automatic")
    assert combo.count() == 1 + len(LANGS)  # only the languages the pack's tokenizer has a token for
    qtbot.waitUntil(lambda: w.model_ready, timeout=60000)

    search_for(qtbot, w, QUERY)
    assert w.last_result.request.language is None and same_scores(window_scores(w), english)

    with qtbot.waitSignal(w.search_finished, timeout=60000):  # another language searches again at once
        choose_language(qtbot, w, "deutsch")
    assert combo.currentText() == "German — Deutsch" and combo.language() == "deu_Latn"
    assert w.last_result.request.text == QUERY and w.last_result.request.language == "deu_Latn"
    assert same_scores(window_scores(w), german) and not same_scores(window_scores(w), french)

    search_for(qtbot, w, "ein Hund")  # search as you type: a new query keeps the language
    search_for(qtbot, w, QUERY)  # ...and the one before comes from the cache of German vectors
    assert w.last_result.request.language == "deu_Latn" and same_scores(window_scores(w), german)

    with qtbot.waitSignal(w.search_finished, timeout=60000):
        choose_language(qtbot, w, "FRAN")
    assert combo.language() == "fra_Latn" and same_scores(window_scores(w), french)
    w.close()

    again = open_window(library_dir)  # the choice is kept
    assert again.bar.language.language() == "fra_Latn" and again.bar.language.currentText() == "French — français"
    qtbot.waitUntil(lambda: again.model_ready, timeout=60000)
    search_for(qtbot, again, QUERY)
    assert again.last_result.request.language == "fra_Latn" and same_scores(window_scores(again), french)


def test_typing_no_language_keeps_the_one_chosen(qtbot, capsys, tmp_path, library_dir, nllb_pack, open_window):
    install_and_index(capsys, nllb_pack, "nllb", tmp_path / "photos", library_dir)
    w = open_window(library_dir)
    combo = w.bar.language
    with qtbot.waitSignal(combo.changed, timeout=10000):
        choose_language(qtbot, w, "Русский")  # a language found by its own name
    assert combo.language() == "rus_Cyrl"
    combo.lineEdit().selectAll()
    QTest.keyClicks(combo.lineEdit(), "Klingon")
    QTest.keyClick(combo.lineEdit(), Qt.Key_Tab)  # leaves the field: nothing matched
    assert combo.language() == "rus_Cyrl" and combo.currentText() == "Russian — русский"
    assert settings().value("search_language") == "rus_Cyrl"


def test_a_model_that_takes_no_language_shows_no_choice(qtbot, capsys, tmp_path, library_dir, tiny_model, open_window):
    install_and_index(capsys, None, tiny_model, tmp_path / "photos", library_dir)
    stored = settings()
    stored.setValue("search_language", "deu_Latn")
    stored.sync()
    w = open_window(library_dir)
    assert not w.bar.language.isVisibleTo(w)
    qtbot.waitUntil(lambda: w.model_ready, timeout=60000)
    search_for(qtbot, w, QUERY)
    assert w.last_result.request.language is None and len(w.last_result.items) == 5
