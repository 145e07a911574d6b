"""The library side panel: folders with photo counts, indexing progress, skipped files."""

from __future__ import annotations

import os

from PySide6.QtCore import QSize, Qt, Signal
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QFrame,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QProgressBar,
    QPushButton,
    QSizePolicy,
    QStyle,
    QVBoxLayout,
    QWidget,
)

from ..services import LibraryOverview, SkippedInfo
from .indexing import IndexProgress
from .widgets import heading, muted


def duration(seconds: float | None) -> str:
    if seconds is None:
        return "estimating…"
    seconds = int(seconds)
    if seconds < 60:
        return f"{seconds} s left"
    if seconds < 3600:
        return f"{seconds // 60} min {seconds % 60:02d} s left"
    return f"{seconds // 3600} h {seconds % 3600 // 60:02d} min left"



class LibraryPanel(QWidget):
    add_folder = Signal()
    remove_folder = Signal(int, str)
    reindex = Signal()
    pause = Signal(bool)
    cancel = Signal()
    folder_chosen = Signal(str)  # filter the results to this folder ("" for all)
    folder_dropped = Signal(str)
    ocr_toggled = Signal(bool)  # the user switched reading the text in photos on or off

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setAcceptDrops(True)
        col = QVBoxLayout(self)
        col.setContentsMargins(12, 12, 12, 12)
        col.setSpacing(8)
        top = QHBoxLayout()
        top.addWidget(heading("Library"))
        top.addStretch(1)
        self.add_button = QPushButton("Add folder…")
        self.add_button.setToolTip("Add a folder of photos (or drop folders on the window)")
        self.add_button.clicked.connect(self.add_folder)
        top.addWidget(self.add_button)
        col.addLayout(top)
        self.summary = muted()
        col.addWidget(self.summary)
        self.folders = QListWidget()
        self.folders.setObjectName("folders")
        self.folders.setToolTip("Folders whose photos pixfind searches. Select one to show only its photos.")
        self.folders.setFrameShape(QFrame.NoFrame)
        self.folders.setTextElideMode(Qt.ElideMiddle)
        self.folders.setVerticalScrollMode(QAbstractItemView.ScrollPerPixel)
        self.folders.itemSelectionChanged.connect(self._selection)
        self.folders.setSizePolicy(QSizePolicy.Preferred, QSizePolicy.Expanding)
        col.addWidget(self.folders, 1)
        row = QHBoxLayout()
        self.remove_button = QPushButton("Remove")
        self.remove_button.setToolTip("Forget this folder (the photos stay on disk)")
        self.remove_button.setEnabled(False)
        self.remove_button.clicked.connect(self._remove)
        self.reindex_button = QPushButton("Re-index")
        self.reindex_button.setToolTip("Look for new, changed and deleted photos in every folder")
        self.reindex_button.clicked.connect(self.reindex)
        row.addWidget(self.reindex_button)
        row.addWidget(self.remove_button)
        col.addLayout(row)
        self.ocr_box = QCheckBox("Read text in photos (OCR)")
        self.ocr_box.setToolTip(
            'Find photos by the words in them: search for "quoted words".\n'
            "The text is read after indexing, on this computer; it takes a while for a large library."
        )
        self.ocr_box.toggled.connect(self.ocr_toggled)
        col.addWidget(self.ocr_box)

        # indexing progress
        self.progress_box = QFrame()
        box = QVBoxLayout(self.progress_box)
        box.setContentsMargins(0, 8, 0, 0)
        box.setSpacing(4)
        self.progress_title = QLabel("Indexing…")
        self.progress = QProgressBar()
        self.progress.setTextVisible(False)
        self.progress.setFixedHeight(8)
        self.progress_detail = muted()
        buttons = QHBoxLayout()
        self.pause_button = QPushButton("Pause")
        self.pause_button.setCheckable(True)
        self.pause_button.toggled.connect(self._pause)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.clicked.connect(self.cancel)
        buttons.addWidget(self.pause_button)
        buttons.addWidget(self.cancel_button)
        for w in (self.progress_title, self.progress, self.progress_detail):
            box.addWidget(w)
        box.addLayout(buttons)
        self.progress_box.hide()
        col.addWidget(self.progress_box)
        self.last_run = muted()
        col.addWidget(self.last_run)
        self.error_row = QWidget()  # an indexing error: an icon and a clear error colour, not grey
        err = QHBoxLayout(self.error_row)
        err.setContentsMargins(0, 0, 0, 0)
        icon = QLabel()
        icon.setPixmap(self.style().standardIcon(QStyle.SP_MessageBoxWarning).pixmap(16, 16))
        icon.setAlignment(Qt.AlignTop)
        self.error_text = QLabel()
        self.error_text.setObjectName("error")
        self.error_text.setWordWrap(True)
        err.addWidget(icon)
        err.addWidget(self.error_text, 1)
        self.error_row.hide()
        col.addWidget(self.error_row)
        self.errors_button = QPushButton()
        self.errors_button.setFlat(True)
        self.errors_button.setStyleSheet("text-align: left; padding: 2px 0;")
        self.errors_button.clicked.connect(self.show_errors)
        self.errors_button.hide()
        col.addWidget(self.errors_button)
        self.skipped: list[SkippedInfo] = []
        self.errors_dialog = None

    def _selection(self) -> None:
        item = self.folders.currentItem()
        self.remove_button.setEnabled(item is not None and self.folders.selectedItems() != [])
        self.folder_chosen.emit(item.data(Qt.UserRole + 1) if item is not None and self.folders.selectedItems() else "")

    def _remove(self) -> None:
        item = self.folders.currentItem()
        if item is not None:
            self.remove_folder.emit(item.data(Qt.UserRole), item.data(Qt.UserRole + 1))

    def _pause(self, paused: bool) -> None:
        self.pause_button.setText("Resume" if paused else "Pause")
        self.pause.emit(paused)

    def set_overview(self, overview: LibraryOverview) -> None:
        current = self.folders.currentItem().data(Qt.UserRole) if self.folders.currentItem() else None
        self.folders.blockSignals(True)
        self.folders.clear()
        for folder in overview.folders:
            path, count, present = folder.path, folder.photos, folder.present
            name = os.path.basename(path.rstrip(os.sep)) or path
            item = QListWidgetItem(f"{name}  ·  {count:,}" + ("" if present else "  (not found)"))
            item.setToolTip(f"{path}\n{count:,} photos" + ("" if present else "\nfolder not found (unplugged drive?): its photos are kept"))
            item.setData(Qt.UserRole, folder.id)
            item.setData(Qt.UserRole + 1, path)
            item.setSizeHint(QSize(0, 30))
            item.setIcon(self.style().standardIcon(QStyle.SP_DirIcon if present else QStyle.SP_MessageBoxWarning))
            self.folders.addItem(item)
            if folder.id == current:
                item.setSelected(True)
                self.folders.setCurrentItem(item)
        self.folders.blockSignals(False)
        photos, embedded, n_folders = overview.photos, overview.embedded, len(overview.folders)
        text = f"{photos:,} photo{'s' if photos != 1 else ''} in {n_folders} folder{'s' if n_folders != 1 else ''}"
        if photos and embedded < photos:
            text += f" · {embedded:,} searchable"
        self.set_ocr(overview.text_read is not None)
        if overview.text_read is not None and photos and overview.text_read[0] < overview.text_read[1]:
            text += f" · text read in {overview.text_read[0]:,}"
        self.summary.setText(text if overview.folders else "No folders yet. Add one, or drop it here.")
        self.skipped = overview.skipped
        self.update_skipped_count()
        if getattr(self, "errors_dialog", None) is not None:
            self.errors_dialog.set_skipped(self.skipped)

    def set_ocr(self, on: bool) -> None:
        """Show the library's OCR switch (without sending ocr_toggled)."""
        self.ocr_box.blockSignals(True)
        self.ocr_box.setChecked(on)
        self.ocr_box.blockSignals(False)

    def set_running(self, running: bool) -> None:
        self.progress_box.setVisible(running)
        if getattr(self, "errors_dialog", None) is not None:
            self.errors_dialog.set_indexing(running)
        self.reindex_button.setEnabled(not running)
        if running:
            self.pause_button.blockSignals(True)
            self.pause_button.setChecked(False)
            self.pause_button.setText("Pause")
            self.pause_button.blockSignals(False)
            self.progress.setRange(0, 0)
            self.progress_title.setText("Looking for photos…")
            self.progress_detail.setText("")

    def set_progress(self, p: IndexProgress) -> None:
        if p.total == 0:
            self.progress.setRange(0, 0)
            return
        self.progress.setRange(0, p.total)
        self.progress.setValue(p.done)
        photos = f"{p.done:,} of {p.total:,} photo{'s' if p.total != 1 else ''}"
        if p.phase == "text":
            self.progress_title.setText("Reading text paused" if p.paused else f"Reading text in photos: {photos}")
        else:
            self.progress_title.setText("Indexing paused" if p.paused else f"Indexing {photos}")
        if p.paused:
            self.progress_detail.setText("Search works on what is indexed so far.")
        else:
            self.progress_detail.setText(f"{p.rate:.1f} photos/s · {duration(p.eta)}")

    def set_report(self, text: str) -> None:
        self.last_run.setText(text)
        self.error_row.hide()

    def set_error(self, text: str) -> None:
        from .styles import error_colour

        self.error_text.setStyleSheet(f"color: {error_colour(self.palette()).name()};")
        self.error_text.setText(text)
        self.error_row.show()

    def show_errors(self) -> None:
        """The skipped files, each with Show in folder, Retry and Hide (gui/skipped_dialog.py)."""
        from .skipped_dialog import SkippedFilesDialog

        dialog = SkippedFilesDialog(self.skipped, self)
        dialog.retry.connect(lambda _paths: self.reindex.emit())  # a refresh indexes every skipped file again
        dialog.set_indexing(self.progress_box.isVisible())
        dialog.finished.connect(lambda _result: setattr(self, "errors_dialog", None))
        dialog.open()
        self.errors_dialog = dialog

    def update_skipped_count(self) -> None:
        """The skipped files link: files hidden by the user are not counted."""
        from .skipped_dialog import hidden_paths

        hidden = hidden_paths() if self.skipped else set()
        n = sum(1 for s in self.skipped if s.path not in hidden)
        if n:
            self.errors_button.setText(f"⚠ {n} file{'s' if n != 1 else ''} could not be read…")
        else:
            h = len(self.skipped)
            self.errors_button.setText(f"{h} unreadable file{'s' if h != 1 else ''} hidden…")
        self.errors_button.setVisible(bool(self.skipped))

    def dragEnterEvent(self, event) -> None:
        if event.mimeData().hasUrls() and any(os.path.isdir(u.toLocalFile()) for u in event.mimeData().urls()):
            event.acceptProposedAction()

    def dropEvent(self, event) -> None:
        for url in event.mimeData().urls():
            if os.path.isdir(url.toLocalFile()):
                self.folder_dropped.emit(url.toLocalFile())
        event.acceptProposedAction()
