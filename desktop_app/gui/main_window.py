"""The main window: search field, filters, the result grid, the library panel."""

from __future__ import annotations

import datetime as dt
import os
import tempfile
import time

from PySide6.QtCore import QDate, QSettings, Qt, QTimer, QUrl, Signal
from PySide6.QtGui import QAction, QDesktopServices, QGuiApplication, QKeySequence, QPixmap
from PySide6.QtWidgets import (
    QComboBox,
    QDateEdit,
    QDockWidget,
    QFileDialog,
    QFrame,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QMainWindow,
    QMenu,
    QMessageBox,
    QProgressBar,
    QPushButton,
    QSlider,
    QStackedWidget,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from .. import model_store, paths
from ..library.metadata import wall_clock
from ..library.scanner import is_photo_name
from ..library.search import Filters
from . import tasks
from .backend import FIRST_PAGE, Backend, SearchRequest, arrange, export_files
from .detail import DetailDialog, load_preview, put_image_on_clipboard, reveal_in_file_manager
from .indexing import IndexController
from .panels import DuplicatesDialog, LibraryPanel, MessagePage, ModelsDialog, muted
from .results import ResultDelegate, ResultModel, ResultView, ThumbnailLoader, _read_scaled

ARRANGE_LIMIT = 1500  # photos laid out by similarity (the rest follow in order)
DATE_RANGES = ["Any date", "Last 7 days", "Last 30 days", "Last 12 months", "This year", "Custom range…"]


def settings() -> QSettings:
    """Window settings; under PIXFIND_HOME (tests, portable installs) they live in an ini file there."""
    if os.environ.get("PIXFIND_HOME"):
        return QSettings(str(paths.data_dir() / "gui.ini"), QSettings.IniFormat)
    return QSettings("pixfind", "pixfind")


class SearchField(QLineEdit):
    """The query field; Ctrl+V of an image or an image file turns into a search by example."""

    paste_example = Signal()
    escape = Signal()

    def keyPressEvent(self, event) -> None:  # noqa: N802
        if event.matches(QKeySequence.Paste) and _clipboard_example() is not None:
            self.paste_example.emit()
            return
        if event.key() == Qt.Key_Escape:
            self.escape.emit()
            return
        super().keyPressEvent(event)


def _clipboard_example():
    data = QGuiApplication.clipboard().mimeData()
    if data is None:
        return None
    if data.hasUrls():
        files = [u.toLocalFile() for u in data.urls() if u.isLocalFile() and is_photo_name(u.toLocalFile())]
        if files:
            return ("file", files[0])
    if data.hasImage():
        return ("image", None)
    return None


class ExampleChip(tasks.TaskOwner, QFrame):
    """The example image of the query: a small thumbnail, its name and a remove button."""

    removed = Signal(str)

    def __init__(self, path: str, parent=None):
        super().__init__(parent)
        self.path = path
        self.setObjectName("chip")
        row = QHBoxLayout(self)
        row.setContentsMargins(4, 2, 4, 2)
        row.setSpacing(6)
        self.pic = QLabel()
        self.pic.setFixedSize(28, 28)
        row.addWidget(self.pic)
        name = QLabel(os.path.basename(path))
        name.setMaximumWidth(160)
        name.setToolTip(path)
        row.addWidget(name)
        x = QToolButton()
        x.setText("✕")
        x.setAutoRaise(True)
        x.setToolTip("Remove this example image")
        x.clicked.connect(lambda: self.removed.emit(self.path))
        row.addWidget(x)
        dpr = self.devicePixelRatioF()
        self._run_task(_read_scaled, path, int(28 * dpr), done=lambda img: self._set(img, dpr))

    def _set(self, image, dpr) -> None:
        if not image.isNull():
            pix = QPixmap.fromImage(image)
            pix.setDevicePixelRatio(dpr)
            self.pic.setPixmap(pix)


class MainWindow(tasks.TaskOwner, QMainWindow):
    search_finished = Signal(int)  # number of results shown (tests and the benchmark wait on it)
    index_finished = Signal()

    def __init__(self, library_dir: str | None = None, watch: bool = True):
        super().__init__()
        self.settings = settings()
        library_dir = library_dir or self.settings.value("library") or str(paths.default_library_dir())
        self.backend = Backend(library_dir)
        self.settings.setValue("library", str(self.backend.library.directory))
        self.setWindowTitle("pixfind")
        self.setAcceptDrops(True)
        self.setMinimumSize(720, 480)
        self.examples: list[str] = []
        self.generation = 0
        self.request: SearchRequest | None = None
        self.last_result = None
        self.overview: dict | None = None
        self.model_ready = False
        self.model_problem: str | None = None
        self.first_paint_at: float | None = None
        self.detail: DetailDialog | None = None
        self.preview: DetailDialog | None = None
        self._last_live_refresh = 0.0

        self.loader = ThumbnailLoader(self.backend.library.thumbnails.directory, self)
        self.model = ResultModel(self.loader, self)
        self.delegate = ResultDelegate(self.loader, self)
        self.view = ResultView(self.model, self.delegate)
        self.view.setObjectName("results")
        self.view.set_thumbnail_side(int(self.settings.value("thumb_side", 168)))
        self.view.activated_item.connect(self.open_detail)
        self.view.setContextMenuPolicy(Qt.CustomContextMenu)
        self.view.customContextMenuRequested.connect(self._context_menu)
        self.view.selectionModel().selectionChanged.connect(self._selection_changed)

        self.indexer = IndexController(self.backend, self, watch=watch)
        self.indexer.started.connect(self._index_started)
        self.indexer.progressed.connect(self._index_progress)
        self.indexer.finished.connect(self._index_done)

        self._build_header()
        self._build_body()
        self._build_panel()
        self._build_status()
        self._build_menus()

        self.debounce = QTimer(self, singleShot=True, interval=180)
        self.debounce.timeout.connect(self.run_search)
        self._restore()
        QTimer.singleShot(0, self._start)

    # ------------------------------------------------------------------ building

    def _build_header(self) -> None:
        header = QWidget()
        header.setObjectName("header")
        col = QVBoxLayout(header)
        col.setContentsMargins(16, 12, 16, 8)
        col.setSpacing(8)
        row = QHBoxLayout()
        row.setSpacing(8)
        self.search = SearchField()
        self.search.setObjectName("search")
        self.search.setPlaceholderText("Describe a photo… or drop, paste or pick an example image")
        self.search.setClearButtonEnabled(True)
        self.search.setMinimumHeight(38)
        self.search.setAccessibleName("Search")
        self.search.textChanged.connect(lambda: self.debounce.start())
        self.search.returnPressed.connect(self._search_now)
        self.search.paste_example.connect(self.paste)
        self.search.escape.connect(self.clear_search)
        f = self.search.font()
        f.setPointSizeF(f.pointSizeF() * 1.15)
        self.search.setFont(f)
        row.addWidget(self.search, 1)
        self.chips = QHBoxLayout()
        self.chips.setSpacing(6)
        row.addLayout(self.chips)
        self.image_button = QPushButton("Search by image…")
        self.image_button.setToolTip("Find photos that look like an image file (Ctrl+I); you can also drop or paste one")
        self.image_button.clicked.connect(self.pick_example)
        self.image_button.setMinimumHeight(38)
        row.addWidget(self.image_button)
        col.addLayout(row)

        # the balance between words and example images
        self.balance_row = QWidget()
        b = QHBoxLayout(self.balance_row)
        b.setContentsMargins(4, 0, 4, 0)
        b.addWidget(muted("Words"))
        self.balance = QSlider(Qt.Horizontal)
        self.balance.setObjectName("balance")
        self.balance.setRange(0, 100)
        self.balance.setValue(int(self.settings.value("balance", 50)))
        self.balance.setMaximumWidth(240)
        self.balance.setToolTip("How much the words count against the example image")
        self.balance.valueChanged.connect(lambda: self.debounce.start())
        b.addWidget(self.balance)
        b.addWidget(muted("Image"))
        b.addStretch(1)
        self.balance_row.hide()
        col.addWidget(self.balance_row)

        # filters and sorting
        bar = QHBoxLayout()
        bar.setSpacing(8)
        self.folder_filter = QComboBox()
        self.folder_filter.setObjectName("folderFilter")
        self.folder_filter.addItem("All folders", "")
        self.folder_filter.setMinimumContentsLength(14)
        self.folder_filter.setSizeAdjustPolicy(QComboBox.AdjustToMinimumContentsLengthWithIcon)
        self.folder_filter.currentIndexChanged.connect(self._filters_changed)
        self.date_filter = QComboBox()
        self.date_filter.setObjectName("dateFilter")
        self.date_filter.addItems(DATE_RANGES)
        self.date_filter.currentIndexChanged.connect(self._date_choice)
        today = QDate.currentDate()
        self.date_from = QDateEdit(today.addYears(-1))
        self.date_to = QDateEdit(today)
        for w in (self.date_from, self.date_to):
            w.setCalendarPopup(True)
            w.setDisplayFormat("d MMM yyyy")
            w.dateChanged.connect(self._filters_changed)
            w.hide()
        self.dash = QLabel("–")
        self.dash.hide()
        self.camera_filter = QComboBox()
        self.camera_filter.setObjectName("cameraFilter")
        self.camera_filter.addItem("Any camera", "")
        self.camera_filter.setMinimumContentsLength(12)
        self.camera_filter.setSizeAdjustPolicy(QComboBox.AdjustToMinimumContentsLengthWithIcon)
        self.camera_filter.currentIndexChanged.connect(self._filters_changed)
        for w in (self.folder_filter, self.date_filter, self.date_from, self.dash, self.date_to, self.camera_filter):
            bar.addWidget(w)
        bar.addSpacing(12)
        self.strict_label = QLabel("Min. match")
        bar.addWidget(self.strict_label)
        self.strictness = QSlider(Qt.Horizontal)
        self.strictness.setObjectName("relevance")
        self.strictness.setRange(0, 50)
        self.strictness.setValue(0)
        self.strictness.setFixedWidth(110)
        self.strictness.setToolTip("Hide weak matches: drag right to keep only close matches")
        self.strictness.valueChanged.connect(self._strictness_changed)
        bar.addWidget(self.strictness)
        bar.addStretch(1)
        self.sort = QComboBox()
        self.sort.setObjectName("sort")
        self.sort.addItem("Best match", "relevance")
        self.sort.addItem("Newest first", "date")
        self.sort.setToolTip("Order of the results")
        self.sort.currentIndexChanged.connect(self._sort_changed)
        bar.addWidget(self.sort)
        self.arrange_button = QPushButton("Arrange by similarity")
        self.arrange_button.setObjectName("arrange")
        self.arrange_button.setCheckable(True)
        self.arrange_button.setToolTip("Lay the results out so that similar photos sit next to each other")
        self.arrange_button.toggled.connect(self._arrange_toggled)
        bar.addWidget(self.arrange_button)
        col.addLayout(bar)
        self.header = header

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
        layout.addWidget(self.header)
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
        self.panel.folder_dropped = self.add_folder
        self.panel.remove_folder.connect(self.remove_folder)
        self.panel.reindex.connect(lambda: self.indexer.index(None))
        self.panel.pause.connect(self.indexer.pause)
        self.panel.cancel.connect(self.indexer.cancel)
        self.panel.folder_chosen.connect(self._panel_folder)
        self.dock = QDockWidget("Library", self)
        self.dock.setObjectName("libraryDock")
        self.dock.setWidget(self.panel)
        self.dock.setFeatures(QDockWidget.DockWidgetClosable | QDockWidget.DockWidgetMovable)
        self.dock.setTitleBarWidget(QWidget())
        self.dock.setMinimumWidth(230)
        self.addDockWidget(Qt.LeftDockWidgetArea, self.dock)
        self.resizeDocks([self.dock], [260], Qt.Horizontal)

    def _build_status(self) -> None:
        bar = self.statusBar()
        bar.setSizeGripEnabled(False)
        self.count_label = QLabel()
        self.count_label.setObjectName("count")
        bar.addWidget(self.count_label, 1)
        self.mini_progress = QProgressBar()
        self.mini_progress.setFixedWidth(140)
        self.mini_progress.setFixedHeight(6)
        self.mini_progress.setTextVisible(False)
        self.mini_progress.hide()
        self.index_label = QLabel()
        bar.addPermanentWidget(self.index_label)
        bar.addPermanentWidget(self.mini_progress)
        self.model_button = QPushButton()
        self.model_button.setFlat(True)
        self.model_button.setToolTip("Models (Ctrl+M)")
        self.model_button.clicked.connect(self.show_models)
        bar.addPermanentWidget(self.model_button)

    def _action(self, menu, text, slot, shortcut=None, tip=None, context=Qt.WindowShortcut) -> QAction:
        action = QAction(text, self)
        if shortcut:
            action.setShortcut(QKeySequence(shortcut))
            action.setShortcutContext(context)
        if tip:
            action.setStatusTip(tip)
        action.triggered.connect(slot)
        menu.addAction(action)
        self.addAction(action)
        return action

    def _build_menus(self) -> None:
        bar = self.menuBar()
        m = bar.addMenu("&File")
        self._action(m, "Add Folder…", self.add_folder_dialog, "Ctrl+Shift+O")
        self._action(m, "Search by Image…", self.pick_example, "Ctrl+I")
        self._action(m, "Search by Pasted Image", self.paste, None)
        m.addSeparator()
        self.export_action = self._action(m, "Export Selection…", self.export_selection, "Ctrl+E")
        m.addSeparator()
        self._action(m, "Quit", self.close, QKeySequence.Quit)
        m = bar.addMenu("&Edit")
        self._action(m, "Find", self.focus_search, QKeySequence.Find)
        self._action(m, "Clear Search", self.clear_search, Qt.Key_Escape)
        m.addSeparator()
        self.copy_action = self._action(m, "Copy", self.copy_selection, None, "Copy the selected photos (paths and files)")
        self._action(m, "Copy Image", self.copy_current_image, "Ctrl+Shift+C")
        self._action(m, "Select All Results", self.view.selectAll, None)
        m = bar.addMenu("&Photo")
        self.open_action = self._action(m, "Open", lambda: self.open_detail(self.view.currentIndex().row()), None)
        self.preview_action = self._action(m, "Quick Preview", self.quick_preview, None)
        self._action(m, "Open in Default Viewer", self.open_external, "Ctrl+O")
        self._action(m, "Show in Folder", self.reveal, "Ctrl+Shift+R")
        self.similar_action = self._action(m, "Find Similar", self.find_similar_current, "Ctrl+Shift+F")
        m = bar.addMenu("&View")
        self.panel_action = self.dock.toggleViewAction()
        self.panel_action.setText("Library Panel")
        self.panel_action.setShortcut(QKeySequence("Ctrl+L"))
        m.addAction(self.panel_action)
        self._action(m, "Arrange by Similarity", self.arrange_button.toggle, "Ctrl+R")
        self._action(m, "Larger Thumbnails", lambda: self.zoom(1), QKeySequence.ZoomIn)
        self._action(m, "Smaller Thumbnails", lambda: self.zoom(-1), QKeySequence.ZoomOut)
        m = bar.addMenu("&Library")
        self._action(m, "Re-index", lambda: self.indexer.index(None), "F5")
        self._action(m, "Find Duplicates…", self.show_duplicates, "Ctrl+D")
        self._action(m, "Models…", self.show_models, "Ctrl+M")
        self._action(m, "Open Another Library…", self.open_library_dialog, None)
        m = bar.addMenu("&Help")
        self._action(m, "Search Tips", self.show_tips, QKeySequence.HelpContents)
        self._action(m, "About pixfind", self.show_about, None)
        # Shortcuts that belong to the grid only (so typing a space in the search field still types a space).
        self.view.preview_requested.connect(self.quick_preview)
        for seq, slot in ((QKeySequence.Copy, self.copy_selection),):
            a = QAction(self.view)
            a.setShortcut(seq)
            a.setShortcutContext(Qt.WidgetShortcut)
            a.triggered.connect(slot)
            self.view.addAction(a)
        self.search.installEventFilter(self)

    def eventFilter(self, obj, event) -> bool:  # noqa: N802 - Down from the search field enters the grid
        if obj is self.search and event.type() == event.Type.KeyPress and event.key() == Qt.Key_Down and self.model.rowCount():
            self.view.setFocus()
            if not self.view.currentIndex().isValid():
                self.view.setCurrentIndex(self.model.index(0))
            return True
        return super().eventFilter(obj, event)

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
        self.sort.setCurrentIndex(max(0, self.sort.findData(self.settings.value("sort", "relevance"))))
        self.arrange_button.setChecked(self.settings.value("arrange", "false") in (True, "true"))

    def closeEvent(self, event) -> None:  # noqa: N802
        self.settings.setValue("geometry", self.saveGeometry())
        self.settings.setValue("state", self.saveState())
        self.settings.setValue("sort", self.sort.currentData())
        self.settings.setValue("arrange", self.arrange_button.isChecked())
        self.settings.setValue("balance", self.balance.value())
        self.settings.setValue("thumb_side", self.view.target_side)
        self.settings.sync()
        self.closed_for_good = True
        self.generation += 1
        self.indexer.shutdown()
        self.loader.clear()
        self.loader.wait(3000)
        tasks.pool().waitForDone(5000)
        self.backend.close()
        super().closeEvent(event)

    # ------------------------------------------------------------------ start-up

    def _start(self) -> None:
        # The photos first (browsing needs no model), then the overview; the model (seconds of
        # ONNX Runtime set-up on both cores) loads once the first page is on screen.
        self.run_search()
        self.refresh_overview()
        QTimer.singleShot(1500, self._load_model_once)  # in case the first page never comes (empty library)

    def _load_model_once(self) -> None:
        if getattr(self, "_model_requested", False):
            return
        self._model_requested = True
        self._run_task(self.backend.load_model, done=self._model_loaded, failed=self._model_missing)

    def _model_loaded(self, name: str) -> None:
        self.model_ready, self.model_problem = True, None
        self.model_button.setText(f"Model: {name}")
        self._update_page()
        self.refresh_overview(then_index=True)
        self._run_task(self.backend.warm_up, failed=lambda _: None)

    def _model_missing(self, problem: str) -> None:
        self.model_ready, self.model_problem = False, problem
        self.model_button.setText("No model")
        self._update_page()
        self.refresh_overview()

    def refresh_overview(self, then_index: bool = False) -> None:
        def done(overview):
            self.overview = overview
            self.panel.set_overview(overview)
            self._fill_filters(overview)
            if self.model_ready:
                self.indexer.watch([path for _, path, _, present in overview["folders"] if present])
            self._update_page()
            if then_index and any(present for *_, present in overview["folders"]):
                # Catch up with what changed on disk while pixfind was closed (unchanged files cost a stat).
                self.indexer.index(None)
            if self.last_result is None and self.generation == 0:
                self.run_search()

        self._run_task(self.backend.overview, done=done, failed=self.show_error)

    def _fill_filters(self, overview: dict) -> None:
        lost = False
        for combo, values, label in (
            (self.folder_filter, [(p, os.path.basename(p.rstrip(os.sep)) or p) for _, p, _, _ in overview["folders"]], "All folders"),
            (self.camera_filter, [(c, c) for c in overview["cameras"]], "Any camera"),
        ):
            current = combo.currentData()
            combo.blockSignals(True)
            combo.clear()
            combo.addItem(label, "")
            for value, text in values:
                combo.addItem(text, value)
                combo.setItemData(combo.count() - 1, value, Qt.ToolTipRole)
            combo.setCurrentIndex(max(0, combo.findData(current)))
            combo.blockSignals(False)
            if current and combo.findData(current) < 0:  # the folder or camera filtered on is gone
                lost = True
        self.camera_filter.setVisible(bool(overview["cameras"]))
        self.folder_filter.setVisible(len(overview["folders"]) > 1)
        if lost:
            self.run_search()

    def _update_page(self) -> None:
        overview = self.overview or {"folders": [], "photos": 0}
        if not self.model_ready and self.model_problem is not None:
            self.message.show_message(
                "Welcome to pixfind",
                "pixfind finds photos on your computer by what they show: type <i>“a dog on a beach”</i> "
                "or drop an example picture. Everything runs on this computer.<br><br>"
                "To start, it needs a <b>model pack</b>, the part that understands pictures and words. "
                "Import one you have (a folder or a .zip), or download one "
                "(about 1 GB; converting it needs pixfind's <i>export</i> extra).<br><br>"
                "<small>From a terminal: <code>pixfind models install starter</code> installs the offline starter model.</small>",
                [("Import a model pack…", self.import_pack), ("Download a model…", self.show_models)],
            )
            self.pages.setCurrentWidget(self.message)
            self.header.setEnabled(False)
            return
        self.header.setEnabled(True)
        if self.overview is None:  # still opening: show photos as soon as there are some
            if self.model.rowCount():
                self.pages.setCurrentWidget(self.results_page)
            return
        if not overview["folders"]:
            self.message.show_message(
                "Add your photos",
                "Choose a folder with photos (or drop one on this window). pixfind indexes it in the background "
                "and you can search while it works. Sub-folders are included; your files are never changed.",
                [("Add a folder…", self.add_folder_dialog)],
            )
            self.pages.setCurrentWidget(self.message)
            return
        if self.last_result is not None and not self.model.rowCount() and not self.indexer.running:
            if self.last_result.browse:
                text = "No photos match these filters." if self.request and self.request.filters.active() else "No photos indexed yet."
            else:
                text = "Nothing matches. Try other words, loosen the filters or lower the match slider."
            self.message.show_message("No photos found", text, [("Clear search and filters", self.clear_all)])
            self.pages.setCurrentWidget(self.message)
            return
        self.pages.setCurrentWidget(self.results_page)

    # ------------------------------------------------------------------ searching

    def current_request(self) -> SearchRequest:
        folder = self.folder_filter.currentData() or None
        after = before = None
        choice = self.date_filter.currentIndex()
        now = dt.datetime.now()
        if choice == 1:
            after = wall_clock(now - dt.timedelta(days=7))
        elif choice == 2:
            after = wall_clock(now - dt.timedelta(days=30))
        elif choice == 3:
            after = wall_clock(now - dt.timedelta(days=365))
        elif choice == 4:
            after = wall_clock(dt.datetime(now.year, 1, 1))
        elif choice == 5:
            d0, d1 = self.date_from.date(), self.date_to.date()
            after = wall_clock(dt.datetime(d0.year(), d0.month(), d0.day()))
            before = wall_clock(dt.datetime(d1.year(), d1.month(), d1.day()) + dt.timedelta(days=1))
        camera = self.camera_filter.currentData() or None
        strict = self.strictness.value()
        return SearchRequest(
            text=self.search.text(),
            images=list(self.examples),
            balance=self.balance.value() / 100,
            filters=Filters(folder, after, before, camera, None),
            min_score=strict / 100 if strict else None,
            sort=self.sort.currentData(),
            limit=int(self.settings.value("max_results", 10000)),
        )

    def _search_now(self) -> None:
        self.debounce.stop()
        self.run_search()
        if self.model.rowCount():
            self.view.setFocus()
            self.view.setCurrentIndex(self.model.index(0))

    def run_search(self, keep_view: bool = False) -> None:
        request = self.current_request()
        if request.empty:  # browsing the library by date: all of it, however large
            request.limit = int(self.settings.value("max_browse", 1_000_000))
        if not request.empty and not self.model_ready:
            return
        self.generation += 1
        gen = self.generation
        self.request = request
        self.search_started_at = time.perf_counter()
        self.balance_row.setVisible(bool(request.images) and bool(request.text.strip()))
        self.strict_label.setEnabled(not request.empty)
        self.strictness.setEnabled(not request.empty)
        self.model.show_scores = not request.empty
        self.count_label.setText("Searching…")
        self._run_task(
            self.backend.search,
            request,
            FIRST_PAGE,
            done=lambda r: self._first_page(gen, r, keep_view),
            failed=lambda e: self._search_failed(gen, e),
        )

    def _first_page(self, gen: int, result, keep_view: bool) -> None:
        if gen != self.generation:
            return
        self.last_result = result
        if keep_view and self.model.rowCount():
            self._replace_keeping_view(result.items)
        else:
            self.model.set_items(result.items)
            self.view.scrollToTop()
        self._update_page()
        self._show_count(result, complete=result.complete)
        self.search_finished.emit(len(result.items))
        QTimer.singleShot(0, self._load_model_once)
        if result.complete:
            self._maybe_arrange()
            return

        def fetch_rest():  # not while the user is still typing: only the query they stop at
            if gen != self.generation or getattr(self, "closed_for_good", False):
                return
            self._run_task(
                self.backend.search,
                result.request,
                result.request.limit,
                done=lambda r: self._full_list(gen, r),
                failed=lambda e: self._search_failed(gen, e),
            )

        QTimer.singleShot(0 if result.browse else 350, self, fetch_rest)

    def _replace_keeping_view(self, items) -> None:
        selected = {self.model.items[i.row()].id for i in self.view.selectionModel().selectedIndexes() if i.row() < len(self.model.items)}
        value = self.view.verticalScrollBar().value()
        self.model.set_items(items)
        if selected:
            for row, it in enumerate(items):
                if it.id in selected:
                    self.view.selectionModel().select(self.model.index(row), self.view.selectionModel().SelectionFlag.Select)
        self.view.verticalScrollBar().setValue(value)

    def _full_list(self, gen: int, result) -> None:
        if gen != self.generation:
            return
        shown = self.model.items
        n = len(shown)
        if len(result.items) >= n and all(a.id == b.id for a, b in zip(shown, result.items[:n])):
            self.model.extend(result.items[n:])
        else:
            self._replace_keeping_view(result.items)
        self.last_result = result
        self._show_count(result, complete=True)
        self._maybe_arrange()

    def _show_count(self, result, complete: bool) -> None:
        n = len(result.items)
        what = "photo" if n == 1 else "photos"
        if result.browse:
            text = f"{n:,}{'' if complete else '+'} {what}, newest first"
        else:
            text = f"{n:,}{'' if complete else '+'} {what} · {result.seconds * 1000:.0f} ms"
        if self.indexer.running:
            text += " · indexing goes on, results grow"
        self.count_label.setText(text)

    def _search_failed(self, gen: int, message: str) -> None:
        if gen != self.generation:
            return
        self.count_label.setText("")
        self.show_error(message)

    def show_error(self, message: str) -> None:
        self.statusBar().showMessage(f"⚠ {message}", 10000)

    def _filters_changed(self) -> None:
        self.run_search()

    def _date_choice(self, index: int) -> None:
        custom = index == len(DATE_RANGES) - 1
        for w in (self.date_from, self.dash, self.date_to):
            w.setVisible(custom)
        self.run_search()

    def _strictness_changed(self, value: int) -> None:
        self.strictness.setToolTip(f"Hide matches below {value / 100:.2f}" if value else "Hide weak matches")
        self.debounce.start()

    def _sort_changed(self) -> None:
        if self.sort.currentData() == "date" and self.arrange_button.isChecked():
            self.arrange_button.setChecked(False)
        self.run_search()

    def _panel_folder(self, path: str) -> None:
        index = self.folder_filter.findData(path)
        self.folder_filter.setCurrentIndex(max(0, index))

    def focus_search(self) -> None:
        self.search.setFocus()
        self.search.selectAll()

    def clear_search(self) -> None:
        if self.preview is not None and self.preview.isVisible():
            self.preview.close()
            return
        if not self.search.text() and not self.examples and self.search.hasFocus():
            return
        self.search.clear()
        self.examples = []
        self._update_chips()
        self.debounce.stop()
        self.run_search()
        self.search.setFocus()

    def clear_all(self) -> None:
        for combo in (self.folder_filter, self.date_filter, self.camera_filter):
            combo.blockSignals(True)
            combo.setCurrentIndex(0)
            combo.blockSignals(False)
        self._date_choice(0)
        self.strictness.setValue(0)
        self.clear_search()

    # ------------------------------------------------------------------ search by example

    def set_example(self, path: str, replace: bool = True) -> None:
        if replace:
            self.examples = [path]
        elif path not in self.examples:
            self.examples.append(path)
        self._update_chips()
        self.debounce.stop()
        self.run_search()

    def _update_chips(self) -> None:
        while self.chips.count():
            w = self.chips.takeAt(0).widget()
            if w is not None:
                w.deleteLater()
        for path in self.examples:
            chip = ExampleChip(path)
            chip.removed.connect(self._remove_example)
            self.chips.addWidget(chip)
        self.search.setPlaceholderText(
            "Add words to refine, e.g. “at night” or “not people”" if self.examples else "Describe a photo… or drop, paste or pick an example image"
        )

    def _remove_example(self, path: str) -> None:
        self.examples = [p for p in self.examples if p != path]
        self._update_chips()
        self.run_search()

    def pick_example(self) -> None:
        start = self.settings.value("last_image_dir", os.path.expanduser("~"))
        path, _ = QFileDialog.getOpenFileName(self, "Search by image", start, "Images (*.jpg *.jpeg *.png *.webp *.heic *.heif *.tif *.tiff *.bmp *.gif);;All files (*)")
        if path:
            self.settings.setValue("last_image_dir", os.path.dirname(path))
            self.set_example(path)

    def paste(self) -> None:
        example = _clipboard_example()
        if example is None:
            self.show_error("the clipboard holds no image")
            return
        kind, path = example
        if kind == "image":
            image = QGuiApplication.clipboard().image()
            folder = paths.cache_dir() / "pasted"
            folder.mkdir(parents=True, exist_ok=True)
            fd, path = tempfile.mkstemp(dir=folder, prefix="pasted-", suffix=".png")
            os.close(fd)
            if not image.save(path, "PNG"):
                self.show_error("cannot read the pasted image")
                return
        self.set_example(path)

    def find_similar(self, item) -> None:
        self.search.blockSignals(True)
        self.search.clear()
        self.search.blockSignals(False)
        if self.sort.currentData() != "relevance":
            self.sort.blockSignals(True)
            self.sort.setCurrentIndex(0)
            self.sort.blockSignals(False)
        self.set_example(item.path)

    def find_similar_current(self) -> None:
        item = self.model.item(self.view.currentIndex().row())
        if item is not None:
            self.find_similar(item)

    # ------------------------------------------------------------------ arranging

    def _arrange_toggled(self, on: bool) -> None:
        if on and self.sort.currentData() == "date":
            self.sort.blockSignals(True)
            self.sort.setCurrentIndex(0)
            self.sort.blockSignals(False)
            self.run_search()
            return
        if on:
            self._maybe_arrange()
        else:
            self.run_search(keep_view=False)

    def _maybe_arrange(self) -> None:
        if not self.arrange_button.isChecked() or not self.model_ready or self.model.rowCount() < 4:
            return
        gen = self.generation
        items = self.model.items[:ARRANGE_LIMIT]
        columns = self.view.columns()
        backend = self.backend

        def work():
            import numpy as np

            vectors = backend.vectors([it.id for it in items])
            have = [i for i, it in enumerate(items) if it.id in vectors]
            if len(have) < 4:
                return None
            order = arrange(np.stack([vectors[items[i].id] for i in have]), columns)
            return [have[i] for i in order] + [i for i, it in enumerate(items) if it.id not in vectors]

        def done(order):
            if gen != self.generation or order is None:
                return
            n = min(len(items), len(self.model.items))
            self.model.reorder(order + list(range(n, len(self.model.items))))
            self.count_label.setText(self.count_label.text() + " · arranged by similarity")

        self._run_task(work, done=done, failed=self.show_error)

    # ------------------------------------------------------------------ results

    def selected_items(self):
        rows = sorted(i.row() for i in self.view.selectionModel().selectedIndexes())
        return [self.model.items[r] for r in rows if r < len(self.model.items)]

    def _selection_changed(self) -> None:
        n = len(self.view.selectionModel().selectedIndexes())
        if n > 1:
            self.statusBar().showMessage(f"{n} selected · Ctrl+C copies, Ctrl+E exports", 4000)

    def _context_menu(self, pos) -> None:
        index = self.view.indexAt(pos)
        if not index.isValid():
            return
        if not self.view.selectionModel().isSelected(index):
            self.view.setCurrentIndex(index)
        item = self.model.item(index.row())
        menu = QMenu(self)
        menu.addAction("Open", lambda: self.open_detail(index.row()))
        menu.addAction("Quick Preview\tSpace", self.quick_preview)
        menu.addAction("Find Similar\tCtrl+Shift+F", lambda: self.find_similar(item))
        menu.addAction("Add as Example", lambda: self.set_example(item.path, replace=False))
        menu.addSeparator()
        menu.addAction("Open in Default Viewer\tCtrl+O", self.open_external)
        menu.addAction("Show in Folder", self.reveal)
        menu.addSeparator()
        menu.addAction("Copy Path", lambda: QGuiApplication.clipboard().setText(item.path))
        menu.addAction("Copy Image", self.copy_current_image)
        n = len(self.selected_items())
        menu.addAction(f"Export {n} Photo{'s' if n != 1 else ''}…", self.export_selection)
        menu.popup(self.view.viewport().mapToGlobal(pos))
        self._menu = menu

    def _dialog(self, preview: bool) -> DetailDialog:
        attr = "preview" if preview else "detail"
        dialog = getattr(self, attr)
        if dialog is None:
            dialog = DetailDialog(self, preview_only=preview)
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

    def quick_preview(self) -> None:
        if self.preview is not None and self.preview.isVisible():
            self.preview.close()
            return
        item = self.model.item(self.view.currentIndex().row())
        if item is None:
            return
        dialog = self._dialog(True)
        dialog.show_item(item, self.model.show_scores)
        dialog.show()

    def _navigate(self, dialog: DetailDialog, step: int) -> None:
        row = self.view.currentIndex().row() + step
        if 0 <= row < self.model.rowCount():
            self.view.setCurrentIndex(self.model.index(row))
            dialog.show_item(self.model.items[row], self.model.show_scores)

    def _current(self):
        return self.model.item(self.view.currentIndex().row())

    def open_external(self) -> None:
        if item := self._current():
            QDesktopServices.openUrl(QUrl.fromLocalFile(item.path))

    def reveal(self) -> None:
        if item := self._current():
            reveal_in_file_manager(item.path)

    def copy_selection(self) -> None:
        items = self.selected_items() or ([self._current()] if self._current() else [])
        if not items:
            return
        from PySide6.QtCore import QMimeData

        data = QMimeData()
        data.setUrls([QUrl.fromLocalFile(it.path) for it in items])
        data.setText("\n".join(it.path for it in items))
        QGuiApplication.clipboard().setMimeData(data)
        self.statusBar().showMessage(f"Copied {len(items)} photo{'s' if len(items) != 1 else ''}", 3000)

    def copy_current_image(self) -> None:
        if item := self._current():
            self._run_task(load_preview, item.path, 4096, done=put_image_on_clipboard)

    def export_selection(self, target: str | None = None) -> None:
        items = self.selected_items()
        if not items:
            self.show_error("select photos to export first")
            return
        if not target:
            target = QFileDialog.getExistingDirectory(self, f"Export {len(items)} photos to", self.settings.value("last_export_dir", os.path.expanduser("~")))
        if not target:
            return
        self.settings.setValue("last_export_dir", target)
        self.statusBar().showMessage(f"Exporting {len(items)} photos…")
        self._run_task(
            export_files,
            [it.path for it in items],
            target,
            done=lambda n: self.statusBar().showMessage(f"Exported {n} photo{'s' if n != 1 else ''} to {target}", 6000),
            failed=self.show_error,
        )

    def zoom(self, step: int) -> None:
        side = min(400, max(96, self.view.target_side + 32 * step))
        self.view.set_thumbnail_side(side)

    # ------------------------------------------------------------------ library

    def add_folder_dialog(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Add a folder of photos", self.settings.value("last_folder_dir", os.path.expanduser("~")))
        if folder:
            self.settings.setValue("last_folder_dir", os.path.dirname(folder))
            self.add_folder(folder)

    def add_folder(self, folder: str) -> None:
        if not self.model_ready:
            self.show_error("install a model first (Library ▸ Models…)")
            return
        self.indexer.index([folder])
        self.statusBar().showMessage(f"Adding {folder}…", 4000)

    def remove_folder(self, folder_id: int, path: str, confirm: bool = True) -> None:
        if self.indexer.running:
            self.show_error("wait for indexing to finish (or cancel it) before removing a folder")
            return
        if confirm:
            answer = QMessageBox.question(self, "Remove folder", f"Stop searching the photos in\n{path}?\n\nThe files themselves are not touched.")
            if answer != QMessageBox.Yes:
                return
        self._run_task(self.backend.remove_folder, folder_id, done=lambda _: self._library_changed(), failed=self.show_error)

    def _library_changed(self) -> None:
        self.refresh_overview()
        self.run_search(keep_view=True)

    def _index_started(self) -> None:
        self.panel.set_running(True)
        self.mini_progress.show()
        self.mini_progress.setRange(0, 0)
        self.index_label.setText("Indexing…")
        self._update_page()

    def _index_progress(self, p) -> None:
        self.panel.set_progress(p)
        if p.total:
            self.mini_progress.setRange(0, p.total)
            self.mini_progress.setValue(p.done)
            self.index_label.setText("Paused" if p.paused else f"Indexing {p.done:,}/{p.total:,}")
        now = time.monotonic()
        cost = self.last_result.seconds if self.last_result is not None else 0.0
        if p.done and now - self._last_live_refresh > max(3.0, 10 * cost) and self.view.verticalScrollBar().value() == 0:
            # Search works on what is indexed so far: let the results grow while indexing goes on.
            self._last_live_refresh = now
            if self.overview is not None and self.overview["photos"] == 0:
                self.refresh_overview()
            self.run_search(keep_view=True)

    def _index_done(self, report, error: str) -> None:
        from ..commands.library import summary

        self.panel.set_running(False)
        self.mini_progress.hide()
        self.index_label.setText("")
        if report is not None:
            text = summary(report)
            if report.interrupted:
                text = "Indexing cancelled; it resumes where it stopped next time. " + text
            self.panel.set_report(text)
            self.statusBar().showMessage(text, 4000)
        if error:
            self.show_error(error)
            self.panel.set_report(error)
        self.refresh_overview()
        self.run_search(keep_view=True)
        self.index_finished.emit()
        self.indexer._after_run()  # noqa: SLF001

    def open_library_dialog(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Open a pixfind library folder", str(self.backend.library.directory.parent))
        if folder:
            self.settings.setValue("library", folder)
            QMessageBox.information(self, "pixfind", "The library opens the next time pixfind starts.")

    # ------------------------------------------------------------------ dialogs

    def show_models(self) -> None:
        dialog = ModelsDialog(self.backend.model_name if self.model_ready else None, self)
        dialog.model_changed.connect(self._model_changed)
        dialog.open()
        self.models_dialog = dialog

    def import_pack(self) -> None:
        path = QFileDialog.getExistingDirectory(self, "Import a model pack folder (or cancel to pick a .zip)")
        if not path:
            path, _ = QFileDialog.getOpenFileName(self, "Import a model pack (.zip)", "", "Model packs (*.zip)")
        if not path:
            return
        self.statusBar().showMessage("Installing the model pack…")

        def done(pack):
            model_store.set_default(pack.name)
            self._model_changed(pack.name)

        self._run_task(model_store.install, path, done=done, failed=self.show_error)

    def _model_changed(self, name: str) -> None:
        if self.indexer.running:
            self.indexer.cancel()
        self.model_ready = False
        self.model_button.setText("Loading model…")
        self._run_task(self.backend.load_model, name or None, done=self._model_loaded, failed=self._model_missing)

    def show_duplicates(self) -> None:
        if not self.model_ready:
            self.show_error("install a model first")
            return
        dialog = DuplicatesDialog(self.backend, self.backend.library.thumbnails.directory, self)
        dialog.trashed.connect(lambda _: self.indexer.index(None))
        dialog.restored.connect(lambda _: self.indexer.index(None))
        dialog.open()
        dialog.find()
        self.duplicates_dialog = dialog

    def show_tips(self) -> None:
        QMessageBox.information(
            self,
            "Search tips",
            "<b>Words</b>: describe what you see: <i>red car in the snow</i>.<br>"
            "<b>Leave out</b>: <i>beach not people</i>, or <i>beach - people</i>.<br>"
            "<b>Weights</b>: <i>2:sunset + boats</i>.<br>"
            "<b>By example</b>: drop an image on the window, paste one (Ctrl+V), Ctrl+I to pick a file, "
            "or Ctrl+Shift+F on a result. Add words to steer it; the slider balances words and image.<br><br>"
            "<b>Keys</b>: Ctrl+F search · ↓ into the results · Enter opens · Space previews · Esc clears · "
            "Ctrl+C copies · Ctrl+E exports · Ctrl+R arranges by similarity · Ctrl +/− thumbnail size",
        )

    def show_about(self) -> None:
        from .. import __version__

        QMessageBox.about(self, "About pixfind", f"<b>pixfind {__version__}</b><br>Find photos on your own disk by describing them or by example.<br>Library: {self.backend.library.directory}")

    # ------------------------------------------------------------------ drag and drop

    def dragEnterEvent(self, event) -> None:  # noqa: N802
        data = event.mimeData()
        if data.hasUrls() or data.hasImage():
            event.acceptProposedAction()

    def dropEvent(self, event) -> None:  # noqa: N802
        data = event.mimeData()
        files = [u.toLocalFile() for u in data.urls() if u.isLocalFile()]
        folders = [f for f in files if os.path.isdir(f)]
        images = [f for f in files if os.path.isfile(f) and is_photo_name(f)]
        for folder in folders:
            self.add_folder(folder)
        if images:
            self.examples = []
            for path in images[:4]:
                self.set_example(path, replace=False)
        elif not folders and data.hasImage():
            QGuiApplication.clipboard()  # keep the clipboard untouched: save the dropped image like a paste
            folder = paths.cache_dir() / "pasted"
            folder.mkdir(parents=True, exist_ok=True)
            fd, path = tempfile.mkstemp(dir=folder, prefix="dropped-", suffix=".png")
            os.close(fd)
            if data.imageData().save(path, "PNG"):
                self.set_example(path)
        event.acceptProposedAction()


def app_stylesheet() -> str:
    """Only palette roles: the look follows the system's light or dark palette."""
    return """
    QLineEdit#search { border: 1px solid palette(mid); border-radius: 19px; padding: 4px 16px; background: palette(base); }
    QLineEdit#search:focus { border: 2px solid palette(highlight); padding: 3px 15px; }
    QFrame#chip { border: 1px solid palette(mid); border-radius: 8px; background: palette(alternate-base); }
    QFrame#headerLine { color: palette(midlight); max-height: 1px; }
    QListView#results { background: palette(window); }
    QListWidget#folders { background: transparent; }
    QListWidget#folders::item { padding: 4px 6px; border-radius: 6px; }
    QListWidget#folders::item:selected { background: palette(highlight); color: palette(highlighted-text); }
    QStatusBar QLabel { padding: 0 6px; }
    """


