"""The desktop window driven like a user would, offscreen: real library, real files, real ONNX model."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("PySide6")
pytest.importorskip("pytestqt")

from PySide6.QtCore import QMimeData, Qt, QUrl
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import QMessageBox

from desktop_app.gui import create_app
from desktop_app.gui.main_window import MainWindow
from desktop_app.services.arrange import arrange
from tests.gui.helpers import REAL, click, index_folder, search_words, settle
from tests.library_helpers import REPO, make_photo


def test_first_run_without_a_model_explains_what_to_do(qtbot, window):
    qtbot.waitUntil(lambda: window.model_problem is not None, timeout=10000)
    assert window.pages.currentWidget() is window.message
    assert "model pack" in window.message.text.text()
    assert not window.bar.isEnabled()
    from desktop_app.services import models as model_service

    first = ["Install the starter model"] if model_service.export_extra_missing() is None else []
    assert [b.text() for b in window.message._buttons][: len(first) + 1] == [*first, "Import a model pack…"]
    assert "Download a model…" in [b.text() for b in window.message._buttons]


def test_import_a_pack_from_the_first_run_screen(qtbot, window, tiny_pack):
    qtbot.waitUntil(lambda: window.model_problem is not None, timeout=10000)
    window.show_models()
    dialog = window.models_dialog
    dialog.import_pack(str(tiny_pack))
    qtbot.waitUntil(lambda: window.model_ready, timeout=30000)
    assert dialog.table.topLevelItemCount() == 1
    assert window.status_area.model_button.text() == "Model: tiny"
    qtbot.waitUntil(lambda: "Add your photos" in window.message.title.text(), timeout=5000)
    dialog.close()


def test_add_folder_index_search_and_find_similar(qtbot, tiny_model, window, photos):
    w = window
    index_folder(qtbot, w, photos)
    assert w.overview.photos == len(REAL) + 1
    assert [os.path.basename(s.path) for s in w.overview.skipped] == ["broken.jpg"]
    assert w.panel.errors_button.isVisible() and "1 file" in w.panel.errors_button.text()
    w.panel.show_errors()
    from PySide6.QtWidgets import QTreeWidget

    tree = w.panel.errors_dialog.findChild(QTreeWidget, "errors")
    assert tree.topLevelItemCount() == 1 and tree.topLevelItem(0).text(0).endswith("broken.jpg")
    w.panel.errors_dialog.close()
    qtbot.waitUntil(lambda: w.pages.currentWidget() is w.results_page, timeout=10000)  # once the browse after the pass is in

    names = search_words(qtbot, w, "a photo of a cat")
    assert len(names) == len(REAL) + 1 and set(names) == {f"{n}.jpg" for n in REAL} | {"chelsea-small.jpg"}
    scores = [it.score for it in w.model.items]
    assert scores == sorted(scores, reverse=True)
    # the thumbnails of the first cells get painted
    qtbot.waitUntil(lambda: w.delegate.painted_with_image > 0, timeout=10000)

    # find similar: the photo itself first, its near-copy right after
    row = next(i for i, it in enumerate(w.model.items) if it.name == "chelsea.jpg")
    w.view.setCurrentIndex(w.model.index(row))
    with qtbot.waitSignal(w.search_finished, timeout=20000):
        w.find_similar_current()
    settle(qtbot, w)
    assert [it.name for it in w.model.items[:2]] == ["chelsea.jpg", "chelsea-small.jpg"]
    assert w.model.items[0].score == pytest.approx(1.0, abs=1e-4)
    assert w.bar.examples and w.bar.examples[0].endswith("chelsea.jpg")
    assert w.bar.chips.count() == 1

    # combined: example image plus words, with the balance slider shown; a leading "not" subtracts the words
    with qtbot.waitSignal(w.search_finished, timeout=20000):
        qtbot.keyClicks(w.search, "not a rocket")
        w.searcher.search_now()
    settle(qtbot, w)
    assert w.bar.balance_row.isVisible()
    request = w.last_result.request
    assert request.text == "not a rocket" and request.images == w.bar.examples
    assert [(t.kind, t.value, t.weight) for t in w.service.query_terms(request)] == [
        ("text", "a rocket", -1.0),
        ("image", w.bar.examples[0], 1.0),
    ]
    # the ranking shown is that of (the cat − "a rocket"), not of (the cat + "a rocket")
    ids = [it.id for it in w.model.items]
    vectors = w.service.vectors(ids)
    cat = vectors[next(it.id for it in w.model.items if it.name == "chelsea.jpg")]
    words = w.service.encoder.encode_texts(["a rocket"])[0]
    words = words / np.linalg.norm(words)
    minus, plus = (cat - words) / np.linalg.norm(cat - words), (cat + words) / np.linalg.norm(cat + words)
    expected = sorted(((float(vectors[i] @ minus), i) for i in ids), reverse=True)
    assert ids == [i for _, i in expected]
    assert [it.score for it in w.model.items] == pytest.approx([s for s, _ in expected], abs=1e-3)
    assert max(abs(float(vectors[i] @ minus) - float(vectors[i] @ plus)) for i in ids) > 0.01  # the two readings differ

    # Esc clears the query and the example: the library by date again
    w.search.setFocus()
    with qtbot.waitSignal(w.search_finished, timeout=20000):
        qtbot.keyClick(w.search, Qt.Key_Escape)
    settle(qtbot, w)
    assert not w.bar.examples and w.search.text() == ""
    assert w.last_result.browse
    dates = [it.date for it in w.model.items]
    assert dates == sorted(dates, reverse=True)

    # a query of only negative terms says so (and does not search for the words)
    with qtbot.waitSignal(w.searcher.failed, timeout=20000) as failure:
        qtbot.keyClicks(w.search, "not a rocket")
        w.searcher.search_now()
    assert failure.args == ["a query needs at least one positive term"]
    assert w.status_area.error_box.isVisible() and w.status_area.error_label.text() == failure.args[0]


def test_filters_sort_and_relevance(qtbot, tiny_model, window, photos):
    w = window
    index_folder(qtbot, w, photos)
    search_words(qtbot, w, "a horse")
    assert w.bar.camera_filter.isVisible() and w.bar.camera_filter.count() == 3  # any, Acme Alpha 1, Acme Beta 2

    with qtbot.waitSignal(w.search_finished, timeout=20000):
        w.bar.camera_filter.setCurrentIndex(w.bar.camera_filter.findData("Acme Alpha 1"))
    settle(qtbot, w)
    assert {it.name for it in w.model.items} == {f"{n}.jpg" for i, n in enumerate(REAL) if i % 2 == 0}
    with qtbot.waitSignal(w.search_finished, timeout=20000):
        w.bar.camera_filter.setCurrentIndex(0)

    # custom date range: 2021-01-01 .. 2023-12-31 holds the photos of 2021, 2022, 2023
    from PySide6.QtCore import QDate

    w.bar.date_from.blockSignals(True)
    w.bar.date_to.blockSignals(True)
    w.bar.date_from.setDate(QDate(2021, 1, 1))
    w.bar.date_to.setDate(QDate(2023, 12, 31))
    w.bar.date_from.blockSignals(False)
    w.bar.date_to.blockSignals(False)
    with qtbot.waitSignal(w.search_finished, timeout=20000):
        w.bar.date_filter.setCurrentIndex(w.bar.date_filter.count() - 1)
    settle(qtbot, w)
    assert {it.name for it in w.model.items} == {f"{REAL[i]}.jpg" for i in (1, 2, 3)}

    # newest first
    with qtbot.waitSignal(w.search_finished, timeout=20000):
        w.bar.sort.setCurrentIndex(w.bar.sort.findData("date"))
    settle(qtbot, w)
    assert [it.name for it in w.model.items] == [f"{REAL[i]}.jpg" for i in (3, 2, 1)]
    with qtbot.waitSignal(w.search_finished, timeout=20000):
        w.bar.date_filter.setCurrentIndex(0)
    with qtbot.waitSignal(w.search_finished, timeout=20000):
        w.bar.sort.setCurrentIndex(0)
    settle(qtbot, w)

    # the relevance slider hides weak matches: exactly those below the slider's score
    everything = {it.id: it.score for it in w.model.items}
    assert len(everything) == len(REAL) + 1
    scores = sorted(everything.values())
    cut = (scores[len(scores) // 2] + scores[len(scores) // 2 + 1]) / 2
    low, high = w.bar.score_range  # the slider spans the model's calibrated scores
    with qtbot.waitSignal(w.search_finished, timeout=20000):
        w.bar.strictness.setValue(min(100, max(1, int(np.ceil((cut - low) / (high - low) * 100)))))
    settle(qtbot, w)
    kept = {i for i, score in everything.items() if score >= w.bar.min_score - 1e-6}
    assert 0 < len(kept) < len(everything)  # the cut falls inside the scores: the check below can fail both ways
    assert {it.id for it in w.model.items} == kept

    # arrange by similarity: the good matches laid out by FLAS on the grid's columns, the weaker ones after
    with qtbot.waitSignal(w.search_finished, timeout=20000):
        w.bar.strictness.setValue(0)
    settle(qtbot, w)
    shown = list(w.model.items)
    assert {it.id for it in shown} == set(everything)
    good = shown[: w.model.good]
    assert len(good) >= 4  # fewer are never arranged
    vectors = w.service.vectors([it.id for it in good])
    order = arrange(np.stack([vectors[it.id] for it in good]), w.view.columns()).tolist()
    assert order != list(range(len(good)))  # arranging changes the order: a no-op would be caught
    w.bar.arrange_button.setChecked(True)
    qtbot.waitUntil(lambda: "arranged" in w.count_label.text(), timeout=10000)
    assert [it.id for it in w.model.items] == [good[i].id for i in order] + [it.id for it in shown[len(good) :]]


def _parked_in_pause(indexer) -> bool:
    """The indexing thread waits in IndexController._progress's pause loop (gui/indexing.py): it cannot advance."""
    thread = indexer._thread
    frame = sys._current_frames().get(thread.ident) if thread is not None else None
    innermost = frame
    while frame is not None:
        if frame.f_code is type(indexer)._progress.__code__:
            return indexer.paused and innermost.f_code.co_name == "wait"  # threading's Event/Condition.wait
        frame = frame.f_back
    return False


