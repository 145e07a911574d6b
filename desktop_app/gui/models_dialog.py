"""The models dialog: installed packs and the active one, import a pack, and the models that can be
downloaded (the registry of `pixfind models list --available`, or any hf: reference) with progress and cancel."""

from __future__ import annotations

import contextlib
import os
import threading

from PySide6.QtCore import QObject, Qt, QTimer, Signal
from PySide6.QtWidgets import (
    QAbstractItemView,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QMessageBox,
    QProgressBar,
    QPushButton,
    QTabWidget,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from ..errors import Cancelled, PixfindError
from ..services import models as model_service
from ..text import printable
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


def pull_model(source: str, cancel: threading.Event, tokenizer: str | None = None, *, progress):
    """The model service's pull, its progress passed on as one (stage, done, total) value per call;
    None when the user cancelled it (the service then installed nothing)."""
    try:
        return model_service.pull(
            source, tokenizer=tokenizer, cancel=cancel, progress=lambda stage, done, total: progress((stage, done, total))
        )
    except Cancelled:
        return None


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


NEEDS_EXPORT = "needs PyTorch: pip install pixfind[export]"
AVAILABLE_COLUMNS = ["Name", "State", "Download", "Dim", "Languages", "Licence", "Images/s here", "From"]


def available_cells(m: model_service.AvailableModel, active: str | None) -> list[str]:
    """One registry model as a row: the figures `pixfind models list --available` prints."""
    if m.installed:
        state = "in use" if m.name == active else "installed"
    else:
        state = "needs PyTorch" if m.needs_export_extra else ""
    return [
        m.name,
        state,
        human_size(m.download_bytes) or "unknown",
        str(m.dim) if m.dim else "unknown",
        m.languages or "unknown",
        m.licence or "unknown",
        f"{m.images_per_s:.1f}" if m.images_per_s is not None else "",
        " > ".join(m.sources),
    ]


class ModelsDialog(tasks.TaskOwner, QDialog):
    """Installed packs (use, remove, import) and the models that can be downloaded (with progress and cancel)."""

    model_changed = Signal(str)

    def __init__(self, active: str | None, parent=None):
        super().__init__(parent)
        self.setWindowTitle("Models")
        self.resize(960, 540)
        self.active = active
        self.cancel_event: threading.Event | None = None
        self.pulling: str | None = None  # what is being downloaded, as the user named it
        self.models: dict[str, model_service.AvailableModel] = {}
        col = QVBoxLayout(self)
        col.setContentsMargins(16, 16, 16, 16)
        col.setSpacing(10)
        col.addWidget(heading("Models"))
        col.addWidget(muted("A model pack turns photos and words into vectors. Photos are indexed once per model."))
        self.tabs = QTabWidget()
        self.tabs.addTab(self._installed_page(), "Installed")
        self.tabs.addTab(self._available_page(), "Available to download")
        col.addWidget(self.tabs, 1)
        self.pull_progress = QProgressBar()
        self.pull_progress.hide()
        self.pull_status = muted()
        self.pull_status.setObjectName("pullStatus")
        self.pull_cancel = QPushButton("Cancel download")
        self.pull_cancel.hide()
        self.pull_cancel.clicked.connect(self._cancel_pull)
        col.addWidget(self.pull_progress)
        col.addWidget(self.pull_status)
        col.addWidget(self.pull_cancel, 0, Qt.AlignRight)
        buttons = QDialogButtonBox(QDialogButtonBox.Close)
        buttons.rejected.connect(self.reject)
        col.addWidget(buttons)
        for button in self.findChildren(QPushButton):
            button.setAutoDefault(False)  # Enter in the hf: field downloads, never presses another button
        self.refresh()
        if self.table.topLevelItemCount() == 0:
            self.tabs.setCurrentIndex(1)  # nothing installed yet: show what can be

    def _installed_page(self) -> QWidget:
        page = QWidget()
        col = QVBoxLayout(page)
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
        return page

    def _available_page(self) -> QWidget:
        page = QWidget()
        col = QVBoxLayout(page)
        self.available = QTreeWidget()
        self.available.setObjectName("available")
        self.available.setHeaderLabels(AVAILABLE_COLUMNS)
        self.available.setRootIsDecorated(False)
        self.available.setSelectionMode(QAbstractItemView.SingleSelection)
        self.available.itemSelectionChanged.connect(self._available_selected)
        col.addWidget(self.available, 1)
        self.available_detail = muted()
        self.available_detail.setObjectName("availableDetail")
        col.addWidget(self.available_detail)
        row = QHBoxLayout()
        self.pull_button = QPushButton("Download")
        self.pull_button.clicked.connect(lambda: self._download_selected())
        self.use_available_button = QPushButton("Use this model")
        self.use_available_button.clicked.connect(lambda: self._use_name(self._available_name()))
        row.addWidget(self.pull_button)
        row.addWidget(self.use_available_button)
        row.addStretch(1)
        col.addLayout(row)
        hub_row = QHBoxLayout()
        hub_row.addWidget(QLabel("Any Hugging Face model:"))
        self.hub_field = QLineEdit()
        self.hub_field.setObjectName("hubReference")
        self.hub_field.setPlaceholderText("hf:ORG/REPO or hf:ORG/REPO@REVISION (a pixfind pack or an Immich CLIP model)")
        self.hub_field.returnPressed.connect(self._download_hub)
        self.hub_button = QPushButton("Download")
        self.hub_button.setObjectName("hubDownload")
        self.hub_button.clicked.connect(self._download_hub)
        hub_row.addWidget(self.hub_field, 1)
        hub_row.addWidget(self.hub_button)
        col.addLayout(hub_row)
        return page

    # ------------------------------------------------------------------ the lists

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
        self._refresh_available()

    def _refresh_available(self) -> None:
        chosen = self._available_name()
        self.models = {m.name: m for m in model_service.available()}
        self.available.clear()
        for m in self.models.values():
            it = QTreeWidgetItem(available_cells(m, self.active))
            it.setData(0, Qt.UserRole, m.name)
            tip = m.description + (f". {NEEDS_EXPORT[0].upper()}{NEEDS_EXPORT[1:]}" if m.needs_export_extra else "")
            for c in range(len(AVAILABLE_COLUMNS)):
                it.setToolTip(c, tip)
            self.available.addTopLevelItem(it)
            if m.name == chosen:
                self.available.setCurrentItem(it)
        for i in range(len(AVAILABLE_COLUMNS)):
            self.available.resizeColumnToContents(i)
        self._available_selected()

    def available_row(self, name: str) -> QTreeWidgetItem | None:
        """The row of the registry model ``name`` in the "Available to download" list."""
        for i in range(self.available.topLevelItemCount()):
            it = self.available.topLevelItem(i)
            if it.data(0, Qt.UserRole) == name:
                return it
        return None

    def _available_name(self) -> str | None:
        it = self.available.currentItem()
        return it.data(0, Qt.UserRole) if it is not None and self.available.selectedItems() else None

    def _available_selected(self) -> None:
        m = self.models.get(self._available_name() or "")
        busy = self.pulling is not None
        self.pull_button.setEnabled(m is not None and not m.installed and not m.needs_export_extra and not busy)
        self.use_available_button.setEnabled(m is not None and m.installed and m.name != self.active)
        self.hub_button.setEnabled(not busy)
        if m is None:
            self.available_detail.setText("Choose a model to download; packs and Hugging Face models need no PyTorch.")
        elif m.needs_export_extra:
            self.available_detail.setText(f"{m.description}. Published as a checkpoint only: {NEEDS_EXPORT}")
        elif m.sources == ["checkpoint"]:
            self.available_detail.setText(f"{m.description}. Its checkpoint is converted here with PyTorch (several minutes).")
        else:
            self.available_detail.setText(m.description)

    def _name(self) -> str | None:
        it = self.table.currentItem()
        return it.data(1, Qt.UserRole) if it is not None and self.table.selectedItems() else None

    def _selected(self) -> None:
        name = self._name()
        self.use_button.setEnabled(name is not None and name != self.active)
        self.remove_button.setEnabled(name is not None)

    # ------------------------------------------------------------------ installed packs

    def _use(self) -> None:
        self._use_name(self._name())

    def _use_name(self, name: str | None) -> None:
        if name is None:
            return
        try:
            model_service.use(name)
        except PixfindError as e:
            QMessageBox.warning(self, "Models", printable(str(e)))
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
            QMessageBox.warning(self, "Models", printable(str(e)))
        if name == self.active:
            self.active = model_service.active()
            self.model_changed.emit(self.active or "")
        self.refresh()

    def _import(self) -> None:
        self.pack_dialog = choose_pack(self, self.import_pack)

    def import_pack(self, path: str) -> None:
        self._status(f"Installing {printable(os.path.basename(path))}…")
        self._run_task(model_service.import_pack, path, done=self._installed, failed=self._show_error)

    def _installed(self, pack) -> None:
        """A model just installed: the first one becomes the active model; otherwise it is one click away."""
        self.pull_status.setText(f"Installed {pack.name}.")
        if self.active is None:
            model_service.use(pack.name)
            self.active = pack.name
            self.model_changed.emit(pack.name)
        elif model_service.active() != self.active:
            with contextlib.suppress(PixfindError):  # a second pack must not silently become the default one
                model_service.use(self.active)
        self.refresh()
        row = self.available_row(pack.name)
        if row is not None:
            self.available.setCurrentItem(row)
        elif pack.name != self.active:
            self.pull_status.setText(f"Installed {pack.name}: choose it under Installed and click Use this model to search with it.")

    def _show_error(self, message: str) -> None:
        self._status(printable(" ".join(message.split())), error=True)

    def _status(self, text: str, error: bool = False) -> None:
        """The line under the tabs: progress in grey, a problem in the normal text colour."""
        self.pull_status.setEnabled(error)
        self.pull_status.setText(text)

    # ------------------------------------------------------------------ downloads

    def _download_selected(self, tokenizer: str | None = None) -> None:
        name = self._available_name()
        if name is None:
            return
        model = next((m for m in model_service.known() if m.name == name), None)
        if tokenizer is None and model is not None and model.hf_tokenizer:
            tokenizer = find_tokenizer(model.hf_tokenizer, self._settings_value("tokenizer_dir"))
        hf_tokenizer = model.hf_tokenizer if model is not None else None
        self._pull(name, name, tokenizer, hf_tokenizer)

    def _download_hub(self) -> None:
        """Pull the hf: reference typed in the field, checked first: a bad one is one line, no download."""
        if self.pulling is not None:
            return
        try:
            ref, name = model_service.hub_reference(self.hub_field.text())
        except PixfindError as e:
            self._show_error(str(e))
            return
        if model_service.is_installed(name):
            self._show_error(f"{ref}: a model named {name} is already installed; remove it under Installed to download it again")
            return
        self._pull(ref, ref)

    def _pull(self, source: str, shown: str, tokenizer: str | None = None, hf_tokenizer: str | None = None) -> None:
        self.cancel_event = threading.Event()
        self.pulling = shown
        self._available_selected()
        self.pull_progress.setRange(0, 0)
        self.pull_progress.setFormat("%p%")
        self.pull_progress.show()
        self.pull_cancel.setText("Cancel download")
        self.pull_cancel.setEnabled(True)
        self.pull_cancel.show()
        self._status(f"Starting the download of {printable(shown)}…")

        def finished(error: str | None = None) -> None:
            self.pulling = None
            self.pull_progress.hide()
            self.pull_cancel.hide()
            self._available_selected()
            if error and hf_tokenizer and needs_tokenizer(error):
                self._ask_for_tokenizer(source, hf_tokenizer)
            elif error:
                self._show_error(error)

        def done(pack) -> None:
            finished()
            if pack is None:
                self.pull_status.setText(
                    f"Download of {printable(shown)} cancelled; nothing was installed. Downloading it again resumes where it stopped."
                )
            else:
                self._installed(pack)

        self._run_task(
            pull_model, source, self.cancel_event, tokenizer,
            progress=self._pull_progress, done=done, failed=lambda e: finished(error=e),
        )  # fmt: skip

    def _pull_progress(self, value) -> None:
        stage, done, total = value
        if self.pulling is None:
            return
        shown = printable(self.pulling)
        cancelling = self.cancel_event is not None and self.cancel_event.is_set()
        if stage == "download":
            if total:
                self.pull_progress.setFormat(f"{human_size(done) or '0 B'} of {human_size(total)} (%p%)")
                self.pull_progress.setRange(0, 1000)  # per mille: byte counts overflow a progress bar's int
                self.pull_progress.setValue(min(1000, int(1000 * done / total)))
            else:
                self.pull_progress.setRange(0, 0)
            if not cancelling:
                self.pull_status.setText(f"Downloading {shown}…")
                self.pull_cancel.setEnabled(True)
            return
        # The files are here: checking, converting and installing cannot be stopped midway.
        self.pull_progress.setRange(0, 0)
        self.pull_cancel.setEnabled(False)
        if stage == "export":
            self.pull_status.setText(f"Converting {shown} into a model pack (a few minutes)…")
        else:
            self.pull_status.setText(f"Checking and installing {shown}…")

    def _cancel_pull(self) -> None:
        if self.cancel_event is not None and self.pulling is not None:
            self.cancel_event.set()
            self.pull_cancel.setText("Cancelling…")
            self.pull_cancel.setEnabled(False)
            self.pull_status.setText(f"Cancelling the download of {printable(self.pulling)}…")

    def done(self, result: int) -> None:
        """Closing the dialog stops a download in flight (what was fetched is kept for the next try)."""
        if self.cancel_event is not None and self.pulling is not None:
            self.cancel_event.set()
        super().done(result)

    def _ask_for_tokenizer(self, name: str, hf_name: str) -> None:
        """The model's tokenizer is not bundled: ask for the folder holding its files, then pull again."""
        files = ", ".join(TOKENIZER_FILES)
        folder = QFileDialog.getExistingDirectory(
            self, f"Choose the folder with the {hf_name} tokenizer files ({files})", self._settings_value("tokenizer_dir") or ""
        )
        if folder and not os.path.isfile(os.path.join(folder, "tokenizer.json")):
            self._status(f"{printable(folder)} has no tokenizer.json. {tokenizer_help(name, hf_name)}", error=True)
            return
        if not folder:
            self._status(tokenizer_help(name, hf_name), error=True)
            return
        self._set_settings_value("tokenizer_dir", folder)
        row = self.available_row(name)
        if row is not None:
            self.available.setCurrentItem(row)
        self._download_selected(tokenizer=folder)

    def _settings_value(self, key: str):
        settings = getattr(self.parent(), "settings", None)
        return settings.value(key) if settings is not None else None

    def _set_settings_value(self, key: str, value) -> None:
        settings = getattr(self.parent(), "settings", None)
        if settings is not None:
            settings.setValue(key, value)
