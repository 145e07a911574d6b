"""Side panel and dialogs: library folders and indexing, model packs, duplicates, first run."""

from __future__ import annotations

import importlib.util
import os
import threading

from PySide6.QtCore import QSize, Qt, Signal
from PySide6.QtGui import QImage, QPixmap
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QDoubleSpinBox,
    QFileDialog,
    QFrame,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QMessageBox,
    QProgressBar,
    QPushButton,
    QScrollArea,
    QSizePolicy,
    QStyle,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from .. import model_store, paths
from ..errors import PixfindError
from ..known_models import KNOWN_MODELS
from . import tasks
from .indexing import IndexProgress
from .results import _read_scaled, human_size


def heading(text: str, scale: float = 1.15) -> QLabel:
    label = QLabel(text)
    f = label.font()
    f.setPointSizeF(f.pointSizeF() * scale)
    f.setBold(True)
    label.setFont(f)
    return label


def muted(text: str = "") -> QLabel:
    label = QLabel(text)
    label.setWordWrap(True)
    label.setEnabled(False)
    return label


def duration(seconds: float | None) -> str:
    if seconds is None:
        return "estimating…"
    seconds = int(seconds)
    if seconds < 60:
        return f"{seconds} s left"
    if seconds < 3600:
        return f"{seconds // 60} min {seconds % 60:02d} s left"
    return f"{seconds // 3600} h {seconds % 3600 // 60:02d} min left"


# ---------------------------------------------------------------------- library panel


class LibraryPanel(QWidget):
    add_folder = Signal()
    remove_folder = Signal(int, str)
    reindex = Signal()
    pause = Signal(bool)
    cancel = Signal()
    folder_chosen = Signal(str)  # filter the results to this folder ("" for all)

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
        self.errors_button = QPushButton()
        self.errors_button.setFlat(True)
        self.errors_button.setStyleSheet("text-align: left; padding: 2px 0;")
        self.errors_button.clicked.connect(self.show_errors)
        self.errors_button.hide()
        col.addWidget(self.errors_button)
        self.skipped: list[tuple[str, str]] = []

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

    def set_overview(self, overview: dict) -> None:
        current = self.folders.currentItem().data(Qt.UserRole) if self.folders.currentItem() else None
        self.folders.blockSignals(True)
        self.folders.clear()
        for fid, path, count, present in overview["folders"]:
            name = os.path.basename(path.rstrip(os.sep)) or path
            item = QListWidgetItem(f"{name}  ·  {count:,}" + ("" if present else "  (not found)"))
            item.setToolTip(f"{path}\n{count:,} photos" + ("" if present else "\nfolder not found (unplugged drive?): its photos are kept"))
            item.setData(Qt.UserRole, fid)
            item.setData(Qt.UserRole + 1, path)
            item.setSizeHint(QSize(0, 30))
            item.setIcon(self.style().standardIcon(QStyle.SP_DirIcon if present else QStyle.SP_MessageBoxWarning))
            self.folders.addItem(item)
            if fid == current:
                item.setSelected(True)
                self.folders.setCurrentItem(item)
        self.folders.blockSignals(False)
        photos, embedded = overview["photos"], overview["embedded"]
        text = f"{photos:,} photos in {len(overview['folders'])} folder{'s' if len(overview['folders']) != 1 else ''}"
        if photos and embedded < photos:
            text += f" · {embedded:,} searchable"
        self.summary.setText(text if overview["folders"] else "No folders yet. Add one, or drop it here.")
        self.skipped = overview["skipped"]
        n = len(self.skipped)
        self.errors_button.setText(f"⚠ {n} file{'s' if n != 1 else ''} could not be read…")
        self.errors_button.setVisible(n > 0)

    def set_running(self, running: bool) -> None:
        self.progress_box.setVisible(running)
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
        self.progress_title.setText("Indexing paused" if p.paused else f"Indexing {p.done:,} of {p.total:,} photos")
        if p.paused:
            self.progress_detail.setText("Search works on what is indexed so far.")
        else:
            self.progress_detail.setText(f"{p.rate:.1f} photos/s · {duration(p.eta)}")

    def set_report(self, text: str) -> None:
        self.last_run.setText(text)

    def show_errors(self) -> None:
        dialog = QDialog(self)
        dialog.setWindowTitle("Files that could not be indexed")
        dialog.resize(760, 420)
        col = QVBoxLayout(dialog)
        col.addWidget(muted("These files were skipped. Fix or remove them, then re-index."))
        tree = QTreeWidget()
        tree.setHeaderLabels(["File", "Problem"])
        tree.setRootIsDecorated(False)
        tree.setObjectName("errors")
        for path, reason in self.skipped:
            it = QTreeWidgetItem([path, reason])
            it.setToolTip(0, path)
            it.setToolTip(1, reason)
            tree.addTopLevelItem(it)
        tree.header().setSectionResizeMode(0, QHeaderView.Interactive)
        tree.setColumnWidth(0, 420)
        col.addWidget(tree)
        buttons = QDialogButtonBox(QDialogButtonBox.Close)
        buttons.rejected.connect(dialog.reject)
        col.addWidget(buttons)
        dialog.open()
        self.errors_dialog = dialog

    def dragEnterEvent(self, event) -> None:  # noqa: N802
        if event.mimeData().hasUrls() and any(os.path.isdir(u.toLocalFile()) for u in event.mimeData().urls()):
            event.acceptProposedAction()

    def dropEvent(self, event) -> None:  # noqa: N802
        for url in event.mimeData().urls():
            if os.path.isdir(url.toLocalFile()):
                self.folder_dropped(url.toLocalFile())
        event.acceptProposedAction()

    folder_dropped = None  # set by the window


