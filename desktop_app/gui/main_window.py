"""The main window: puts the search bar, the result grid, the library panel and the status bar together.

The parts live in modules of their own: ``search_bar`` (query, examples, filters),
``search_controller`` (running searches, paging, arranging), ``photo_actions`` (what can be
done with the photos shown), ``menus``, ``library_panel`` and the dialogs. The window
wires them, loads the model, keeps the library overview and shows the right page.
"""

from __future__ import annotations

import os

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import (
    QDockWidget,
    QFileDialog,
    QFrame,
    QMainWindow,
    QMessageBox,
    QStackedWidget,
    QVBoxLayout,
    QWidget,
)

from .. import paths
from ..library.scanner import is_photo_name
from ..services import LibraryOverview, LibraryService
from ..services import models as model_service
from . import tasks
from .duplicates_dialog import DuplicatesDialog
from .indexing import IndexController
from .library_panel import LibraryPanel
from .menus import build_menus
from .message_page import MessagePage
from .models_dialog import ModelsDialog, StarterInstall, choose_pack
from .photo_actions import PhotoActions
from .results import ResultDelegate, ResultModel, ResultView, ThumbnailLoader
from .search_bar import SearchBar, save_example_image
from .search_controller import SearchController
from .settings import settings
from .status_bar import StatusArea
from .window_indexing import FoldersAndIndexing


