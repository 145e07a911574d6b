"""The files indexing skipped, and what can be done about each: show it, retry it, hide it."""

from __future__ import annotations

import json
import os

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QDialog,
    QDialogButtonBox,
    QHBoxLayout,
    QHeaderView,
    QMenu,
    QPushButton,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
)

from ..services import SkippedInfo
from .detail import reveal_in_file_manager
from .widgets import muted

HIDDEN_KEY = "hidden_skipped"


def _settings():
    from .settings import settings

    return settings()


def hidden_paths() -> set[str]:
    """Skipped files the user chose not to be told about again."""
    raw = _settings().value(HIDDEN_KEY, "[]")
    try:
        paths = json.loads(raw) if isinstance(raw, str) else []
    except ValueError:
        return set()
    return {p for p in paths if isinstance(p, str)} if isinstance(paths, list) else set()


def set_hidden_paths(paths: set[str]) -> None:
    s = _settings()
    s.setValue(HIDDEN_KEY, json.dumps(sorted(paths)))  # JSON keeps undecodable file names exact
    s.sync()


class SkippedFilesDialog(QDialog):
    """Each skipped file with its reason; Show in folder, Retry (index it again) and Hide."""

    retry = Signal(list)  # paths to index again

    def __init__(self, skipped: list[SkippedInfo], parent=None):
        super().__init__(parent)
        self.setWindowTitle("Files that could not be indexed")
        self.resize(780, 440)
        self.skipped: list[SkippedInfo] = []
        self.retrying: set[str] = set()
        self.indexing = False
        col = QVBoxLayout(self)
        col.setContentsMargins(16, 16, 16, 16)
        col.setSpacing(8)
        col.addWidget(muted("These files were skipped while indexing. Fix or replace a file, then Retry; Hide the ones to leave alone."))
        self.tree = QTreeWidget()
        self.tree.setObjectName("errors")
        self.tree.setHeaderLabels(["File", "Problem"])
        self.tree.setRootIsDecorated(False)
        self.tree.setSelectionMode(QAbstractItemView.ExtendedSelection)
        self.tree.header().setSectionResizeMode(0, QHeaderView.Interactive)
        self.tree.setColumnWidth(0, 430)
        self.tree.itemSelectionChanged.connect(self._selected)
        self.tree.itemDoubleClicked.connect(lambda *_: self.show_in_folder())
        self.tree.setContextMenuPolicy(Qt.CustomContextMenu)
        self.tree.customContextMenuRequested.connect(self._menu)
        col.addWidget(self.tree, 1)
        row = QHBoxLayout()
        self.reveal_button = QPushButton("Show in folder")
        self.reveal_button.setToolTip("Open the file's folder with the file selected")
        self.reveal_button.clicked.connect(lambda: self.show_in_folder())
        self.retry_button = QPushButton("Retry")
        self.retry_button.setToolTip("Index the selected files again (after fixing or replacing them)")
        self.retry_button.clicked.connect(lambda: self.retry_selected())
        self.hide_button = QPushButton("Hide")
        self.hide_button.setToolTip("Do not list the selected files again (they stay on disk, unindexed)")
        self.hide_button.clicked.connect(lambda: self.hide_selected())
        self.show_hidden = QCheckBox("Show hidden files")
        self.show_hidden.toggled.connect(lambda _on: self._fill())
        for w in (self.reveal_button, self.retry_button, self.hide_button):
            row.addWidget(w)
        row.addStretch(1)
        row.addWidget(self.show_hidden)
        col.addLayout(row)
        self.status = muted()
        self.status.setObjectName("skippedStatus")
        self.status.setWordWrap(True)
        col.addWidget(self.status)
        buttons = QDialogButtonBox(QDialogButtonBox.Close)
        buttons.rejected.connect(self.reject)
        col.addWidget(buttons)
        self.set_skipped(skipped)

    # ------------------------------------------------------------------ the list

    def set_skipped(self, skipped: list[SkippedInfo]) -> None:
        """A new list from the library (after indexing): tell how the files retried fared."""
        self.skipped = list(skipped)
        if self.retrying and not self.indexing:
            still = {s.path: s.reason for s in self.skipped}
            fixed = sorted(p for p in self.retrying if p not in still)
            failed = sorted(p for p in self.retrying if p in still)
            parts = []
            if fixed:
                parts.append(f"Indexed: {', '.join(os.path.basename(p) for p in fixed)}.")
            if failed:
                parts.append(" ".join(f"{os.path.basename(p)} still cannot be read: {still[p]}." for p in failed))
            self.status.setText(" ".join(parts))
            self.retrying = set()
        self._fill()

    def set_indexing(self, running: bool) -> None:
        self.indexing = running

    def _fill(self) -> None:
        hidden = hidden_paths()
        selected = set(self.selected_paths())
        self.tree.clear()
        shown_hidden = self.show_hidden.isChecked()
        for s in self.skipped:
            is_hidden = s.path in hidden
            if is_hidden and not shown_hidden:
                continue
            it = QTreeWidgetItem([s.path, s.reason + ("  (hidden)" if is_hidden else "")])
            it.setData(0, Qt.UserRole, s.path)
            it.setToolTip(0, s.path)
            it.setToolTip(1, s.reason)
            self.tree.addTopLevelItem(it)
            it.setSelected(s.path in selected)
        n_hidden = sum(1 for s in self.skipped if s.path in hidden)
        self.show_hidden.setText(f"Show hidden files ({n_hidden})")
        self.show_hidden.setEnabled(bool(n_hidden) or shown_hidden)
        self._selected()

    def selected_paths(self) -> list[str]:
        return [it.data(0, Qt.UserRole) for it in self.tree.selectedItems()]

    def _selected(self) -> None:
        paths = self.selected_paths()
        hidden = hidden_paths()
        self.reveal_button.setEnabled(len(paths) == 1)
        self.retry_button.setEnabled(bool(paths))
        self.hide_button.setEnabled(bool(paths))
        self.hide_button.setText("Unhide" if paths and all(p in hidden for p in paths) else "Hide")

    def _menu(self, pos) -> None:
        if not self.selected_paths():
            return
        menu = QMenu(self)
        menu.addAction("Show in folder", self.show_in_folder).setEnabled(len(self.selected_paths()) == 1)
        menu.addAction("Retry", self.retry_selected)
        menu.addAction(self.hide_button.text(), self.hide_selected)
        menu.exec(self.tree.viewport().mapToGlobal(pos))

    # ------------------------------------------------------------------ actions

    def show_in_folder(self) -> None:
        paths = self.selected_paths()
        if len(paths) == 1:
            reveal_in_file_manager(paths[0])

    def retry_selected(self) -> None:
        paths = self.selected_paths()
        if not paths:
            return
        self.retrying |= set(paths)
        n = len(paths)
        self.status.setText(f"Retrying {n} file{'s' if n != 1 else ''}… the list updates when indexing ends.")
        self.retry.emit(paths)

    def hide_selected(self) -> None:
        paths = set(self.selected_paths())
        if not paths:
            return
        hidden = hidden_paths()
        if paths <= hidden:
            hidden -= paths
            self.status.setText(f"{len(paths)} file{'s' if len(paths) != 1 else ''} listed again.")
        else:
            hidden |= paths
            self.status.setText(f"{len(paths)} file{'s' if len(paths) != 1 else ''} hidden. “Show hidden files” lists them again.")
        set_hidden_paths(hidden)
        self._fill()
        self.hidden_changed()

    def hidden_changed(self) -> None:
        """Tell the library panel, whose count leaves hidden files out."""
        parent = self.parent()
        if parent is not None and hasattr(parent, "update_skipped_count"):
            parent.update_skipped_count()