# ---------------------------------------------------------------------- models


def export_extra_missing() -> str | None:
    for module in ("torch", "open_clip", "onnx"):
        if importlib.util.find_spec(module) is None:
            return module
    return None


def pull_known(name: str, cancel: threading.Event, progress) -> str:
    """Download a known checkpoint (resumable) and export it into a pack, as `pixfind models pull`."""
    from ..download import download
    from ..commands.export import export_and_install

    known = KNOWN_MODELS[name]
    if known.hf_tokenizer:
        raise PixfindError(
            f"{name} needs the Hugging Face tokenizer {known.hf_tokenizer}: pull it from the command line with "
            f"`pixfind models pull {name} --tokenizer DIR`"
        )
    missing = export_extra_missing()
    if missing:
        raise PixfindError(
            f"turning a checkpoint into a model pack needs the 'export' extra ({missing} is not installed): "
            "pip install 'pixfind[export]', or import a ready-made pack instead"
        )
    dest = paths.downloads_dir() / known.filename
    dest.parent.mkdir(parents=True, exist_ok=True)
    digest = download(
        known.resolved_url(),
        dest,
        expected_sha256=known.sha256,
        progress=False,
        on_progress=lambda done, total: progress(("download", done, total)),
        cancel=cancel,
    )
    if cancel.is_set():
        raise PixfindError("cancelled")
    progress(("export", 0, 0))
    export_and_install(
        known.arch,
        pretrained=None,
        checkpoint=dest,
        tokenizer=None,
        precision="fp32",
        name=name,
        output=None,
        replace=False,
        source_extra={"url": known.resolved_url(), "known_model": name, "download_sha256": digest},
    )
    return name


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
        for m in KNOWN_MODELS.values():
            self.known.addItem(m.name, m.name)
            self.known.setItemData(self.known.count() - 1, m.description, Qt.ToolTipRole)
        pull_row.addWidget(self.known, 1)
        self.pull_button = QPushButton("Download")
        self.pull_button.clicked.connect(self._pull)
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
        for pack in model_store.list_installed():
            m = pack.manifest
            if m is None:
                it = QTreeWidgetItem(["⚠", pack.name, "", "", human_size(pack.size_bytes), pack.problem or ""])
            else:
                src = m.source
                origin = src.get("pretrained") or src.get("checkpoint") or src.get("package") or ""
                source = " ".join(s for s in (src.get("architecture", ""), os.path.basename(str(origin))) if s)
                it = QTreeWidgetItem(
                    ["✓" if pack.name == self.active else "", pack.name, str(m.embedding_dim), m.precision, human_size(pack.size_bytes), source]
                )
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
            model_store.set_default(name)
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
            model_store.remove(name)
        except PixfindError as e:
            QMessageBox.warning(self, "Models", str(e))
        if name == self.active:
            self.active = model_store.default_name()
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
                model_store.set_default(pack.name)
                self.active = pack.name
                self.model_changed.emit(pack.name)
            self.refresh()

        self._run_task(model_store.install, path, done=done, failed=self.pull_status.setText)

    def _pull(self) -> None:
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
            pull_known, name, self.cancel_event, progress=progress, done=lambda r: finished(r), failed=lambda e: finished(error=e)
        )

    def _cancel_pull(self) -> None:
        if self.cancel_event is not None:
            self.cancel_event.set()
            self.pull_status.setText("Cancelling… the partial download is kept and resumes next time.")