def test_cancel_pause_and_resume_indexing(qtbot, tiny_model, window, tmp_path):
    w = window
    folder = tmp_path / "many"
    total = 400
    for i in range(total):
        make_photo(folder / f"p{i:03d}.jpg", seed=i, size=(64, 48))
    qtbot.waitUntil(lambda: w.model_ready, timeout=20000)

    def pause_early(p):  # what a user does on seeing the progress bar move
        if p.done >= 40 and not w.panel.pause_button.isChecked():
            w.panel.pause_button.click()

    w.indexer.progressed.connect(pause_early)
    w.add_folder(str(folder))
    qtbot.waitUntil(lambda: w.panel.pause_button.isChecked(), timeout=60000)
    w.indexer.progressed.disconnect(pause_early)
    assert w.panel.progress_box.isVisible()
    qtbot.waitUntil(lambda: w.indexer.last_progress.paused, timeout=5000)
    # paused: the indexing thread parks in its pause loop, after which nothing moves (no sleeps: a condition)
    qtbot.waitUntil(lambda: _parked_in_pause(w.indexer), timeout=10000)
    held = w.indexer.last_progress.done
    assert 0 < held < total
    assert "paused" in w.panel.progress_title.text().lower()
    with qtbot.waitSignal(w.search_finished, timeout=20000):  # the window keeps working meanwhile
        w.searcher.run_now()
    assert _parked_in_pause(w.indexer) and w.indexer.last_progress.done == held
    with qtbot.waitSignal(w.index_finished, timeout=30000):
        w.panel.cancel_button.click()
    assert "cancelled" in w.panel.last_run.text()
    qtbot.waitUntil(lambda: w.overview is not None and not w.indexer.running, timeout=10000)
    settle(qtbot, w)
    partial = w.overview.photos
    assert 0 < partial < total
    # search works on what was indexed
    assert len(search_words(qtbot, w, "colourful")) == partial
    # re-index resumes and completes
    with qtbot.waitSignal(w.index_finished, timeout=120000):
        w.panel.reindex_button.click()
    qtbot.waitUntil(lambda: w.overview.photos == total, timeout=10000)
    assert f"{total - partial} photos encoded" in w.panel.last_run.text()


