"""What can be done with the photos in the grid: open, preview, copy, export, reveal, the context menu."""

from __future__ import annotations

import os

from PySide6.QtCore import QMimeData, QObject, Qt, QUrl, Signal
from PySide6.QtGui import QDesktopServices, QGuiApplication
from PySide6.QtWidgets import QFileDialog, QMenu

from ..services import export_files
from . import tasks
from .detail import (
    DetailDialog,
    load_preview,
    put_image_on_clipboard,
    reveal_in_file_manager,
)


class PhotoActions(tasks.TaskOwner, QObject):
    find_similar = Signal(object)  # the photo to search like
    add_example = Signal(str)  # a photo's path to add to the query's examples
    message = Signal(str, int)  # status bar text, milliseconds
    problem = Signal(str)

    def __init__(self, window, view, model, settings):
        super().__init__(window)
        self.window, self.view, self.model, self.settings = window, view, model, settings
        self.detail: DetailDialog | None = None
        self.preview: DetailDialog | None = None
        self.context_menu: QMenu | None = None
        view.activated_item.connect(self.open_detail)
        view.preview_requested.connect(self.quick_preview)
        view.setContextMenuPolicy(Qt.CustomContextMenu)
        view.customContextMenuRequested.connect(self._context_menu)
        view.selectionModel().selectionChanged.connect(self._selection_changed)

    @property
    def closed_for_good(self) -> bool:
        return getattr(self.window, "closed_for_good", False)

    def selected_items(self):
        rows = sorted(i.row() for i in self.view.selectionModel().selectedIndexes())
        return [self.model.items[r] for r in rows if r < len(self.model.items)]

    def current(self):
        return self.model.item(self.view.currentIndex().row())

    def _selection_changed(self) -> None:
        n = len(self.view.selectionModel().selectedIndexes())
        if n > 1:
            self.message.emit(f"{n} selected · Ctrl+C copies, Ctrl+E exports", 4000)

    def _context_menu(self, pos) -> None:
        index = self.view.indexAt(pos)
        if not index.isValid():
            return
        if not self.view.selectionModel().isSelected(index):
            self.view.setCurrentIndex(index)
        item = self.model.item(index.row())
        menu = QMenu(self.window)
        menu.addAction("Open", lambda: self.open_detail(index.row()))
        menu.addAction("Quick Preview\tSpace", self.quick_preview)
        menu.addAction("Find Similar\tCtrl+Shift+F", lambda: self.find_similar.emit(item))
        menu.addAction("Add as Example", lambda: self.add_example.emit(item.path))
        menu.addSeparator()
        menu.addAction("Open in Default Viewer\tCtrl+O", self.open_external)
        menu.addAction("Show in Folder", self.reveal)
        menu.addSeparator()
        menu.addAction("Copy Path", lambda: QGuiApplication.clipboard().setText(item.path))
        menu.addAction("Copy Image", self.copy_current_image)
        menu.addAction("Copy Text", lambda: self.copy_text(item))
        n = len(self.selected_items())
        menu.addAction(f"Export {n} Photo{'s' if n != 1 else ''}…", self.export_selection)
        menu.popup(self.view.viewport().mapToGlobal(pos))
        self.context_menu = menu

    # ------------------------------------------------------------------ detail view and preview

    def _dialog(self, preview: bool) -> DetailDialog:
        attr = "preview" if preview else "detail"
        dialog = getattr(self, attr)
        if dialog is None:
            dialog = DetailDialog(self.window, preview_only=preview)
            dialog.text_of = self.window.service.photo_text
            dialog.find_similar.connect(self.find_similar)
            dialog.navigate.connect(lambda step, d=dialog: self._navigate(d, step))
            setattr(self, attr, dialog)
        return dialog

    def open_detail(self, row: int) -> None:
        item = self.model.item(row)
        if item is None:
            return
        dialog = self._dialog(False)
        dialog.show_item(item, self.model.show_scores)
        dialog.show()
        dialog.raise_()

    def open_current(self) -> None:
        self.open_detail(self.view.currentIndex().row())

    def quick_preview(self) -> None:
        if self.close_preview():
            return
        item = self.current()
        if item is None:
            return
        dialog = self._dialog(True)
        dialog.show_item(item, self.model.show_scores)
        dialog.show()

    def close_preview(self) -> bool:
        """Close the quick preview if it is open; True when it was."""
        if self.preview is not None and self.preview.isVisible():
            self.preview.close()
            return True
        return False

    def _navigate(self, dialog: DetailDialog, step: int) -> None:
        row = self.view.currentIndex().row() + step
        if 0 <= row < self.model.rowCount():
            self.view.setCurrentIndex(self.model.index(row))
            dialog.show_item(self.model.items[row], self.model.show_scores)

    # ------------------------------------------------------------------ files

    def open_external(self) -> None:
        if item := self.current():
            QDesktopServices.openUrl(QUrl.fromLocalFile(item.path))

    def reveal(self) -> None:
        if item := self.current():
            reveal_in_file_manager(item.path)

    def copy_selection(self) -> None:
        items = self.selected_items() or ([self.current()] if self.current() else [])
        if not items:
            return
        data = QMimeData()
        data.setUrls([QUrl.fromLocalFile(it.path) for it in items])
        data.setText("\n".join(it.path for it in items))
        QGuiApplication.clipboard().setMimeData(data)
        self.message.emit(f"Copied {len(items)} photo{'s' if len(items) != 1 else ''}", 3000)

    def copy_current_image(self) -> None:
        if item := self.current():
            self._run_task(load_preview, item.path, 4096, done=put_image_on_clipboard)

    def copy_text(self, item) -> None:
        """The text read in the photo, one line per line, to the clipboard."""

        def copied(text: str) -> None:
            if not text:
                self.message.emit("No text was read in this photo", 4000)
                return
            QGuiApplication.clipboard().setText(text)
            lines = text.count("\n") + 1
            self.message.emit(f"Copied {lines} line{'s' if lines != 1 else ''} of text", 3000)

        self._run_task(self.window.service.photo_text, item.id, done=copied, failed=self.problem.emit)

    def export_selection(self, target: str | None = None) -> None:
        items = self.selected_items()
        if not items:
            self.problem.emit("select photos to export first")
            return
        if not target:
            start = self.settings.value("last_export_dir", os.path.expanduser("~"))
            target = QFileDialog.getExistingDirectory(self.window, f"Export {len(items)} photo{'s' if len(items) != 1 else ''} to", start)
        if not target:
            return
        self.settings.setValue("last_export_dir", target)
        self.message.emit(f"Exporting {len(items)} photo{'s' if len(items) != 1 else ''}…", 0)
        self._run_task(
            export_files,
            [it.path for it in items],
            target,
            done=lambda n: self.message.emit(f"Exported {n} photo{'s' if n != 1 else ''} to {target}", 6000),
            failed=self.problem.emit,
        )

    def zoom(self, step: int) -> None:
        side = min(400, max(96, self.view.target_side + 32 * step))
        self.view.set_thumbnail_side(side)
