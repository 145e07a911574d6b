"""The models dialog: installed packs, the active one, import a pack, pull a known model."""

from __future__ import annotations

import os
import threading

from PySide6.QtCore import QObject, Qt, QTimer, Signal
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFrame,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QMessageBox,
    QProgressBar,
    QPushButton,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
)

from ..errors import Cancelled, PixfindError
from ..services import models as model_service
from . import tasks
from .images import human_size
from .widgets import heading, muted


class PackFileDialog(QFileDialog):
    """One dialog for both kinds of model pack: select a pack folder or a .zip, then Import.

    Qt's own (non-native) dialog in folder mode, showing files too: a folder with a pack.json
    is imported as it is, a .zip (or a pack.json) is imported as a file, and any other folder
    is opened to look inside. ``chosen`` carries the path.
    """

    chosen = Signal(str)

    HINT = "A model pack is a folder with a pack.json inside, or a .zip of one: select either, then Import."

    def __init__(self, parent=None, start: str | None = None):
        super().__init__(parent, "Import a model pack (a folder or a .zip)")
        self.setObjectName("packFileDialog")
        self.setOption(QFileDialog.DontUseNativeDialog, True)
        self.setFileMode(QFileDialog.Directory)
        self.setOption(QFileDialog.ShowDirsOnly, False)
        self.setNameFilters(["Model packs (*.zip pack.json)", "All files (*)"])
        self.setLabelText(QFileDialog.Accept, "Import")
        self.setLabelText(QFileDialog.FileName, "Pack:")
        if start:
            self.setDirectory(start)
        self.hint = QLabel(self.HINT)
        self.hint.setObjectName("packHint")
        self.hint.setWordWrap(True)
        grid = self.layout()
        if isinstance(grid, QGridLayout):
            grid.addWidget(self.hint, grid.rowCount(), 0, 1, grid.columnCount())
        self.path: str | None = None
        # Folder mode disables Import on a file; a .zip or a pack.json is a pack too.
        self.currentChanged.connect(lambda _path: QTimer.singleShot(0, self._enable_import))

    def _import_button(self) -> QPushButton | None:
        box = self.findChild(QDialogButtonBox)
        return box.button(QDialogButtonBox.Open) if box is not None else None

    def _enable_import(self) -> None:
        files = self.selectedFiles()
        button = self._import_button()
        if button is not None and files and os.path.isfile(files[0]):
            name = os.path.basename(files[0])
            button.setEnabled(name == "pack.json" or name.lower().endswith(".zip"))

    def accept(self) -> None:
        files = self.selectedFiles()
        path = files[0] if files else self.directory().absolutePath()
        if os.path.isdir(path):
            if os.path.isfile(os.path.join(path, "pack.json")):
                return self._choose(path)
            if os.path.normpath(path) != os.path.normpath(self.directory().absolutePath()):
                self.setDirectory(path)  # an ordinary folder: look inside it
                return None
            self.hint.setText(f"{os.path.basename(path) or path} has no pack.json. " + self.HINT)
            return None
        if os.path.basename(path) == "pack.json":
            return self._choose(os.path.dirname(path))
        if os.path.isfile(path) and path.lower().endswith(".zip"):
            return self._choose(path)
        self.hint.setText(f"{os.path.basename(path)} is not a model pack. " + self.HINT)
        return None

    def _choose(self, path: str) -> None:
        self.path = path
        QDialog.accept(self)
        self.chosen.emit(path)


def choose_pack(parent, on_chosen) -> PackFileDialog:
    """Open the pack chooser (window-modal); ``on_chosen(path)`` once a pack is picked."""
    dialog = PackFileDialog(parent)
    dialog.setAttribute(Qt.WA_DeleteOnClose)
    dialog.chosen.connect(on_chosen)
    dialog.open()
    return dialog


def pull_known_model(name: str, cancel: threading.Event, tokenizer: str | None = None, *, progress):
    """The model service's pull, its progress passed on as one (stage, done, total) value per call."""
    return model_service.pull(
        name, tokenizer=tokenizer, cancel=cancel, progress=lambda stage, done, total: progress((stage, done, total))
    )


TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json")


def needs_tokenizer(error: str) -> bool:
    """The pull's error for a model whose Hugging Face tokenizer was not given."""
    return "needs the Hugging Face tokenizer" in error


def tokenizer_help(name: str, hf_name: str) -> str:
    """What to do when no tokenizer folder was chosen, in the window's words (no command-line flags)."""
    return (
        f"{name} needs the tokenizer of {hf_name}, which is not bundled: save its files "
        f"({', '.join(TOKENIZER_FILES)}) from the model's Hugging Face page into a folder, "
        "then click Download again and choose that folder."
    )