def test_detail_view_copy_export_and_keyboard(qtbot, tiny_model, window, photos, tmp_path):
    w = window
    index_folder(qtbot, w, photos)
    settle(qtbot, w)
    # Ctrl+F focuses the search field
    w.view.setFocus()
    qtbot.keyClick(w, Qt.Key_F, Qt.ControlModifier)
    assert w.search.hasFocus()
    # Down enters the grid; Enter opens the detail view
    qtbot.keyClick(w.search, Qt.Key_Down)
    assert w.view.hasFocus() and w.view.currentIndex().row() == 0
    qtbot.keyClick(w.view, Qt.Key_Return)
    dialog = w.photo_actions.detail
    assert dialog is not None and dialog.isVisible()
    item = w.model.items[0]
    assert dialog.name.text() == item.name
    qtbot.waitUntil(lambda: not dialog.image._image.isNull(), timeout=10000)
    assert dialog.fields["Camera"][1].text().startswith("Acme")
    dialog.copy_path()
    assert QGuiApplication.clipboard().text() == item.path
    qtbot.keyClick(dialog, Qt.Key_Right)
    assert dialog.item is w.model.items[1]
    dialog.close()
    # Space previews
    w.view.setFocus()
    qtbot.keyClick(w.view, Qt.Key_Space)
    assert w.photo_actions.preview is not None and w.photo_actions.preview.isVisible()
    w.photo_actions.preview.close()

    # multi-select, copy as files, export to a folder
    w.view.selectAll()
    w.photo_actions.copy_selection()
    urls = QGuiApplication.clipboard().mimeData().urls()
    assert len(urls) == w.model.rowCount() and all(u.isLocalFile() for u in urls)
    target = tmp_path / "export"
    target.mkdir()
    (target / "coffee.jpg").write_bytes(b"already here")
    w.photo_actions.export_selection(str(target))
    qtbot.waitUntil(lambda: len(list(target.iterdir())) == w.model.rowCount() + 1, timeout=10000)
    assert (target / "coffee (2).jpg").stat().st_size > 1000
    assert (target / "coffee.jpg").read_bytes() == b"already here"