class MainWindow(FoldersAndIndexing, tasks.TaskOwner, QMainWindow):
    search_finished = Signal(int)  # number of results shown (tests and the benchmark wait on it)
    index_finished = Signal()
    model_loaded = Signal()  # the model is loaded: searching and indexing can start
    text_search_ready = Signal()  # the text tower is open and the first query costs no more than the next

    def __init__(self, library_dir: str | None = None, watch: bool = True):
        super().__init__()
        self.settings = settings()
        library_dir = library_dir or self.settings.value("library") or str(paths.default_library_dir())
        self.service = LibraryService(library_dir)
        self.settings.setValue("library", str(self.service.library.directory))
        self.setWindowTitle("pixfind")
        self.setAcceptDrops(True)
        self.setMinimumSize(720, 480)
        self.overview: LibraryOverview | None = None
        self.model_ready = False
        self.text_ready = False  # the model's text session is open (see _warm_up)
        self.model_problem: str | None = None
        self._model_requested = False
        self.starter_install: StarterInstall | None = None  # the welcome page's one-click starter model
        self._welcome_problem: str | None = None
        self._last_live_refresh = 0.0
        self._paused_shown = False  # the grid was refreshed when indexing paused

        self.loader = ThumbnailLoader(self.service.library.thumbnails.directory, self)
        self.model = ResultModel(self.loader, self)
        self.delegate = ResultDelegate(self.loader, self)
        self.view = ResultView(self.model, self.delegate)
        self.view.setObjectName("results")
        self.view.set_thumbnail_side(int(self.settings.value("thumb_side", 168)))

        self.indexer = IndexController(self.service, self, watch=watch)
        self.indexer.started.connect(self._index_started)
        self.indexer.progressed.connect(self._index_progress)
        self.indexer.finished.connect(self._index_done)

        self.bar = SearchBar(self.settings)
        self.search = self.bar.search
        self.bar.escape.connect(self.clear_search)
        self.bar.problem.connect(self.show_error)
        self.search.installEventFilter(self)
        self._build_body()
        self._build_panel()
        self.status_area = StatusArea(self.statusBar(), self.show_models)
        self.count_label = self.status_area.count_label

        self.searcher = SearchController(
            self.service, self.bar, self.model, self.view, self.count_label, self.settings,
            can_search=lambda: self.model_ready, indexing=self.indexing_state, parent=self,
        )  # fmt: skip
        self.searcher.finished.connect(self.search_finished)
        self.searcher.shown.connect(self._results_shown)
        self.searcher.failed.connect(self.show_error)
        self.model_loaded.connect(self.searcher.model_loaded)  # the model's search languages, if it takes one

        self.photo_actions = PhotoActions(self, self.view, self.model, self.settings)
        self.photo_actions.find_similar.connect(self.find_similar)
        self.photo_actions.add_example.connect(lambda path: self.set_example(path, replace=False))
        self.photo_actions.message.connect(self.statusBar().showMessage)
        self.photo_actions.problem.connect(self.show_error)
        self.menu_actions = build_menus(self)

        self._restore()
        QTimer.singleShot(0, self._start)

    @property
    def last_result(self):
        return self.searcher.last_result

    def library_directory(self):
        return self.service.library.directory

    # ------------------------------------------------------------------ building

    def _build_body(self) -> None:
        self.pages = QStackedWidget()
        self.message = MessagePage()
        self.results_page = QWidget()
        col = QVBoxLayout(self.results_page)
        col.setContentsMargins(12, 0, 12, 0)
        col.setSpacing(0)
        col.addWidget(self.view)
        self.pages.addWidget(self.message)
        self.pages.addWidget(self.results_page)
        central = QWidget()
        layout = QVBoxLayout(central)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(0)
        layout.addWidget(self.bar)
        line = QFrame()
        line.setFrameShape(QFrame.HLine)
        line.setFrameShadow(QFrame.Plain)
        line.setObjectName("headerLine")
        layout.addWidget(line)
        layout.addWidget(self.pages, 1)
        self.setCentralWidget(central)
        self.message.show_message("pixfind", "Opening the library…")

    def _build_panel(self) -> None:
        self.panel = LibraryPanel()
        self.panel.add_folder.connect(self.add_folder_dialog)
        self.panel.folder_dropped.connect(self.add_folder)
        self.panel.remove_folder.connect(self.remove_folder)
        self.panel.reindex.connect(lambda: self.indexer.index(None))
        self.panel.pause.connect(self.indexer.pause)
        self.panel.cancel.connect(self.indexer.cancel)
        self.panel.folder_chosen.connect(self.bar.choose_folder)
        self.panel.ocr_toggled.connect(self.set_ocr)
        self.dock = QDockWidget("Library", self)
        self.dock.setObjectName("libraryDock")
        self.dock.setWidget(self.panel)
        self.dock.setFeatures(QDockWidget.DockWidgetClosable | QDockWidget.DockWidgetMovable)
        self.dock.setTitleBarWidget(QWidget())
        self.dock.setMinimumWidth(230)
        self.addDockWidget(Qt.LeftDockWidgetArea, self.dock)
        self.resizeDocks([self.dock], [260], Qt.Horizontal)

    def eventFilter(self, obj, event) -> bool:
        if obj is self.search and event.type() == event.Type.KeyPress and event.key() == Qt.Key_Down and self.model.rowCount():
            if self.view.currentIndex().isValid() and not self.view.isIndexHidden(self.view.currentIndex()):
                self.view.setFocus()
            else:
                self.searcher.enter_results()
            return True
        return super().eventFilter(obj, event)

    def set_justified(self, on: bool) -> None:
        """Justified rows (whole photos, their shapes kept) or square cells; remembered."""
        self.view.set_justified(on)
        self.settings.setValue("grid", "justified" if on else "square")
        action = self.menu_actions.get("Justified Rows") if hasattr(self, "menu_actions") else None
        if action is not None and action.isChecked() != on:
            action.setChecked(on)

    # ------------------------------------------------------------------ settings

    def _restore(self) -> None:
        geometry = self.settings.value("geometry")
        if geometry is not None:
            self.restoreGeometry(geometry)
        else:
            screen = QGuiApplication.primaryScreen()
            avail = screen.availableGeometry() if screen else None
            w, h = (min(1400, int(avail.width() * 0.85)), min(900, int(avail.height() * 0.85))) if avail else (1280, 800)
            self.resize(w, h)
        state = self.settings.value("state")
        if state is not None:
            self.restoreState(state)
        self.bar.sort.setCurrentIndex(max(0, self.bar.sort.findData(self.settings.value("sort", "relevance"))))
        self.bar.arrange_button.setChecked(self.settings.value("arrange", "false") in (True, "true"))
        self.set_justified(self.settings.value("grid", "square") == "justified")

    def closeEvent(self, event) -> None:
        self.settings.setValue("geometry", self.saveGeometry())
        self.settings.setValue("state", self.saveState())
        self.settings.setValue("sort", self.bar.sort.currentData())
        self.settings.setValue("arrange", self.bar.arrange_button.isChecked())
        self.settings.setValue("balance", self.bar.balance.value())
        self.settings.setValue("thumb_side", self.view.target_side)
        self.settings.sync()
        self.closed_for_good = True
        if self.starter_install is not None:
            self.starter_install.cancel()  # stops at its next step; nothing half-built is kept
        self.searcher.stop()
        self.indexer.shutdown()
        self.loader.clear()
        self.loader.wait(3000)
        tasks.pool().waitForDone(5000)
        self.service.close()
        super().closeEvent(event)

    # ------------------------------------------------------------------ start-up and the model

    def _start(self) -> None:
        # The photos first (browsing needs no model), then the overview; the model (seconds of
        # ONNX Runtime set-up on both cores) loads once the first page is on screen.
        self.run_search()
        self.refresh_overview()
        QTimer.singleShot(1500, self._load_model_once)  # in case the first page never comes (empty library)

    def _load_model_once(self) -> None:
        if self._model_requested:
            return
        self._model_requested = True
        self._run_task(self.service.load_model, done=self._model_loaded, failed=self._model_missing)

    def _model_loaded(self, name: str) -> None:
        self.model_ready, self.model_problem = True, None
        score_range = getattr(self.service, "score_range", None)  # the model's calibrated scores
        try:
            self.bar.set_score_range(*(score_range() if score_range else (0.0, 1.0)))
        except Exception:  # noqa: BLE001 - an uncalibrated model: the plain cosine scale
            self.bar.set_score_range(0.0, 1.0)
        self.status_area.model_button.setText(f"Model: {name}")
        self._update_page()
        self.refresh_overview(then_index=True)
        self._warm_up()
        self.model_loaded.emit()

    def _warm_up(self) -> None:
        """Open the text tower (seconds of ONNX Runtime set-up) and the vector index on a worker as soon
        as the model is known, not when the first query is typed; the image tower stays closed. A
        query typed meanwhile waits for the session being opened, then runs."""
        self.text_ready = False
        service = self.service

        def done(_):
            if service.encoder is not None and "text" in service.encoder.loaded_sessions():
                self.text_ready = True
                self.text_search_ready.emit()

        self._run_task(service.warm_up, done=done, failed=lambda _: None)  # a real problem shows when searching

    def _model_missing(self, problem: str) -> None:
        self.model_ready, self.model_problem = False, problem
        self.status_area.model_button.setText("No model")
        self._update_page()
        self.refresh_overview()

    def _model_changed(self, name: str) -> None:
        if self.indexer.running:
            self.indexer.cancel()
        self.model_ready = self.text_ready = False
        self.status_area.model_button.setText("Loading model…")
        self._run_task(self.service.load_model, name or None, done=self._model_loaded, failed=self._model_missing)

    # ------------------------------------------------------------------ the library overview and the page shown

    def set_ocr(self, on: bool) -> None:
        """Switch reading the text in photos on or off for this library; on, read what is unread now."""

        def saved(_):
            if on and self.overview is not None and self.overview.folders:
                self.indexer.index(None)  # unchanged photos cost a stat: this pass reads their text
            self.refresh_overview()

        self._run_task(self.service.set_ocr_enabled, on, done=saved, failed=self.show_error)

    def refresh_overview(self, then_index: bool = False) -> None:
        def done(overview):
            self.overview = overview
            self.panel.set_overview(overview)
            if self.bar.fill_filters([f.path for f in overview.folders], overview.cameras, overview.places):
                self.run_search()  # the folder or camera filtered on is gone
            present = [f.path for f in overview.folders if f.present]
            if self.model_ready:
                self.indexer.watch(present)
            self._update_page()
            if then_index and present:
                # Catch up with what changed on disk while pixfind was closed (unchanged files cost a stat).
                self.indexer.index(None)
            if self.last_result is None and self.searcher.generation == 0:
                self.run_search()

        self._run_task(self.service.overview, done=done, failed=self.show_error)

    def _results_shown(self) -> None:
        self._update_page()
        QTimer.singleShot(0, self._load_model_once)

    def _update_page(self) -> None:
        if not self.model_ready and self.model_problem is not None:
            self.message.show_welcome(
                self.install_starter, self.import_pack, self.show_models, model_service.export_extra_missing(), self._welcome_problem
            )
            self.pages.setCurrentWidget(self.message)
            self.bar.setEnabled(False)
            return
        self.bar.setEnabled(True)
        if self.overview is None:  # still opening: show photos as soon as there are some
            if self.model.rowCount():
                self.pages.setCurrentWidget(self.results_page)
            return
        result = self.last_result
        if not self.model.rowCount() and self.indexer.running and (result is None or result.browse):
            self.message.show_indexing()  # not a blank grid (nor "add your photos") until the first batch is in
            self.pages.setCurrentWidget(self.message)
            return
        if not self.overview.folders:
            self.message.show_add_photos(self.add_folder_dialog)
            self.pages.setCurrentWidget(self.message)
            return
        if self.searcher.busy and self.pages.currentWidget() is self.results_page:
            return  # "nothing found" could be about the previous query: wait for this one
        if result is not None and not self.model.rowCount() and not self.indexer.running:
            filtered = self.searcher.request is not None and self.searcher.request.filters.active()
            self.message.show_no_results(result.browse, filtered, self.clear_all)
            self.pages.setCurrentWidget(self.message)
            return
        self.pages.setCurrentWidget(self.results_page)

    # ------------------------------------------------------------------ searching

    def run_search(self, keep_view: bool = False) -> None:
        self.searcher.run(keep_view)

    def show_error(self, message: str) -> None:
        self.status_area.show_error(message)

    def focus_search(self) -> None:
        self.search.setFocus()
        self.search.selectAll()

    def clear_search(self) -> None:
        """Esc: close the quick preview, else clear the words and the examples and browse again."""
        if self.photo_actions.close_preview():
            return
        if not self.search.text() and not self.bar.examples and self.search.hasFocus():
            return
        self.bar.clear_query()
        self.searcher.run_now()
        self.search.setFocus()

    def clear_all(self) -> None:
        self.bar.reset_filters()
        self.bar.clear_query()
        self.searcher.run_now()
        self.search.setFocus()

    def set_example(self, path: str, replace: bool = True) -> None:
        self.bar.add_example(path, replace)

    def paste(self) -> None:
        self.bar.paste()

    def find_similar(self, item) -> None:
        self.bar.search_like(item.path)

    def find_similar_current(self) -> None:
        item = self.photo_actions.current()
        if item is not None:
            self.find_similar(item)

    def open_library_dialog(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Open a pixfind library folder", str(self.service.library.directory.parent))
        if folder:
            self.settings.setValue("library", folder)
            QMessageBox.information(self, "pixfind", "The library opens the next time pixfind starts.")

    # ------------------------------------------------------------------ dialogs

    def show_models(self) -> None:
        dialog = ModelsDialog(self.service.model_name if self.model_ready else None, self)
        dialog.model_changed.connect(self._model_changed)
        dialog.open()
        self.models_dialog = dialog

    def import_pack(self) -> None:
        """One dialog for a pack folder or a .zip (see models_dialog.PackFileDialog)."""
        self.pack_dialog = choose_pack(self, self.install_pack)

    def install_pack(self, path: str) -> None:
        self.statusBar().showMessage("Installing the model pack…")

        def done(pack):
            model_service.use(pack.name)
            self._model_changed(pack.name)

        self._run_task(model_service.import_pack, path, done=done, failed=self.show_error)

    def install_starter(self) -> None:
        """The welcome page's one click: build the offline starter model here, with progress."""
        if self.starter_install is not None and self.starter_install.running:
            return
        job = self.starter_install = StarterInstall(self)
        self._welcome_problem = None
        job.progressed.connect(self._starter_progress)
        job.finished.connect(self._starter_installed)
        job.failed.connect(self._starter_failed)
        self.message.set_busy("Installing the starter model…", cancel=job.cancel)
        job.start()

    def _starter_progress(self, step: int, steps: int, text: str) -> None:
        if step >= 0:
            self.message.progress.setRange(0, steps)
            self.message.progress.setValue(step)
        self.message.set_progress_text(text)

    def _starter_installed(self, pack) -> None:
        self.message.clear_busy()
        self.statusBar().showMessage(f"Installed the model {pack.name}.", 6000)
        model_service.use(pack.name)
        self._model_changed(pack.name)

    def _starter_failed(self, problem: str) -> None:
        self.message.clear_busy()
        self._welcome_problem = problem
        self._update_page()

    def show_duplicates(self) -> None:
        if not self.model_ready:
            self.show_error("install a model first")
            return
        dialog = DuplicatesDialog(self.service, self.service.library.thumbnails.directory, self)
        dialog.trashed.connect(lambda _: self.indexer.index(None))
        dialog.restored.connect(lambda _: self.indexer.index(None))
        dialog.open()
        dialog.find()
        self.duplicates_dialog = dialog

    # ------------------------------------------------------------------ drag and drop

    def dragEnterEvent(self, event) -> None:
        data = event.mimeData()
        if data.hasUrls() or data.hasImage():
            event.acceptProposedAction()

    def dropEvent(self, event) -> None:
        data = event.mimeData()
        files = [u.toLocalFile() for u in data.urls() if u.isLocalFile()]
        folders = [f for f in files if os.path.isdir(f)]
        images = [f for f in files if os.path.isfile(f) and is_photo_name(f)]
        for folder in folders:
            self.add_folder(folder)
        if images:
            self.bar.set_examples(images[:4])
        elif not folders and data.hasImage():
            path = save_example_image(data.imageData(), "Dropped image")
            if path is not None:
                self.set_example(path)
        event.acceptProposedAction()
