"""The main window's folders and indexing: adding and removing folders, what indexing shows.

While a pass runs the panel, the grid and the status bar tell the same story: the new
folder shows at once, an empty grid says the first photos are coming, and the overview
is refreshed with the grid, so that the panel's counts and the grid's agree.
"""

from __future__ import annotations

import os
import time

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QFileDialog, QMessageBox

from ..services import describe_report


class FoldersAndIndexing:
    """Mixed into ``MainWindow``."""

    def add_folder_dialog(self) -> None:
        start = self.settings.value("last_folder_dir", os.path.expanduser("~"))
        folder = QFileDialog.getExistingDirectory(self, "Add a folder of photos", start)
        if folder:
            self.settings.setValue("last_folder_dir", os.path.dirname(folder))
            self.add_folder(folder)

    def add_folder(self, folder: str) -> None:
        if not self.model_ready:
            self.show_error("install a model first (Library ▸ Models…)")
            return
        self.indexer.index([folder])
        self.statusBar().showMessage(f"Adding {folder}…", 4000)

    remove_confirmation: QMessageBox | None = None  # the open "Remove folder?" question

    def remove_folder(self, folder_id: int, path: str) -> None:
        """Ask first, window-modal and without blocking; the folder is forgotten only on "Remove folder".

        There is no way around the question: no parameter a signal's extra argument could turn it off with.
        """
        if self.indexer.running:
            self.show_error("wait for indexing to finish (or cancel it) before removing a folder")
            return
        box = QMessageBox(
            QMessageBox.Question,
            "Remove folder",
            f"Stop searching the photos in\n{path}?\n\nThe files themselves are not touched.",
            parent=self,
        )
        confirm = box.addButton("Remove folder", QMessageBox.DestructiveRole)
        box.addButton(QMessageBox.Cancel)
        box.setDefaultButton(QMessageBox.Cancel)
        box.setWindowModality(Qt.WindowModal)
        box.finished.connect(lambda _: self._remove_answered(box, confirm, folder_id))
        self.remove_confirmation = box
        box.open()

    def _remove_answered(self, box: QMessageBox, confirm, folder_id: int) -> None:
        self.remove_confirmation = None
        box.deleteLater()
        if box.clickedButton() is not confirm:
            return
        if self.indexer.running:  # a pass started while the question was open (a watched folder changed)
            self.show_error("wait for indexing to finish (or cancel it) before removing a folder")
            return
        self._run_task(self.service.remove_folder, folder_id, done=lambda _: self._library_changed(), failed=self.show_error)

    def _library_changed(self) -> None:
        self.refresh_overview()
        self.run_search(keep_view=True)

    def indexing_state(self) -> str:
        """ "" when idle, else "running" or "paused" (the count line says which)."""
        if not self.indexer.running:
            return ""
        return "paused" if self.indexer.paused else "running"

    def _index_started(self) -> None:
        self.panel.set_running(True)
        self.status_area.indexing_started()
        self._pass_scanned = False
        self._paused_shown = False
        self._update_page()

    def _index_progress(self, p) -> None:
        self.panel.set_progress(p)
        self.status_area.indexing_progress(p)
        self.searcher.refresh_count()  # "indexing paused" / "indexing goes on"
        if p.total and not self._pass_scanned:
            self._pass_scanned = True  # the folders are in the catalogue now: show a new one in the panel
            self.refresh_overview()
        now = time.monotonic()
        cost = self.last_result.seconds if self.last_result is not None else 0.0
        wait = 0.5 if not self.model.rowCount() else max(3.0, 10 * cost)  # the first photos as soon as they are in
        if p.held and not self._paused_shown:
            # Paused, and the pass has stopped: show what is indexed so far (a fast pass can reach
            # the pause before its first live refresh), and the panel's counts with it.
            self._paused_shown = True
            self._last_live_refresh = now
            self.refresh_overview()
            self.run_search(keep_view=True)
            return
        if not p.paused:
            self._paused_shown = False
        if p.done and not p.paused and now - self._last_live_refresh > wait and self.view.verticalScrollBar().value() == 0:
            # Search works on what is indexed so far: let the results grow while indexing goes on,
            # and the panel's counts with them.
            self._last_live_refresh = now
            self.refresh_overview()
            self.run_search(keep_view=True)

    def _index_done(self, report, error: str) -> None:
        self.panel.set_running(False)
        self.status_area.indexing_stopped()
        if report is not None:
            text = describe_report(report, skipped_hint="listed under Skipped files in the library panel")
            if report.interrupted or (report.ocr is not None and report.ocr.interrupted):
                text = "Indexing cancelled; it resumes where it stopped next time. " + text
            self.panel.set_report(text)
            self.statusBar().showMessage(text, 4000)
            if report.ocr is not None and report.ocr.error and not error:
                error = report.ocr.error  # the photos are searchable; their text could not be read
        if error:
            self.show_error(error)
            self.panel.set_error(error)
        self.refresh_overview()
        self.run_search(keep_view=True)
        self.index_finished.emit()
        self.indexer.start_queued()