def test_paste_and_drop_an_example_image(qtbot, tiny_model, window, photos, tmp_path):
    w = window
    index_folder(qtbot, w, photos)
    settle(qtbot, w)
    # an image (not a file) on the clipboard: saved and used as the example
    QGuiApplication.clipboard().setImage(Image.open(photos / "rocket.jpg").toqimage() if hasattr(Image.Image, "toqimage") else _qimage(photos / "rocket.jpg"))
    with qtbot.waitSignal(w.search_finished, timeout=20000):
        w.paste()
    settle(qtbot, w)
    assert w.bar.examples and w.model.items[0].name == "rocket.jpg"
    # dropping a file that is not in the library works too
    outside = tmp_path / "outside.png"
    Image.open(photos / "coffee.jpg").save(outside)
    data = QMimeData()
    data.setUrls([QUrl.fromLocalFile(str(outside))])
    from PySide6.QtCore import QPointF
    from PySide6.QtGui import QDropEvent

    event = QDropEvent(QPointF(50, 50), Qt.CopyAction, data, Qt.LeftButton, Qt.NoModifier)
    with qtbot.waitSignal(w.search_finished, timeout=20000):
        w.dropEvent(event)
    settle(qtbot, w)
    assert w.bar.examples == [str(outside)]
    assert w.model.items[0].name == "coffee.jpg"


def _qimage(path):
    from PySide6.QtGui import QImage

    return QImage(str(path))