# ---------------------------------------------------------------------- duplicates


class DuplicatesDialog(tasks.TaskOwner, QDialog):
    """Groups of near-duplicates; tick what to keep, send the rest to the system trash."""

    trashed = Signal(int)
    restored = Signal(int)

    def __init__(self, backend, thumbnails_dir, parent=None):
        super().__init__(parent)
        self.backend = backend
        self.thumbnails_dir = str(thumbnails_dir)
        self.setWindowTitle("Duplicates")
        self.resize(900, 640)
        col = QVBoxLayout(self)
        col.setContentsMargins(16, 16, 16, 16)
        col.addWidget(heading("Near-duplicate photos"))
        row = QHBoxLayout()
        row.addWidget(muted("Photos in a group look alike. Untick the ones to move to the trash; the largest is kept by default."), 1)
        row.addWidget(QLabel("Similarity"))
        self.threshold = QDoubleSpinBox()
        self.threshold.setRange(0.80, 0.9999)
        self.threshold.setSingleStep(0.005)
        self.threshold.setDecimals(4)
        self.threshold.setValue(0.95)
        # editingFinished also fires when focus merely leaves the box (say, for the trash
        # button): search again only for a new value, or the click lands on a disabled button
        self.threshold.editingFinished.connect(self._threshold_edited)
        row.addWidget(self.threshold)
        find = QPushButton("Find")
        find.clicked.connect(self.find)
        row.addWidget(find)
        col.addLayout(row)
        self.scroll = QScrollArea()
        self.scroll.setWidgetResizable(True)
        self.scroll.setFrameShape(QFrame.NoFrame)
        col.addWidget(self.scroll, 1)
        self.undo_bar = UndoBar()
        self.undo_bar.undo_button.clicked.connect(lambda: self.undo_trash())
        col.addWidget(self.undo_bar)
        self.status = muted()
        col.addWidget(self.status)
        buttons = QHBoxLayout()
        buttons.addStretch(1)
        self.trash_button = QPushButton("Move unticked to Trash")
        self.trash_button.setEnabled(False)
        # clicked(bool) would land in a parameter: a slot without one, and it always asks first
        self.trash_button.clicked.connect(lambda: self.ask_to_trash())
        close = QPushButton("Close")
        close.clicked.connect(self.reject)
        buttons.addWidget(self.trash_button)
        buttons.addWidget(close)
        col.addLayout(buttons)
        self.checks: list[tuple[QCheckBox, object]] = []
        self.groups = []
        self._searched_at: float | None = None
        self.confirmation: QMessageBox | None = None
        self.last_trashed = None  # the TrashOutcome that Undo puts back

    def _threshold_edited(self) -> None:
        if self.threshold.value() != self._searched_at:
            self.find()

    def find(self) -> None:
        self._searched_at = self.threshold.value()
        self.status.setText("Comparing photos…")
        self.trash_button.setEnabled(False)
        self._gen = getattr(self, "_gen", 0) + 1
        gen = self._gen
        self._run_task(
            self.backend.duplicates, self.threshold.value(), done=lambda g: self._show(g, gen), failed=self.status.setText
        )

    def _show(self, groups, gen: int) -> None:
        if gen != self._gen:
            return
        self.groups = groups
        self.checks = []
        content = QWidget()
        col = QVBoxLayout(content)
        col.setSpacing(14)
        for n, group in enumerate(groups, 1):
            col.addWidget(heading(f"Group {n} · {len(group)} photos", 1.0))
            row = QHBoxLayout()
            row.setSpacing(10)
            for i, (item, sim) in enumerate(group):
                cell = QVBoxLayout()
                pic = QLabel()
                pic.setFixedSize(150, 150)
                pic.setAlignment(Qt.AlignCenter)
                dpr = self.devicePixelRatioF()
                source = f"{self.thumbnails_dir}/{item.thumbnail}" if item.thumbnail else item.path
                self._run_task(_read_scaled, source, int(150 * dpr), done=lambda img, pic=pic, dpr=dpr: _set_pixmap(pic, img, dpr))
                cell.addWidget(pic)
                check = QCheckBox(f"Keep  ({sim:.3f})" if i else "Keep")
                check.setChecked(i == 0)
                check.setToolTip(item.path)
                check.toggled.connect(self._count)
                name = muted(f"{item.name}\n{item.width}×{item.height} · {human_size(item.size)}")
                cell.addWidget(check)
                cell.addWidget(name)
                row.addLayout(cell)
                self.checks.append((check, item))
            row.addStretch(1)
            col.addLayout(row)
        col.addStretch(1)
        self.scroll.setWidget(content)
        if not groups:
            self.status.setText("No near-duplicates at this similarity.")
        self._count()

    def _count(self) -> None:
        n = sum(1 for c, _ in self.checks if not c.isChecked())
        self.trash_button.setEnabled(n > 0)
        if self.groups:
            self.status.setText(f"{len(self.groups)} groups · {n} photo{'s' if n != 1 else ''} marked for the trash")

    def marked(self) -> list[str]:
        return [item.path for c, item in self.checks if not c.isChecked()]

    def ask_to_trash(self) -> None:
        """Ask, naming how many photos and megabytes go; only a yes moves anything."""
        paths_ = self.marked()
        if not paths_:
            return
        from ..trash import total_size

        n = len(paths_)
        box = QMessageBox(QMessageBox.Question, "Move to Trash", "", QMessageBox.NoButton, self)
        box.setText(f"Move {n} photo{'s' if n != 1 else ''} ({human_size(total_size(paths_))}) to the Trash?")
        box.setInformativeText("They can be put back with Undo, or restored from the Trash later.")
        self.confirm_button = box.addButton("Move to Trash", QMessageBox.DestructiveRole)
        box.addButton(QMessageBox.Cancel)
        box.setDefaultButton(QMessageBox.Cancel)
        box.setWindowModality(Qt.WindowModal)
        box.finished.connect(lambda _: self._confirmed(box, paths_))
        self.confirmation = box
        box.open()

    def _confirmed(self, box: QMessageBox, paths_: list[str]) -> None:
        self.confirmation = None
        if box.clickedButton() is not self.confirm_button:
            return
        from ..trash import move_to_trash

        self.trash_button.setEnabled(False)
        self._run_task(move_to_trash, paths_, done=self._trashed, failed=self.status.setText)

    def _trashed(self, outcome) -> None:
        self.last_trashed = outcome
        n = len(outcome.moved)
        text = f"Moved {n} photo{'s' if n != 1 else ''} ({human_size(outcome.bytes)}) to the trash."
        if outcome.problems:
            text += f" {len(outcome.problems)} could not be moved: {outcome.problems[0]}"
        if outcome.moved and not outcome.restorable:
            text += " Restore them from the system Trash if needed."
        self.undo_bar.show_outcome(text, outcome.restorable)
        self.trashed.emit(n)
        self.find()

    def undo_trash(self) -> None:
        outcome, self.last_trashed = self.last_trashed, None
        if outcome is None:
            return
        from ..trash import restore

        self.undo_bar.undo_button.setEnabled(False)

        def done(result):
            n = len(result.restored)
            text = f"Put {n} photo{'s' if n != 1 else ''} back."
            if result.problems:
                text += f" {len(result.problems)} not restored: {result.problems[0]}"
            self.undo_bar.show_outcome(text, False)
            self.restored.emit(n)
            self.find()

        self._run_task(restore, outcome.moved, done=done, failed=self.status.setText)


