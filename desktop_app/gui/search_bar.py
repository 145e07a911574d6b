"""The header of the window: the query field, example images, the words/image balance, the filter row."""

from __future__ import annotations

import datetime as dt
import os

from PySide6.QtCore import QDate, Qt, Signal
from PySide6.QtGui import QGuiApplication, QImage, QKeySequence
from PySide6.QtWidgets import (
    QComboBox,
    QDateEdit,
    QFileDialog,
    QFrame,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QSizePolicy,
    QSlider,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from .. import paths
from ..library.metadata import wall_clock
from ..library.scanner import is_photo_name
from ..library.search import Filters
from . import tasks
from .flow_layout import FlowLayout
from .images import read_scaled, set_pixmap
from .language_choice import LanguageChoice
from .widgets import muted

DATE_RANGES = ["Any date", "Last 7 days", "Last 30 days", "Last 12 months", "This year", "Custom range…"]
PLACEHOLDER = "Describe a photo… or drop, paste or pick an example image"
PLACEHOLDER_WITH_EXAMPLE = "Add words to refine, e.g. “at night” or “not people”"


def place_choices(places: list[str]) -> list[tuple[str, str]]:
    """(filter text, label) for the place filter: each country, then its towns ("Town, Region")."""
    by_country: dict[str, list[str]] = {}
    for place in places:
        country = place.rsplit(", ", 1)[-1]
        by_country.setdefault(country, []).append(place)
    choices = []
    for country in sorted(by_country, key=str.casefold):
        towns = sorted(by_country[country], key=str.casefold)
        choices.append((country, country))
        choices += [(t, "    " + t[: -len(country) - 2]) for t in towns if t != country]
    return choices


class SearchField(QLineEdit):
    """The query field; Ctrl+V of an image or an image file turns into a search by example."""

    paste_example = Signal()
    escape = Signal()

    def keyPressEvent(self, event) -> None:
        if event.matches(QKeySequence.Paste) and clipboard_example() is not None:
            self.paste_example.emit()
            return
        if event.key() == Qt.Key_Escape:
            self.escape.emit()
            return
        super().keyPressEvent(event)


def clipboard_example() -> tuple[str, str | None] | None:
    """("file", path) for a copied image file, ("image", None) for copied pixels, else None."""
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


def save_example_image(image: QImage, kind: str = "Pasted image") -> str | None:
    """A pasted or dropped picture, saved as "Pasted image 2026-12-01 15-30-12.png" so it can be
    searched by (and its chip reads well); None if it cannot be written."""
    folder = paths.cache_dir() / "pasted"
    folder.mkdir(parents=True, exist_ok=True)
    stem = f"{kind} {dt.datetime.now():%Y-%m-%d %H-%M-%S}"
    path, n = folder / f"{stem}.png", 2
    while path.exists():
        path, n = folder / f"{stem} ({n}).png", n + 1
    return str(path) if image.save(str(path), "PNG") else None


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
        name = QLabel()
        name.setText(name.fontMetrics().elidedText(os.path.basename(path), Qt.ElideMiddle, 160))
        name.setToolTip(path)
        row.addWidget(name)
        x = QToolButton()
        x.setText("✕")
        x.setAutoRaise(True)
        x.setToolTip("Remove this example image")
        x.clicked.connect(lambda: self.removed.emit(self.path))
        row.addWidget(x)
        dpr = self.devicePixelRatioF()
        self._run_task(read_scaled, path, int(28 * dpr), done=lambda img: set_pixmap(self.pic, img, dpr, missing=None))


class SearchBar(QWidget):
    """What to search for and how to filter and order it; the window's search controller reads it."""

    query_edited = Signal()  # words, balance or min. match changed: search once the typing pauses
    submitted = Signal()  # Enter in the query field
    filters_changed = Signal()  # folder, date or camera: search at once
    examples_changed = Signal()  # an example image added or removed: search at once
    sort_changed = Signal()
    arrange_toggled = Signal(bool)
    language_changed = Signal()  # another language for the words (multilingual models): search at once
    escape = Signal()
    problem = Signal(str)  # one line for the status bar

    def __init__(self, settings, parent=None):
        super().__init__(parent)
        self.settings = settings
        self.examples: list[str] = []
        self.setObjectName("header")
        col = QVBoxLayout(self)
        col.setContentsMargins(16, 12, 16, 8)
        col.setSpacing(8)
        col.addLayout(self._query_row())
        col.addWidget(self._balance_row())  # shown once the query has an example image (not as words are typed)
        col.addLayout(self._filter_row())

    def _query_row(self) -> QHBoxLayout:
        row = QHBoxLayout()
        row.setSpacing(8)
        self.search = SearchField()
        self.search.setObjectName("search")
        self.search.setPlaceholderText(PLACEHOLDER)
        self.search.setClearButtonEnabled(True)
        self.search.setMinimumHeight(38)
        self.search.setAccessibleName("Search")
        self.search.textChanged.connect(self.query_edited)
        self.search.returnPressed.connect(self.submitted)
        self.search.paste_example.connect(self.paste)
        self.search.escape.connect(self.escape)
        f = self.search.font()
        f.setPointSizeF(f.pointSizeF() * 1.15)
        self.search.setFont(f)
        self.search.setMinimumWidth(220)
        row.addWidget(self.search, 1)
        self.language = LanguageChoice(self.settings)  # shown while the model takes a language
        self.language.setMinimumHeight(38)
        self.language.changed.connect(self.language_changed)
        row.addWidget(self.language)
        self.image_button = QPushButton("Search by image…")
        self.image_button.setToolTip("Find photos that look like an image file (Ctrl+I); you can also drop or paste one")
        self.image_button.clicked.connect(self.pick_example)
        self.image_button.setMinimumHeight(38)
        row.addWidget(self.image_button)
        return row

    def _balance_row(self) -> QWidget:
        """The example images and the balance between them and the words (enabled when there are words too)."""
        self.balance_row = QWidget()
        b = QHBoxLayout(self.balance_row)
        b.setContentsMargins(0, 0, 4, 0)
        self.chips = QHBoxLayout()
        self.chips.setSpacing(6)
        b.addLayout(self.chips)
        b.addSpacing(12)
        b.addWidget(muted("Words"))
        self.balance = QSlider(Qt.Horizontal)
        self.balance.setObjectName("balance")
        self.balance.setRange(0, 100)
        self.balance.setValue(int(self.settings.value("balance", 50)))
        self.balance.setMaximumWidth(240)
        self.balance.setMinimumWidth(80)
        self.balance.setToolTip("How much the words count against the example image")
        self.balance.valueChanged.connect(self.query_edited)
        b.addWidget(self.balance)
        b.addWidget(muted("Image"))
        b.addStretch(1)
        self.balance_row.hide()
        return self.balance_row

    def _filter_row(self) -> FlowLayout:
        bar = FlowLayout(spacing=8)  # wraps at narrow widths instead of cutting the combos' texts
        self.folder_filter = QComboBox()
        self.folder_filter.setObjectName("folderFilter")
        self.folder_filter.addItem("All folders", "")
        self.folder_filter.setMinimumContentsLength(14)
        self.folder_filter.setSizeAdjustPolicy(QComboBox.AdjustToMinimumContentsLengthWithIcon)
        self.folder_filter.currentIndexChanged.connect(self.filters_changed)
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
            w.dateChanged.connect(self.filters_changed)
            w.hide()
        self.dash = QLabel("–")
        self.dash.hide()
        self.camera_filter = QComboBox()
        self.camera_filter.setObjectName("cameraFilter")
        self.camera_filter.addItem("Any camera", "")
        self.camera_filter.setMinimumContentsLength(12)
        self.camera_filter.setSizeAdjustPolicy(QComboBox.AdjustToMinimumContentsLengthWithIcon)
        self.camera_filter.currentIndexChanged.connect(self.filters_changed)
        self.place_filter = QComboBox()
        self.place_filter.setObjectName("placeFilter")
        self.place_filter.addItem("Any place", "")
        self.place_filter.setToolTip("Only photos taken at this place (from their GPS position)")
        self.place_filter.setMinimumContentsLength(12)
        self.place_filter.setSizeAdjustPolicy(QComboBox.AdjustToMinimumContentsLengthWithIcon)
        self.place_filter.currentIndexChanged.connect(self.filters_changed)
        self.place_filter.hide()
        for w in (self.folder_filter, self.date_filter, self.date_from, self.dash, self.date_to, self.camera_filter, self.place_filter):
            if isinstance(w, QComboBox):
                w.setSizePolicy(QSizePolicy.Fixed, QSizePolicy.Fixed)
            bar.addWidget(w)
        bar.addWidget(self._strictness_box())
        self.sort = QComboBox()
        self.sort.setObjectName("sort")
        self.sort.addItem("Best match", "relevance")
        self.sort.addItem("Newest first", "date")
        self.sort.setToolTip("Order of the results")
        self.sort.currentIndexChanged.connect(self.sort_changed)
        self.sort.setSizePolicy(QSizePolicy.Fixed, QSizePolicy.Fixed)
        bar.addWidget(self.sort)
        self.arrange_button = QPushButton("Arrange by similarity")
        self.arrange_button.setObjectName("arrange")
        self.arrange_button.setCheckable(True)
        self.arrange_button.setToolTip("Lay the results out so that similar photos sit next to each other")
        self.arrange_button.toggled.connect(self.arrange_toggled)
        bar.addWidget(self.arrange_button)
        return bar

    def _strictness_box(self) -> QWidget:
        """ "Min. match", its slider and its value: cosine similarity, the scale of `pixfind search --min-score`.

        The slider spans the model's calibrated range of scores (``set_score_range``)."""
        box = QWidget()
        row = QHBoxLayout(box)
        row.setContentsMargins(8, 0, 0, 0)
        row.setSpacing(6)
        self.strict_label = QLabel("Min. match")
        self.strictness = QSlider(Qt.Horizontal)
        self.strictness.setObjectName("relevance")
        self.strictness.setRange(0, 100)
        self.strictness.setValue(0)
        self.strictness.setFixedWidth(110)
        self.strictness.valueChanged.connect(self._strictness_changed)
        self.strict_value = QLabel()
        self.strict_value.setObjectName("minScoreValue")
        self.strict_value.setMinimumWidth(self.strict_value.fontMetrics().horizontalAdvance("0.000") + 4)
        for w in (self.strict_label, self.strictness, self.strict_value):
            row.addWidget(w)
        self.score_range = (0.0, 1.0)
        self._strictness_changed(0, quietly=True)
        return box

    def set_score_range(self, low: float, high: float) -> None:
        """The model's calibrated range of cosine similarities; the slider keeps its score where it can."""
        score = self.min_score
        self.score_range = (float(low), float(high)) if high > low else (0.0, 1.0)
        self.strictness.blockSignals(True)
        self.strictness.setValue(0 if score is None else self._position(score))
        self.strictness.blockSignals(False)
        self._strictness_changed(self.strictness.value(), quietly=True)

    def _position(self, score: float) -> int:
        low, high = self.score_range
        return max(1, min(100, round((score - low) / (high - low) * 100)))

    # ------------------------------------------------------------------ reading it

    def filters(self) -> Filters:
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
        return Filters(folder, after, before, camera, None, place=self.place_filter.currentData() or None)

    @property
    def min_score(self) -> float | None:
        """The cosine similarity a result needs (as ``--min-score``); None when the slider is at "off"."""
        strict = self.strictness.value()
        low, high = self.score_range
        return round(low + (high - low) * strict / 100, 4) if strict else None

    def show_query_kind(self, has_text: bool, has_images: bool) -> None:
        """The example row while there are examples (its balance slider for words and images together); no min. match while browsing."""
        self.balance_row.setVisible(has_images)
        self.balance.setEnabled(has_text)
        self.strict_label.setEnabled(has_text or has_images)
        self.strictness.setEnabled(has_text or has_images)

    # ------------------------------------------------------------------ changing it

    def set_sort_quietly(self, key: str) -> None:
        self.sort.blockSignals(True)
        self.sort.setCurrentIndex(max(0, self.sort.findData(key)))
        self.sort.blockSignals(False)

    def fill_filters(self, folders: list[str], cameras: list[str], places: list[str] | None = None) -> bool:
        """Offer these folders, cameras and places; True when the one filtered on is gone."""
        lost = False
        for combo, values, label in (
            (self.folder_filter, [(p, os.path.basename(p.rstrip(os.sep)) or p) for p in folders], "All folders"),
            (self.camera_filter, [(c, c) for c in cameras], "Any camera"),
            (self.place_filter, place_choices(places or []), "Any place"),
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
            if current and combo.findData(current) < 0:
                lost = True
        self.camera_filter.setVisible(bool(cameras))
        self.place_filter.setVisible(bool(places))
        self.folder_filter.setVisible(len(folders) > 1)
        return lost

    def choose_folder(self, path: str) -> None:
        self.folder_filter.setCurrentIndex(max(0, self.folder_filter.findData(path)))

    def reset_filters(self) -> None:
        """Every filter back to "all" and no min. match, without a search per control."""
        for combo in (self.folder_filter, self.date_filter, self.camera_filter, self.place_filter):
            combo.blockSignals(True)
            combo.setCurrentIndex(0)
            combo.blockSignals(False)
        self._show_custom_dates(False)
        self.strictness.blockSignals(True)
        self.strictness.setValue(0)
        self.strictness.blockSignals(False)
        self._strictness_changed(0, quietly=True)

    def clear_query(self) -> None:
        self.search.clear()
        self.examples = []
        self._update_chips()

    def set_examples(self, paths_: list[str]) -> None:
        self.examples = list(paths_)
        self._update_chips()
        self.examples_changed.emit()

    def add_example(self, path: str, replace: bool = True) -> None:
        self.set_examples([path] if replace else self.examples + ([path] if path not in self.examples else []))

    def search_like(self, path: str) -> None:
        """Find similar: the photo as the only example, no words, best matches first."""
        self.search.blockSignals(True)
        self.search.clear()
        self.search.blockSignals(False)
        if self.sort.currentData() != "relevance":
            self.set_sort_quietly("relevance")
        self.add_example(path)

    def pick_example(self) -> None:
        start = self.settings.value("last_image_dir", os.path.expanduser("~"))
        path, _ = QFileDialog.getOpenFileName(
            self, "Search by image", start, "Images (*.jpg *.jpeg *.png *.webp *.heic *.heif *.tif *.tiff *.bmp *.gif);;All files (*)"
        )
        if path:
            self.settings.setValue("last_image_dir", os.path.dirname(path))
            self.add_example(path)

    def paste(self) -> None:
        example = clipboard_example()
        if example is None:
            self.problem.emit("the clipboard holds no image")
            return
        kind, path = example
        if kind == "image":
            path = save_example_image(QGuiApplication.clipboard().image(), "Pasted image")
            if path is None:
                self.problem.emit("cannot read the pasted image")
                return
        self.add_example(path)

    def _update_chips(self) -> None:
        while self.chips.count():
            w = self.chips.takeAt(0).widget()
            if w is not None:
                w.deleteLater()
        for path in self.examples:
            chip = ExampleChip(path)
            chip.removed.connect(self._remove_example)
            self.chips.addWidget(chip)
        self.search.setPlaceholderText(PLACEHOLDER_WITH_EXAMPLE if self.examples else PLACEHOLDER)
        self.balance_row.setVisible(bool(self.examples))

    def _remove_example(self, path: str) -> None:
        self.set_examples([p for p in self.examples if p != path])

    def _show_custom_dates(self, custom: bool) -> None:
        for w in (self.date_from, self.dash, self.date_to):
            w.setVisible(custom)

    def _date_choice(self, index: int) -> None:
        self._show_custom_dates(index == len(DATE_RANGES) - 1)
        self.filters_changed.emit()

    def _strictness_changed(self, value: int, quietly: bool = False) -> None:
        score = self.min_score
        self.strict_value.setText("off" if score is None else f"{score:.2f}")
        self.strictness.setToolTip(
            f"Hide matches below {score:.3f} (cosine similarity, as --min-score)" if score is not None
            else "Hide weak matches: drag right to keep only close matches"
        )
        if not quietly:
            self.query_edited.emit()