def _duplicates_dialog_with_the_cat_pair(qtbot, w, photos):
    """Indexed photos and an open Duplicates dialog whose one group is the cat and its smaller copy."""
    index_folder(qtbot, w, photos)
    # The tiny test model has random weights: pick a threshold between the copy's similarity and the rest.
    items = {it.name: it.id for it in w.service.browse(w.searcher.current_request().filters, "date", 100)}
    vectors = w.service.vectors(list(items.values()))
    cat, small = vectors[items["chelsea.jpg"]], vectors[items["chelsea-small.jpg"]]
    others = max(float(vectors[a] @ vectors[b]) for a in items.values() for b in items.values() if a < b and {a, b} != {items["chelsea.jpg"], items["chelsea-small.jpg"]})
    pair = float(cat @ small)
    assert pair > others
    w.show_duplicates()
    dialog = w.duplicates_dialog
    dialog.threshold.setValue(min(0.9999, (pair + others) / 2))
    dialog.find()
    qtbot.waitUntil(lambda: len(dialog.groups) == 1 and len(dialog.groups[0].members) == 2, timeout=20000)
    group = [(m.item, m.similarity) for m in dialog.groups[0].members]
    assert {item.name for item, _ in group} == {"chelsea.jpg", "chelsea-small.jpg"}
    assert group[0][0].name == "chelsea.jpg"  # the larger one is kept by default
    assert [os.path.basename(p) for p in dialog.marked()] == ["chelsea-small.jpg"]
    return dialog


