"""The models dialog: installed packs, the active one, import a pack, pull a known model."""

from __future__ import annotations

import os
import threading

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFrame,
    QHBoxLayout,
    QLabel,
    QMessageBox,
    QProgressBar,
    QPushButton,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
)

from ..errors import PixfindError
from ..services import models as model_service
from . import tasks
from .images import human_size
from .widgets import heading, muted


def ask_for_pack(parent) -> str | None:
    """A model pack folder, else (the folder picker cancelled) a .zip; None when both are cancelled."""
    path = QFileDialog.getExistingDirectory(parent, "Import a model pack folder (or cancel to pick a .zip)")
    if not path:
        path, _ = QFileDialog.getOpenFileName(parent, "Import a model pack (.zip)", "", "Model packs (*.zip)")
    return path or None


def pull_known_model(name: str, cancel: threading.Event, progress):
    """The model service's pull, its progress passed on as one (stage, done, total) value per call."""
    return model_service.pull(name, cancel=cancel, progress=lambda stage, done, total: progress((stage, done, total)))


class ModelsDialog(tasks.TaskOwner, QDialog):
    """Installed packs, the active one, import a pack, pull a known model."""

    model_changed = Signal(str)

    def __init__(self, active: str | None, parent=None):
        super().__init__(parent)
        self.setWindowTitle("Models")
        self.resize(720, 460)
        self.active = active
        self.cancel_event: threading.Event | None = None
        col = QVBoxLayout(self)
        col.setContentsMargins(16, 16, 16, 16)
        col.setSpacing(10)
        col.addWidget(heading("Models"))
        col.addWidget(muted("A model pack turns photos and words into vectors. Photos are indexed once per model."))
        self.table = QTreeWidget()
        self.table.setObjectName("models")
        self.table.setHeaderLabels(["", "Name", "Dim", "Precision", "Size", "Source"])
        self.table.setRootIsDecorated(False)
        self.table.setSelectionMode(QAbstractItemView.SingleSelection)
        self.table.itemSelectionChanged.connect(self._selected)
        self.table.itemDoubleClicked.connect(lambda *_: self._use())
        col.addWidget(self.table, 1)
        row = QHBoxLayout()
        self.use_button = QPushButton("Use this model")
        self.use_button.clicked.connect(self._use)
        self.remove_button = QPushButton("Remove")
        self.remove_button.clicked.connect(self._remove)
        import_button = QPushButton("Import pack…")
        import_button.setToolTip("Install a model pack folder or .zip")
        import_button.clicked.connect(self._import)
        row.addWidget(self.use_button)
        row.addWidget(self.remove_button)
        row.addStretch(1)
        row.addWidget(import_button)
        col.addLayout(row)
        line = QFrame()
        line.setFrameShape(QFrame.HLine)
        line.setFrameShadow(QFrame.Sunken)
        col.addWidget(line)
        pull_row = QHBoxLayout()
        pull_row.addWidget(QLabel("Download:"))
        self.known = QComboBox()
        for m in model_service.known():
            self.known.addItem(m.name, m.name)
            self.known.setItemData(self.known.count() - 1, m.description, Qt.ToolTipRole)
        pull_row.addWidget(self.known, 1)
        self.pull_button = QPushButton("Download")
        self.pull_button.clicked.connect(self._start_pull)
        pull_row.addWidget(self.pull_button)
        col.addLayout(pull_row)
        self.pull_progress = QProgressBar()
        self.pull_progress.hide()
        self.pull_status = muted()
        self.pull_cancel = QPushButton("Cancel download")
        self.pull_cancel.hide()
        self.pull_cancel.clicked.connect(self._cancel_pull)
        col.addWidget(self.pull_progress)
        col.addWidget(self.pull_status)
        col.addWidget(self.pull_cancel, 0, Qt.AlignRight)
        buttons = QDialogButtonBox(QDialogButtonBox.Close)
        buttons.rejected.connect(self.reject)
        col.addWidget(buttons)
        self.refresh()

    def refresh(self) -> None:
        self.table.clear()
        for pack in model_service.installed():
            if pack.problem is not None:
                it = QTreeWidgetItem(["⚠", pack.name, "", "", human_size(pack.size_bytes), pack.problem])
            else:
                mark = "✓" if pack.name == self.active else ""
                it = QTreeWidgetItem([mark, pack.name, str(pack.dim), pack.precision, human_size(pack.size_bytes), pack.source])
            it.setData(1, Qt.UserRole, pack.name)
            self.table.addTopLevelItem(it)
        for i in range(5):
            self.table.resizeColumnToContents(i)
        self._selected()

    def _name(self) -> str | None:
        it = self.table.currentItem()
        return it.data(1, Qt.UserRole) if it is not None and self.table.selectedItems() else None

    def _selected(self) -> None:
        name = self._name()
        self.use_button.setEnabled(name is not None and name != self.active)
        self.remove_button.setEnabled(name is not None)

    def _use(self) -> None:
        name = self._name()
        if name is None:
            return
        try:
            model_service.use(name)
        except PixfindError as e:
            QMessageBox.warning(self, "Models", str(e))
            return
        self.active = name
        self.refresh()
        self.model_changed.emit(name)

    def _remove(self) -> None:
        name = self._name()
        if name is None:
            return
        if QMessageBox.question(self, "Remove model", f"Remove the model pack {name!r}? Photos indexed with it keep their vectors in the library.") != QMessageBox.Yes:
            return
        try:
            model_service.remove(name)
        except PixfindError as e:
            QMessageBox.warning(self, "Models", str(e))
        if name == self.active:
            self.active = model_service.active()
            self.model_changed.emit(self.active or "")
        self.refresh()

    def _import(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Import a model pack", "", "Model packs (*.zip pack.json);;All files (*)")
        if not path:
            return
        if os.path.basename(path) == "pack.json":
            path = os.path.dirname(path)
        self.import_pack(path)

    def import_pack(self, path: str) -> None:
        self.pull_status.setText(f"Installing {os.path.basename(path)}…")

        def done(pack):
            self.pull_status.setText(f"Installed {pack.name}.")
            if self.active is None:
                model_service.use(pack.name)
                self.active = pack.name
                self.model_changed.emit(pack.name)
            self.refresh()

        self._run_task(model_service.import_pack, path, done=done, failed=self.pull_status.setText)

    def _start_pull(self) -> None:
        name = self.known.currentData()
        self.cancel_event = threading.Event()
        self.pull_button.setEnabled(False)
        self.pull_progress.show()
        self.pull_progress.setRange(0, 0)
        self.pull_cancel.show()
        self.pull_status.setText(f"Starting the download of {name}…")

        def progress(p):
            stage, done, total = p
            if stage == "download":
                if total:
                    self.pull_progress.setRange(0, 1000)
                    self.pull_progress.setValue(int(1000 * done / total))
                self.pull_status.setText(f"Downloading {name}: {human_size(done)}" + (f" of {human_size(total)}" if total else ""))
            else:
                self.pull_progress.setRange(0, 0)
                self.pull_status.setText(f"Converting {name} into a model pack (a few minutes)…")

        def finished(result=None, error=None):
            self.pull_button.setEnabled(True)
            self.pull_progress.hide()
            self.pull_cancel.hide()
            if error:
                self.pull_status.setText(error)
            else:
                self.pull_status.setText(f"Installed {result}.")
                self.refresh()

        self._run_task(
            pull_known_model, name, self.cancel_event, progress=progress, done=lambda r: finished(r.name), failed=lambda e: finished(error=e)
        )

    def _cancel_pull(self) -> None:
        if self.cancel_event is not None:
            self.cancel_event.set()
            self.pull_status.setText("Cancelling… the partial download is kept and resumes next time.")