class UndoBar(QFrame):
    """"Moved N photos to the trash" with Undo, shown after a move."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setObjectName("undoBar")
        self.setFrameShape(QFrame.StyledPanel)
        row = QHBoxLayout(self)
        row.setContentsMargins(10, 6, 10, 6)
        self.label = QLabel()
        self.label.setWordWrap(True)
        self.undo_button = QPushButton("Undo")
        row.addWidget(self.label, 1)
        row.addWidget(self.undo_button)
        self.hide()

    def show_outcome(self, text: str, can_undo: bool) -> None:
        self.label.setText(text)
        self.undo_button.setVisible(can_undo)
        self.undo_button.setEnabled(can_undo)
        self.show()


def _set_pixmap(label: QLabel, image: QImage, dpr: float) -> None:
    try:
        if image.isNull():
            label.setText("no preview")
            return
        pix = QPixmap.fromImage(image)
        pix.setDevicePixelRatio(dpr)
        label.setPixmap(pix)
    except RuntimeError:  # the dialog closed meanwhile
        pass


# ---------------------------------------------------------------------- first run / empty states


class MessagePage(QWidget):
    """A centred explanation with actions: first run (no model), empty library, no results."""

    def __init__(self, parent=None):
        super().__init__(parent)
        outer = QVBoxLayout(self)
        outer.addStretch(2)
        self.box = QWidget()
        self.box.setMaximumWidth(560)
        col = QVBoxLayout(self.box)
        col.setSpacing(12)
        self.title = heading("", 1.6)
        self.title.setAlignment(Qt.AlignCenter)
        self.title.setWordWrap(True)
        self.text = QLabel()
        self.text.setWordWrap(True)
        self.text.setAlignment(Qt.AlignCenter)
        self.text.setTextFormat(Qt.RichText)
        self.text.setOpenExternalLinks(False)
        self.text.setTextInteractionFlags(Qt.TextSelectableByMouse)
        col.addWidget(self.title)
        col.addWidget(self.text)
        self.buttons = QHBoxLayout()
        self.buttons.setSpacing(10)
        col.addSpacing(8)
        col.addLayout(self.buttons)
        row = QHBoxLayout()
        row.addStretch(1)
        row.addWidget(self.box, 100)
        row.addStretch(1)
        outer.addLayout(row)
        outer.addStretch(3)
        self._buttons: list[QPushButton] = []

    def show_message(self, title: str, text: str, actions: list[tuple[str, object]] = ()) -> None:
        self.title.setText(title)
        self.text.setText(text)
        for b in self._buttons:
            b.deleteLater()
        self._buttons = []
        while self.buttons.count():
            self.buttons.takeAt(0)
        self.buttons.addStretch(1)
        for i, (label, slot) in enumerate(actions):
            b = QPushButton(label)
            b.setMinimumHeight(34)
            b.setMinimumWidth(150)
            if i == 0:
                b.setDefault(True)
            b.clicked.connect(slot)
            self.buttons.addWidget(b)
            self._buttons.append(b)
        self.buttons.addStretch(1)
