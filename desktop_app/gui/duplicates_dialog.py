"""Near-duplicate groups: tick what to keep, confirm, move the rest to the trash, undo."""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QDialog,
    QDoubleSpinBox,
    QFrame,
    QHBoxLayout,
    QLabel,
    QMessageBox,
    QPushButton,
    QScrollArea,
    QVBoxLayout,
    QWidget,
)

from ..services import DuplicateGroup
from . import tasks
from .images import human_size, read_scaled, set_pixmap
from .widgets import heading, muted


class DuplicatesDialog(tasks.TaskOwner, QDialog):
    """Groups of near-duplicates; tick what to keep, send the rest to the system trash."""

    trashed = Signal(int)
    restored = Signal(int)

    def __init__(self, service, thumbnails_dir, parent=None):
        super().__init__(parent)
        self.service = service  # a LibraryService
        self.thumbnails_dir = str(thumbnails_dir)
        self.setWindowTitle("Duplicates")
        self.resize(900, 640)
        col = QVBoxLayout(self)
        col.setContentsMargins(16, 16, 16, 16)
        col.addWidget(heading("Near-duplicate photos"))
        row = QHBoxLayout()
        row.addWidget(
            muted(
                "Each group holds copies of one picture (the model and the pictures themselves agree). Untick the ones "
                "to move to the trash; the best copy is kept, and nothing is marked in a group that is not certain."
            ),
            1,
        )
        row.addWidget(QLabel("Similarity"))
        self.threshold = QDoubleSpinBox()
        self.threshold.setRange(0.50, 0.9999)
        self.threshold.setSingleStep(0.005)
        self.threshold.setDecimals(4)
        self.threshold.setValue(0.95)
        # Until the user picks a value, the model's calibrated one is used (and shown once known).
        self.use_default = True
        self.threshold.valueChanged.connect(self._threshold_changed)
        # editingFinished also fires when focus merely leaves the box (say, for the trash
        # button): search again only for a new value, or the click lands on a disabled button
        self.threshold.editingFinished.connect(self._threshold_edited)
        row.addWidget(self.threshold)
        find = QPushButton("Find")
        find.clicked.connect(self.find)
        row.addWidget(find)
        col.addLayout(row)
        self.calibration = muted()
        col.addWidget(self.calibration)
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

    def _threshold_changed(self, _value: float) -> None:
        self.use_default = False  # the user's value from now on

    def find(self) -> None:
        self._searched_at = self.threshold.value()
        self.status.setText("Comparing photos…")
        self.trash_button.setEnabled(False)
        self._gen = getattr(self, "_gen", 0) + 1
        gen = self._gen
        service, threshold = self.service, None if self.use_default else self.threshold.value()

        def work():
            default = service.duplicate_threshold()
            return default, service.describe_calibration(), service.duplicates(threshold)

        self._run_task(work, done=lambda found: self._show(found, gen), failed=self.status.setText)

    def _show(self, found: tuple[float, str, list[DuplicateGroup]], gen: int) -> None:
        if gen != self._gen:
            return
        default, about, groups = found
        if self.use_default:
            self.threshold.blockSignals(True)
            self.threshold.setValue(default)
            self.threshold.blockSignals(False)
            self._searched_at = self.threshold.value()
        self.calibration.setText(f"This model's default similarity is {default:.4f} ({about}).")
        self.groups = groups
        self.checks = []
        content = QWidget()
        col = QVBoxLayout(content)
        col.setSpacing(14)
        for n, group in enumerate(groups, 1):
            title = f"Group {n} · {len(group.members)} photos"
            if not group.confident:
                title += " · not certain: check before removing any"
            col.addWidget(heading(title, 1.0))
            row = QHBoxLayout()
            row.setSpacing(10)
            for i, member in enumerate(group.members):
                item, sim = member.item, member.similarity
                cell = QVBoxLayout()
                pic = QLabel()
                pic.setFixedSize(150, 150)
                pic.setAlignment(Qt.AlignCenter)
                dpr = self.devicePixelRatioF()
                source = f"{self.thumbnails_dir}/{item.thumbnail}" if item.thumbnail else item.path
                self._run_task(read_scaled, source, int(150 * dpr), done=lambda img, pic=pic, dpr=dpr: set_pixmap(pic, img, dpr))
                cell.addWidget(pic)
                check = QCheckBox(f"Keep  ({sim:.3f})" if i else "Keep")
                check.setChecked(not member.suggest_trash)  # only the copies of a certain group are marked
                check.setToolTip(f"{item.path}\npicture differs from the first by {member.hash_distance} of 64 hash bits")
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
            groups = len(self.groups)
            self.status.setText(f"{groups} group{'s' if groups != 1 else ''} · {n} photo{'s' if n != 1 else ''} marked for the trash")

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
        self.trash_button.setEnabled(False)
        self._run_task(self.service.move_to_trash, paths_, done=self._trashed, failed=self.status.setText)

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
        self.undo_bar.undo_button.setEnabled(False)

        def done(result):
            n = len(result.restored)
            text = f"Put {n} photo{'s' if n != 1 else ''} back."
            if result.problems:
                text += f" {len(result.problems)} not restored: {result.problems[0]}"
            self.undo_bar.show_outcome(text, False)
            self.restored.emit(n)
            self.find()

        self._run_task(self.service.restore, outcome.moved, done=done, failed=self.status.setText)


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