def find_tokenizer(hf_name: str, remembered: str | None = None) -> str | None:
    """A folder holding the tokenizer files of ``hf_name``: the one chosen last time, else the
    Hugging Face cache (``HF_HUB_CACHE``, ``HF_HOME``/hub or ~/.cache/huggingface/hub)."""
    if remembered and os.path.isfile(os.path.join(remembered, "tokenizer.json")):
        return remembered
    roots = [os.environ.get("HF_HUB_CACHE"), os.path.join(os.environ["HF_HOME"], "hub") if os.environ.get("HF_HOME") else None]
    roots.append(os.path.join(os.path.expanduser("~"), ".cache", "huggingface", "hub"))
    snapshots = "models--" + hf_name.replace("/", "--")
    for root in filter(None, roots):
        folder = os.path.join(root, snapshots, "snapshots")
        try:
            found = sorted((os.path.join(folder, d) for d in os.listdir(folder)), key=os.path.getmtime, reverse=True)
        except OSError:
            continue
        for candidate in found:
            if os.path.isfile(os.path.join(candidate, "tokenizer.json")):
                return candidate
    return None


def install_starter_model(cancel: threading.Event, *, progress):
    """Build and install the starter model; ``cancel`` stops it at its next step, nothing left behind."""

    def log(message: str) -> None:
        if cancel.is_set():
            raise Cancelled("installing the starter model was cancelled")
        progress(message)

    return model_service.install_starter(log=log)


# The starter build's steps (model_training/starter/build.py), in the window's words.
STARTER_STEPS = (
    ("loading", "Loading the image and text networks…"),
    ("embedding", "Teaching it a thousand everyday things…"),
    ("exporting", "Converting the networks for pixfind…"),
    ("quantising", "Making the text part smaller…"),
)


class StarterInstall(tasks.TaskOwner, QObject):
    """Installing the starter model in the background: progress as (step, of, text), cancellable."""

    progressed = Signal(int, int, str)
    finished = Signal(object)  # the installed model
    failed = Signal(str)

    def __init__(self, parent=None):
        super().__init__(parent)
        self.cancel_event = threading.Event()
        self.running = False

    def start(self) -> None:
        self.running = True
        self.progressed.emit(0, len(STARTER_STEPS) + 1, "Starting…")
        self._run_task(install_starter_model, self.cancel_event, progress=self._step, done=self._done, failed=self._failed)

    def cancel(self) -> None:
        self.cancel_event.set()

    def _step(self, message: str) -> None:
        for i, (prefix, text) in enumerate(STARTER_STEPS):
            if message.startswith(prefix):
                self.progressed.emit(i + 1, len(STARTER_STEPS) + 1, text)
                return
        self.progressed.emit(-1, len(STARTER_STEPS) + 1, message)

    def _done(self, pack) -> None:
        self.running = False
        self.finished.emit(pack)

    def _failed(self, message: str) -> None:
        self.running = False
        self.failed.emit(message)


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
        self.pull_button.clicked.connect(lambda: self._start_pull())
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
        self.pack_dialog = choose_pack(self, self.import_pack)

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

    def _start_pull(self, tokenizer: str | None = None) -> None:
        name = self.known.currentData()
        model = next((m for m in model_service.known() if m.name == name), None)
        if tokenizer is None and model is not None and model.hf_tokenizer:
            tokenizer = find_tokenizer(model.hf_tokenizer, self._settings_value("tokenizer_dir"))
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
            if error and model is not None and model.hf_tokenizer and needs_tokenizer(error):
                self._ask_for_tokenizer(model.name, model.hf_tokenizer)
            elif error:
                self.pull_status.setText(error)
            else:
                self.pull_status.setText(f"Installed {result}.")
                self.refresh()

        self._run_task(
            pull_known_model, name, self.cancel_event, tokenizer,
            progress=progress, done=lambda r: finished(r.name), failed=lambda e: finished(error=e),
        )  # fmt: skip

    def _ask_for_tokenizer(self, name: str, hf_name: str) -> None:
        """The model's tokenizer is not bundled: ask for the folder holding its files, then pull again."""
        files = ", ".join(TOKENIZER_FILES)
        folder = QFileDialog.getExistingDirectory(
            self, f"Choose the folder with the {hf_name} tokenizer files ({files})", self._settings_value("tokenizer_dir") or ""
        )
        if folder and not os.path.isfile(os.path.join(folder, "tokenizer.json")):
            self.pull_status.setText(f"{folder} has no tokenizer.json. {tokenizer_help(name, hf_name)}")
            return
        if not folder:
            self.pull_status.setText(tokenizer_help(name, hf_name))
            return
        self._set_settings_value("tokenizer_dir", folder)
        self._start_pull(tokenizer=folder)

    def _settings_value(self, key: str):
        settings = getattr(self.parent(), "settings", None)
        return settings.value(key) if settings is not None else None

    def _set_settings_value(self, key: str, value) -> None:
        settings = getattr(self.parent(), "settings", None)
        if settings is not None:
            settings.setValue(key, value)

    def _cancel_pull(self) -> None:
        if self.cancel_event is not None:
            self.cancel_event.set()
            self.pull_status.setText("Cancelling… the partial download is kept and resumes next time.")