def test_trash_button_asks_first_and_cancel_moves_nothing(qtbot, tiny_model, window, photos, tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    dialog = _duplicates_dialog_with_the_cat_pair(qtbot, window, photos)
    size = (photos / "chelsea-small.jpg").stat().st_size
    click(qtbot, dialog.trash_button)
    qtbot.waitUntil(lambda: dialog.confirmation is not None and dialog.confirmation.isVisible(), timeout=5000)
    box = dialog.confirmation
    assert box.text() == f"Move 1 photo ({size / 1024:.1f} KB) to the Trash?"
    click(qtbot, box.button(QMessageBox.Cancel))
    qtbot.waitUntil(lambda: dialog.confirmation is None, timeout=5000)
    settle(qtbot, window)  # a trash started by mistake would be a task in flight: let it finish before looking
    assert (photos / "chelsea-small.jpg").exists()
    assert not (tmp_path / "xdg" / "Trash").exists()
    assert not dialog.undo_bar.isVisible()
    dialog.close()


def test_duplicates_go_to_the_trash_and_undo_puts_them_back(qtbot, tiny_model, window, photos, tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    w = window
    dialog = _duplicates_dialog_with_the_cat_pair(qtbot, w, photos)
    original = (photos / "chelsea-small.jpg").read_bytes()
    click(qtbot, dialog.trash_button)
    qtbot.waitUntil(lambda: dialog.confirmation is not None and dialog.confirmation.isVisible(), timeout=5000)
    with qtbot.waitSignal(dialog.trashed, timeout=20000):
        click(qtbot, dialog.confirm_button)
    assert not (photos / "chelsea-small.jpg").exists()
    trashed = list((tmp_path / "xdg" / "Trash" / "files").iterdir())
    assert [p.name for p in trashed] == ["chelsea-small.jpg"]  # in the trash, never deleted
    assert dialog.undo_bar.isVisible()
    assert dialog.undo_bar.label.text().startswith("Moved 1 photo (")
    qtbot.waitUntil(lambda: not w.indexer.running and w.overview.photos == len(REAL), timeout=30000)

    with qtbot.waitSignal(dialog.restored, timeout=20000):
        click(qtbot, dialog.undo_bar.undo_button)
    assert (photos / "chelsea-small.jpg").read_bytes() == original
    assert list((tmp_path / "xdg" / "Trash" / "files").iterdir()) == []
    assert list((tmp_path / "xdg" / "Trash" / "info").iterdir()) == []
    assert dialog.undo_bar.label.text() == "Put 1 photo back."
    qtbot.waitUntil(lambda: not w.indexer.running and w.overview.photos == len(REAL) + 1, timeout=30000)
    dialog.close()


def test_settings_persist(qtbot, tiny_model, library_dir):
    create_app()
    w = MainWindow(str(library_dir), watch=False)
    qtbot.addWidget(w)
    w.show()
    w.resize(1000, 700)
    w.bar.sort.setCurrentIndex(1)
    w.photo_actions.zoom(1)
    side = w.view.target_side
    w.close()
    w2 = MainWindow(None, watch=False)
    qtbot.addWidget(w2)
    assert str(w2.service.library.directory) == str(library_dir)
    assert w2.bar.sort.currentData() == "date"
    assert w2.view.target_side == side
    w2.close()


def test_pixfind_help_still_prints_help_and_no_command_opens_the_window(tmp_path):
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", PIXFIND_HOME=str(tmp_path / "home"))
    out = subprocess.run([sys.executable, "-m", "desktop_app", "--help"], cwd=REPO, env=env, capture_output=True, text=True, timeout=60, check=False)
    assert out.returncode == 0 and "Usage: pixfind" in out.stdout and "app" in out.stdout
    proc = subprocess.Popen([sys.executable, "-m", "desktop_app"], cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        with pytest.raises(subprocess.TimeoutExpired):
            proc.wait(timeout=6)  # the window stays up (no crash, no help text)
    finally:
        proc.terminate()
        out, err = proc.communicate(timeout=20)
    assert b"Traceback" not in err and b"Usage:" not in out


def test_a_long_session_does_not_run_none_out_of_references(qtbot):
    """shiboken6 6.12 on CPython 3.11 drops a reference to None per void call; the app guards against it."""
    create_app()
    from PySide6.QtGui import QImage, QPainter

    image = QImage(8, 8, QImage.Format_RGB32)
    painter = QPainter(image)
    for _ in range(100000):  # more than None's natural reference count
        painter.save()
        painter.restore()
    painter.end()
    assert sys.getrefcount(None) > 1000


def test_new_photos_in_a_watched_folder_are_picked_up(qtbot, tiny_model, library_dir, photos):
    create_app()
    w = MainWindow(str(library_dir), watch=True)
    qtbot.addWidget(w)
    w.show()
    index_folder(qtbot, w, photos)
    qtbot.waitUntil(lambda: w.indexer._observer is not None, timeout=10000)
    observer, overview = w.indexer._observer, w.overview
    w.refresh_overview()  # as after every indexing pass: the watcher keeps running, no gap to miss a change in
    qtbot.waitUntil(lambda: w.overview is not overview, timeout=10000)
    assert w.indexer._observer is observer and observer.is_alive()
    before = w.overview.photos
    make_photo(photos / "fresh.jpg", seed=5)
    qtbot.waitUntil(lambda: w.overview.photos == before + 1, timeout=60000)
    w.close()


def test_two_folders_and_filter_by_folder(qtbot, tiny_model, window, photos, tmp_path):
    w = window
    other = tmp_path / "Holidays"
    for i in range(3):
        make_photo(other / f"h{i}.jpg", seed=100 + i)
    index_folder(qtbot, w, photos)
    with qtbot.waitSignal(w.index_finished, timeout=60000):
        w.add_folder(str(other))
    qtbot.waitUntil(lambda: len(w.overview.folders) == 2 and w.overview.photos == len(REAL) + 4, timeout=10000)
    assert w.bar.folder_filter.isVisible() and w.panel.folders.count() == 2
    # choosing the folder in the library panel filters the results to it
    row = next(i for i in range(w.panel.folders.count()) if w.panel.folders.item(i).text().startswith("Holidays"))
    with qtbot.waitSignal(w.search_finished, timeout=20000):
        w.panel.folders.setCurrentRow(row)
    settle(qtbot, w)
    assert sorted(it.name for it in w.model.items) == ["h0.jpg", "h1.jpg", "h2.jpg"]
    # removing it, through the panel's button and its question: tests/gui/test_folder_removal.py


def test_pulling_a_model_that_needs_more_explains_in_one_line(qtbot, tiny_model, window, monkeypatch):
    from PySide6.QtWidgets import QFileDialog

    asked = []  # the pull asks for the folder with the tokenizer files; the user cancels
    monkeypatch.setattr(QFileDialog, "getExistingDirectory", staticmethod(lambda *a, **k: asked.append(a) or ""))
    qtbot.waitUntil(lambda: window.model_ready, timeout=20000)
    window.show_models()
    dialog = window.models_dialog
    dialog.available.setCurrentItem(dialog.available_row("mcip-siglip-so400m-384"))
    dialog.pull_button.click()
    qtbot.waitUntil(lambda: dialog.pull_button.isEnabled(), timeout=10000)
    assert len(asked) == 1
    assert "tokenizer" in dialog.pull_status.text() and "\n" not in dialog.pull_status.text()
    assert not dialog.pull_progress.isVisible()
    dialog.close()


# ---------------------------------------------------------------------- the same answer in both front ends


def _cli_search(library_dir, query, *extra) -> list[tuple[str, float]]:
    """(path, score) best first, from the installed `pixfind` console script in a process of its own."""
    import json

    script = Path(sys.executable).with_name("pixfind")
    assert script.exists(), f"the console script is not installed: {script}"
    out = subprocess.run(
        [str(script), "search", query, *map(str, extra), "--json", "--limit", "100", "--library", str(library_dir)],
        capture_output=True, text=True, timeout=120, env=dict(os.environ), check=False,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    return [(row["path"], row["score"]) for row in json.loads(out.stdout)]


def _window_search(qtbot, w, text, press_enter: bool) -> list[tuple[str, float]]:
    """Type the query into the real search field; Enter, or wait for search-as-you-type."""
    w.search.setFocus()
    w.search.selectAll()
    qtbot.keyClick(w.search, Qt.Key_Delete)
    qtbot.keyClicks(w.search, text)
    if press_enter:
        qtbot.keyClick(w.search, Qt.Key_Return)
    qtbot.waitUntil(lambda: w.last_result is not None and w.last_result.request.text == text and not w.searcher.busy, timeout=20000)
    settle(qtbot, w)
    assert w.last_result.request.text == text and w.last_result.complete
    return [(it.path, it.score) for it in w.model.items]


def _same_ranking(window_rows, cli_rows) -> None:
    assert [os.path.basename(p) for p, _ in window_rows] == [os.path.basename(p) for p, _ in cli_rows]
    assert [p for p, _ in window_rows] == [p for p, _ in cli_rows]
    assert [s for _, s in window_rows] == pytest.approx([s for _, s in cli_rows], abs=1e-3)


@pytest.mark.parametrize(
    ("query", "press_enter"),
    [("beach not people", False), ("a cat + 2:a rocket - a horse", True), ("a photo of a cat without a horse", True)],
)
def test_window_and_pixfind_search_rank_the_same_photos(qtbot, tiny_model, window, photos, library_dir, query, press_enter):
    w = window
    index_folder(qtbot, w, photos)
    settle(qtbot, w)
    window_rows = _window_search(qtbot, w, query, press_enter)
    assert len(window_rows) == len(REAL) + 1
    _same_ranking(window_rows, _cli_search(library_dir, query))
    # the operators count: the same words read as one plain phrase score differently
    words = " ".join(t for t in query.replace("2:", "").split() if t not in {"+", "-", "not", "without"})
    plain = _window_search(qtbot, w, words, press_enter=True)
    assert [s for _, s in plain] != pytest.approx([s for _, s in window_rows], abs=1e-3)


def test_window_and_pixfind_search_rank_the_same_photos_for_image_and_words(qtbot, tiny_model, window, photos, library_dir, tmp_path, monkeypatch):
    from PySide6.QtTest import QTest
    from PySide6.QtWidgets import QFileDialog

    w = window
    index_folder(qtbot, w, photos)
    settle(qtbot, w)
    example = tmp_path / "example.png"  # not in the library: both front ends encode it
    Image.open(photos / "coffee.jpg").resize((200, 150)).save(example)
    # "Search by image…" as a user clicks it; the file dialog answers with the example
    monkeypatch.setattr(QFileDialog, "getOpenFileName", staticmethod(lambda *a, **k: (str(example), "")))
    with qtbot.waitSignal(w.search_finished, timeout=20000):
        QTest.mouseClick(w.bar.image_button, Qt.LeftButton)
    assert w.bar.examples == [str(example)] and w.bar.balance.value() == 50
    window_rows = _window_search(qtbot, w, "a cup on a table not a horse", press_enter=False)
    assert w.last_result.request.images == [str(example)]
    cli_rows = _cli_search(library_dir, "a cup on a table not a horse", "--image", example)
    _same_ranking(window_rows, cli_rows)
